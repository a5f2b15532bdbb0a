package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/engine/model/modeltest"
)

// batchChildEnv makes the test binary run `blip2chat batch` with the
// JSON-encoded arguments it holds, slowly (a pause after each answer
// written), and exit: a process for the tests to kill midway.
const batchChildEnv = "BLIP2CHAT_TEST_BATCH_ARGS"

func init() {
	if a := os.Getenv(batchChildEnv); a != "" {
		var args []string
		if err := json.Unmarshal([]byte(a), &args); err != nil {
			panic(err)
		}
		batchTest.answered = func() { time.Sleep(300 * time.Millisecond) }
		os.Exit(run(args, os.Stdout, os.Stderr))
	}
}

// batchImagesFixture copies three golden images into a folder.
func batchImagesFixture(t testing.TB) (dir string, images []string) {
	t.Helper()
	dir = t.TempDir()
	for _, name := range []string{"cat.jpg", "husky.jpg", "sample.png"} {
		data, err := os.ReadFile(filepath.Join(modeltest.GoldenDir(t), "images", name))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		images = append(images, p)
	}
	return dir, images
}

func readBatchOut(t *testing.T, path string) []app.BatchRecord {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []app.BatchRecord
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var r app.BatchRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: line %q: %v", path, sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// batchCounts runs f with a hook that sums the batches' ViT and Q-Former
// runs.
func batchCounts(t *testing.T, f func()) (encoded, qformer int) {
	t.Helper()
	batchTest.ran = func(b *app.Batch) { encoded += b.Encoded; qformer += b.QFormerRuns }
	defer func() { batchTest.ran = nil }()
	f()
	return encoded, qformer
}

var batchPrompts = []string{"what is it?", "where is it?"}

// TestBatchGridEqualsAsk: 3 images × 2 prompts × 2 presets give 12 lines
// whose answers are ask's with the same arguments, and each image goes
// through the ViT once (InstructBLIP's Q-Former once per instruction,
// BLIP-2's once per image).
func TestBatchGridEqualsAsk(t *testing.T) {
	lib := modeltest.LibDir(t)
	for _, c := range modeltest.Cases(t, "llama", "t5", "opt") {
		t.Run(c.Name, func(t *testing.T) {
			dir := askModelDir(t, c, "f32")
			folder, images := batchImagesFixture(t)
			out := filepath.Join(t.TempDir(), "results.jsonl")
			presets := []string{"reference", "vqa"}
			args := []string{"batch", "-m", dir, folder, "--out", out, "--llama-lib", lib, "--threads", "1", "--quiet"}
			for _, p := range batchPrompts {
				args = append(args, "--prompt", p)
			}
			for _, p := range presets {
				args = append(args, "--preset", p)
			}
			var stdout, stderr bytes.Buffer
			encoded, qformer := batchCounts(t, func() {
				if code := run(args, &stdout, &stderr); code != 0 {
					t.Fatalf("exit %d: %s", code, stderr.String())
				}
			})
			if encoded != len(images) {
				t.Errorf("the ViT ran %d times for %d images", encoded, len(images))
			}
			wantQ := len(images) // BLIP-2: one Q-Former run serves every prompt
			if c.Family == "instructblip" {
				// One per instruction: the prompts under reference, and
				// vqa's "Question: {} Short Answer:" around each.
				wantQ = len(images) * len(batchPrompts) * len(presets)
			}
			if qformer != wantQ {
				t.Errorf("the Q-Former ran %d times, want %d", qformer, wantQ)
			}
			recs := readBatchOut(t, out)
			if len(recs) != 12 {
				t.Fatalf("%d lines, want 12", len(recs))
			}
			seen := map[app.BatchKey]bool{}
			for _, r := range recs {
				if seen[r.Key()] {
					t.Errorf("answer %v twice", r.Key())
				}
				seen[r.Key()] = true
				ask := runJSON(t, []string{"ask", "-m", dir, r.Image, r.Prompt, "--preset", r.Setting, "--json",
					"--llama-lib", lib, "--threads", "1"})
				if ask.Text != r.Answer || len(ask.IDs) != r.Tokens {
					t.Errorf("%s %q %s: batch %q (%d tokens), ask %q (%d)", filepath.Base(r.Image), r.Prompt, r.Setting,
						r.Answer, r.Tokens, ask.Text, len(ask.IDs))
				}
				if r.Model != filepath.Clean(dir) || r.Timings.TotalMS <= 0 || r.Params.Preset != r.Setting {
					t.Errorf("record %+v", r)
				}
			}
			// Run again: everything is there, nothing is encoded.
			encoded, _ = batchCounts(t, func() {
				if code := run(args, &stdout, &stderr); code != 0 {
					t.Fatalf("rerun: exit %d: %s", code, stderr.String())
				}
			})
			if n := len(readBatchOut(t, out)); encoded != 0 || n != 12 {
				t.Errorf("rerun: %d images encoded, %d lines", encoded, n)
			}
		})
	}
}

// batchChild is a batch of the two prompts under two presets over the
// images fixture, run by a child process (so that it can be killed).
type batchChild struct {
	cmd      *exec.Cmd
	stderr   bytes.Buffer
	args     []string // the command line, to run again in process
	dir, out string   // the model folder and the JSON Lines output
	images   []string
}

// startBatchChild starts the batch and returns once it has written n
// answers (failing the test after 2 minutes).
func startBatchChild(t *testing.T, n int) *batchChild {
	t.Helper()
	lib := modeltest.LibDir(t)
	c := modeltest.Cases(t, "opt")[0]
	b := &batchChild{dir: askModelDir(t, c, "f32"), out: filepath.Join(t.TempDir(), "results.jsonl")}
	var folder string
	folder, b.images = batchImagesFixture(t)
	b.args = []string{"batch", "-m", b.dir, folder, "--out", b.out, "--prompt", batchPrompts[0], "--prompt", batchPrompts[1],
		"--preset", "reference", "--preset", "vqa", "--llama-lib", lib, "--threads", "1"}
	enc, _ := json.Marshal(b.args)
	b.cmd = exec.Command(os.Args[0], "-test.run=^$")
	b.cmd.Env = append(os.Environ(), batchChildEnv+"="+string(enc))
	b.cmd.Stderr = &b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		data, _ := os.ReadFile(b.out)
		if bytes.Count(data, []byte("\n")) >= n {
			return b
		}
		if time.Now().After(deadline) {
			b.cmd.Process.Kill()
			t.Fatalf("the batch wrote %q in 2 minutes, want %d answers; stderr: %s", data, n, b.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBatchKilledResumes: a batch killed with SIGKILL midway and run
// again holds each answer exactly once, and the rerun encodes only the
// images that still miss answers.
func TestBatchKilledResumes(t *testing.T) {
	// Kill it once it has written 5 of the 12 answers (the second image's
	// first): it pauses after each, so it is then answering the 6th.
	b := startBatchChild(t, 5)
	cmd, out, dir, images, args := b.cmd, b.out, b.dir, b.images, b.args
	cmd.Process.Kill()
	cmd.Wait()
	before := readBatchOut(t, out)
	if len(before) < 5 || len(before) >= 12 {
		t.Fatalf("killed after %d answers: not midway", len(before))
	}
	missing := map[string]bool{}
	have := map[app.BatchKey]bool{}
	for _, r := range before {
		have[r.Key()] = true
	}
	for _, img := range images {
		for _, p := range batchPrompts {
			for _, s := range []string{"reference", "vqa"} {
				if !have[app.BatchKey{Image: img, Model: filepath.Clean(dir), Prompt: p, Setting: s}] {
					missing[img] = true
				}
			}
		}
	}
	var stdout, stderr bytes.Buffer
	encoded, _ := batchCounts(t, func() {
		if code := run(args, &stdout, &stderr); code != 0 {
			t.Fatalf("rerun: exit %d: %s", code, stderr.String())
		}
	})
	if encoded != len(missing) {
		t.Errorf("the rerun encoded %d images; %d had missing answers", encoded, len(missing))
	}
	after := readBatchOut(t, out)
	seen := map[app.BatchKey]int{}
	for _, r := range after {
		seen[r.Key()]++
	}
	if len(after) != 12 || len(seen) != 12 {
		t.Errorf("%d lines, %d answers; want 12 each", len(after), len(seen))
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%v: %d times", k, n)
		}
	}
	for i, r := range before { // the lines written before the kill stay
		if fmt.Sprint(after[i]) != fmt.Sprint(r) {
			t.Errorf("line %d changed: %+v, was %+v", i+1, after[i], r)
		}
	}
}

// TestBatchCutLine: a last line cut short (a crash while writing) is
// dropped and its answer made again; a bad line elsewhere is refused,
// naming it, and the file is left as it was.
func TestBatchLogCutLine(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "r.jsonl")
	good := `{"image":"a.jpg","model":"m","prompt":"","settings":"reference","answer":"x"}` + "\n"
	os.WriteFile(out, []byte(good+`{"image":"b.jpg","mod`), 0o644)
	l, err := app.OpenBatchLog(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Records()) != 1 || !l.Done(app.BatchKey{Image: "a.jpg", Model: "m", Prompt: "", Setting: "reference"}) {
		t.Errorf("records %+v", l.Records())
	}
	l.Close()
	if data, _ := os.ReadFile(out); string(data) != good {
		t.Errorf("file %q, want the whole line only", data)
	}
	bad := "not json\n" + good
	os.WriteFile(out, []byte(bad), 0o644)
	if _, err := app.OpenBatchLog(out); err == nil || !strings.Contains(err.Error(), "line 1 is not a batch answer") {
		t.Errorf("bad line: %v", err)
	}
	if data, _ := os.ReadFile(out); string(data) != bad {
		t.Errorf("the refused file changed: %q", data)
	}
}

// TestBatchCaptions: --captions on a folder of 50 images, 5 of them broken
// and 5 with a caption already, writes the 40 missing captions (each the
// answer), keeps the others, names each broken image on one line and
// exits 0; run again it has nothing to do; a folder where every image is
// broken exits 1.
func TestBatchCaptions(t *testing.T) {
	lib := modeltest.LibDir(t)
	c := modeltest.Cases(t, "opt")[0]
	dir := askModelDir(t, c, "f32")
	folder := t.TempDir()
	var sources [][]byte
	for _, name := range []string{"gray.jpeg", "video.jpeg", "sample.jpg", "sample.png", "cat.jpg"} {
		data, err := os.ReadFile(filepath.Join(modeltest.GoldenDir(t), "images", name))
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, data)
	}
	var good, broken, captioned []string
	write := func(name string, data []byte) string {
		p := filepath.Join(folder, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for i := range 45 {
		ext := ".jpg"
		if i%5 == 3 {
			ext = ".png"
		}
		p := write(fmt.Sprintf("img%02d%s", i, ext), sources[i%5])
		if i%9 == 4 { // 5 of them
			write(fmt.Sprintf("img%02d.txt", i), []byte("my own caption\n"))
			captioned = append(captioned, p)
			continue
		}
		good = append(good, p)
	}
	broken = append(broken,
		write("broken0.jpg", []byte("not an image at all")),
		write("broken1.jpg", sources[0][:len(sources[0])/3]),
		write("broken2.png", sources[3][:200]),
		write("broken3.webp", nil),
		write("broken4.gif", []byte("GIF89a")))
	out := filepath.Join(t.TempDir(), "captions.jsonl")
	args := []string{"batch", "-m", dir, folder, "--captions", "--out", out, "--llama-lib", lib, "--threads", "1"}
	var stdout, stderr bytes.Buffer
	encoded, _ := batchCounts(t, func() {
		if code := run(args, &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	})
	if len(good) != 40 || len(captioned) != 5 || encoded != 40 {
		t.Errorf("%d good images, %d captioned, %d encoded", len(good), len(captioned), encoded)
	}
	answers := map[string]string{}
	for _, r := range readBatchOut(t, out) {
		answers[r.Image] = r.Answer
	}
	for _, p := range good {
		data, err := os.ReadFile(captionPath(p, ".txt"))
		if err != nil {
			t.Errorf("no caption: %v", err)
			continue
		}
		if want := strings.TrimSpace(answers[p]) + "\n"; string(data) != want {
			t.Errorf("%s: caption %q, answer %q", filepath.Base(p), data, want)
		}
	}
	for _, p := range captioned {
		if data, _ := os.ReadFile(captionPath(p, ".txt")); string(data) != "my own caption\n" {
			t.Errorf("%s: the existing caption became %q", filepath.Base(p), data)
		}
	}
	for _, p := range broken {
		if _, err := os.Stat(captionPath(p, ".txt")); err == nil {
			t.Errorf("%s: a caption for a broken image", filepath.Base(p))
		}
	}
	var skipped []string
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(line, "skipped") && strings.Contains(line, "broken") {
			skipped = append(skipped, line)
		}
	}
	if len(skipped) != len(broken) {
		t.Errorf("%d lines name broken images, want %d:\n%s", len(skipped), len(broken), stderr.String())
	}
	if !strings.Contains(stderr.String(), "40 captions written, 5 images had one (skipped), 5 could not be read") {
		t.Errorf("no summary:\n%s", stderr.String())
	}
	t.Logf("stderr:\n%s", stderr.String())

	// Again: only the broken images are tried.
	stderr.Reset()
	encoded, _ = batchCounts(t, func() {
		if code := run(args, &stdout, &stderr); code != 1 {
			t.Errorf("rerun with only broken images left: exit %d, want 1: %s", code, stderr.String())
		}
	})
	if encoded != 0 || !strings.Contains(stderr.String(), "0 captions written, 45 images had one") {
		t.Errorf("rerun: %d encoded:\n%s", encoded, stderr.String())
	}
}

// BenchmarkBatchVsAsk: answers per second of one batch over a folder of
// 3 images against as many ask calls (in this process: a shell loop also
// pays a process start each), back to back, for one prompt and for a grid
// of 2 prompts × 2 presets. The batch loads the model once and puts each
// image through the ViT once; the loop loads the model and encodes the
// image for every answer. "ratio" is the batch's speed-up.
func BenchmarkBatchVsAsk(b *testing.B) {
	lib := modeltest.LibDir(b)
	for _, c := range modeltest.Cases(b, "llama", "opt") {
		for _, grid := range []struct {
			name             string
			prompts, presets []string
		}{
			{"1-prompt", batchPrompts[:1], []string{"vqa"}},
			{"2-prompts-x-2-presets", batchPrompts, []string{"reference", "vqa"}},
		} {
			b.Run(c.Name+"/"+grid.name, func(b *testing.B) {
				dir := modeltest.ModelDir(b, c, "f32")
				folder, images := batchImagesFixture(b)
				args := []string{"batch", "-m", dir, folder, "--llama-lib", lib, "--threads", "1", "--quiet"}
				for _, p := range grid.prompts {
					args = append(args, "--prompt", p)
				}
				for _, p := range grid.presets {
					args = append(args, "--preset", p)
				}
				var batchTime, askTime time.Duration
				var stdout, stderr bytes.Buffer
				for range b.N {
					start := time.Now()
					for _, img := range images {
						for _, p := range grid.prompts {
							for _, preset := range grid.presets {
								if code := run([]string{"ask", "-m", dir, img, p, "--preset", preset, "--llama-lib", lib, "--threads", "1"},
									&stdout, &stderr); code != 0 {
									b.Fatalf("ask: %s", stderr.String())
								}
							}
						}
					}
					askTime += time.Since(start)
					start = time.Now()
					if code := run(append(args, "--out", filepath.Join(b.TempDir(), "r.jsonl")), &stdout, &stderr); code != 0 {
						b.Fatalf("batch: %s", stderr.String())
					}
					batchTime += time.Since(start)
				}
				n := float64(b.N * len(images) * len(grid.prompts) * len(grid.presets))
				b.ReportMetric(n/batchTime.Seconds(), "batch-answers/s")
				b.ReportMetric(n/askTime.Seconds(), "ask-answers/s")
				b.ReportMetric(askTime.Seconds()/batchTime.Seconds(), "ratio")
			})
		}
	}
}
