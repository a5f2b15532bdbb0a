package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/engine/model/modeltest"
	"github.com/blip2chat/blip2chat/weights/hub"
	"github.com/blip2chat/blip2chat/weights/hub/hubtest"
	"github.com/blip2chat/blip2chat/weights/hub/hubtest/hubfixture"
)

// pullEnv points blip2chat at the fake Hub, an empty Hugging Face cache
// and an empty data folder, with no token; it returns the cache and the
// data folder.
func pullEnv(t *testing.T, h *hubtest.Hub) (cache, data string) {
	t.Helper()
	root := t.TempDir()
	cache, data = filepath.Join(root, "hf", "hub"), filepath.Join(root, "data")
	t.Setenv("HF_ENDPOINT", h.URL)
	t.Setenv("HF_HUB_CACHE", cache)
	t.Setenv("HF_HOME", filepath.Join(root, "hf"))
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HUGGING_FACE_HUB_TOKEN", "")
	t.Setenv("HF_HUB_OFFLINE", "")
	t.Setenv("TRANSFORMERS_OFFLINE", "")
	t.Setenv("XDG_DATA_HOME", data)
	return cache, filepath.Join(data, "blip2chat")
}

// runCLI runs blip2chat in this process and returns its exit status and
// output.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// errorLines are the lines of stderr that report an error (the others are
// progress).
func errorLines(stderr, cmd string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if strings.HasPrefix(l, "blip2chat "+cmd+":") {
			out = append(out, l)
		}
	}
	return out
}

func mustRun(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	code, out, errs := runCLI(args...)
	if code != 0 {
		t.Fatalf("blip2chat %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out, errs
}

// askFixture asks the installed model name the golden question about the
// golden image of its fixture, greedily, a few tokens.
func askFixture(t *testing.T, name string, s hubfixture.Spec) askResult {
	t.Helper()
	var g struct {
		Prompt string `json:"prompt"`
		Image  string `json:"image"`
	}
	b, err := os.ReadFile(filepath.Join(modeltest.GoldenDir(t), s.Golden(), "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(modeltest.GoldenDir(t), "images", g.Image)
	return runJSON(t, []string{"ask", "-m", name, img, "what is in the image?", "--json", "--exact", "--threads", "1",
		"--max-tokens", "6", "--llama-lib", modeltest.LibDir(t)})
}

// TestPullCatalogue is the acceptance test: for every catalogue
// entry, in its old and its new layout, `pull` from the fake Hub (real
// HTTP, LFS files redirected to a CDN host) into an empty cache and data
// folder, then `ask -m NAME` answers (`match` for the retrieval models),
// and both layouts give the same prompt ids and answer ids.
func TestPullCatalogue(t *testing.T) {
	lib := modeltest.LibDir(t)
	for _, m := range hub.Catalogue() {
		t.Run(m.Name, func(t *testing.T) {
			spec, err := hubfixture.SpecFor(m)
			if err != nil {
				t.Fatal(err)
			}
			var answers []askResult
			var matches []string
			for _, l := range []hubfixture.Layout{hubfixture.Old, hubfixture.New} {
				h := hubtest.New(t)
				commit := hubfixture.Commit(t, h, m, l)
				cache, data := pullEnv(t, h)
				out, _ := mustRun(t, "pull", m.Name, "--llama-lib", lib)
				if !strings.Contains(out, "installed "+m.Name+" (commit "+commit[:7]+")") {
					t.Fatalf("%s: pull said %q", l, out)
				}
				if h.FileBytes() == 0 {
					t.Fatalf("%s: nothing downloaded", l)
				}
				for _, r := range h.Requests() {
					if r.Host == "cdn" && r.Auth != "" {
						t.Errorf("%s: %s sent to the CDN with Authorization", l, r.Path)
					}
				}
				// The downloaded files were removed once converted
				// (no --keep-source); the model folder records the commit.
				blobs, _ := os.ReadDir(filepath.Join(cache, "models--"+strings.ReplaceAll(m.Repo, "/", "--"), "blobs"))
				if len(blobs) != 0 {
					t.Errorf("%s: %d blobs left in the cache without --keep-source", l, len(blobs))
				}
				im, err := app.FindInstalled(data, m.Name)
				if err != nil {
					t.Fatal(err)
				}
				if im.Record == nil || im.Record.Commit != commit || im.Record.Repo != m.Repo {
					t.Fatalf("%s: install record %+v", l, im.Record)
				}
				if !m.HasLLM() {
					img := filepath.Join(modeltest.GoldenDir(t), "images", "husky.jpg")
					out, _ := mustRun(t, "match", "-m", m.Name, img, "a dog in the snow", "a red car", "--json")
					matches = append(matches, out)
					continue
				}
				a := askFixture(t, m.Name, spec)
				if len(a.PromptIDs) == 0 || a.Stop == "" {
					t.Fatalf("%s: ask answered %+v", l, a)
				}
				t.Logf("%s: prompt ids %v, answer ids %v %q (%s)", l, a.PromptIDs, a.IDs, a.Text, a.Stop)
				answers = append(answers, a)
			}
			if !m.HasLLM() {
				if matches[0] != matches[1] {
					t.Errorf("the layouts match differently:\nold: %s\nnew: %s", matches[0], matches[1])
				}
				return
			}
			o, n := answers[0], answers[1]
			if !slices.Equal(o.PromptIDs, n.PromptIDs) || !slices.Equal(o.IDs, n.IDs) {
				t.Errorf("the layouts differ:\nold: prompt %v answer %v\nnew: prompt %v answer %v", o.PromptIDs, o.IDs, n.PromptIDs, n.IDs)
			}
		})
	}
}

// TestPullNames: a known model that is not installed is refused in one
// line naming the pull command; after pull, every way of naming it finds
// it; models lists it (path, size, types); rm removes it.
func TestPullNames(t *testing.T) {
	h := hubtest.New(t)
	m, _ := hub.Lookup("blip2-opt-2.7b")
	spec, _ := hubfixture.SpecFor(m)
	hubfixture.Commit(t, h, m, hubfixture.New)
	_, data := pullEnv(t, h)
	img := filepath.Join(modeltest.GoldenDir(t), "images", "husky.jpg")

	for _, args := range [][]string{
		{"ask", "-m", "blip2-opt-2.7b", img, "what?"},
		{"tokenize", "-m", "BLIP2-OPT-2.7B", "hello"},
		{"doctor", "-m", "Salesforce/blip2-opt-2.7b"},
	} {
		code, out, errs := runCLI(args...)
		if code != 1 || out != "" || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "blip2chat pull blip2-opt-2.7b") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want one line naming the pull command", args, code, out, errs)
		}
	}
	if h.FileBytes() != 0 {
		t.Fatalf("refusals downloaded %d bytes", h.FileBytes())
	}

	mustRun(t, "pull", "Salesforce/blip2-opt-2.7b", "--keep-source")
	for _, name := range []string{"blip2-opt-2.7b", "Blip2-OPT-2.7b", "Salesforce/blip2-opt-2.7b"} {
		a := askFixture(t, name, spec)
		if len(a.PromptIDs) == 0 {
			t.Fatalf("%s: %+v", name, a)
		}
	}
	// chat takes the name first; without a terminal it stops there.
	for _, args := range [][]string{{"chat", "blip2-opt-2.7b", img}, {"chat", "Salesforce/blip2-opt-2.7b"}, {"chat", "-m", "blip2-opt-2.7b"},
		{"chat", "blip2-flan-t5-xl", img}, {"chat", "someone/some-blip", img}} { // not installed: offered in the interface
		if code, _, errs := runCLI(args...); code != 1 || !strings.Contains(errs, "needs a terminal") {
			t.Errorf("%v: exit %d, %q", args, code, errs)
		}
	}
	// Two existing image files shaped like ORG/REPO are two images, a usage
	// error, not a repository to offer.
	t.Chdir(filepath.Dir(filepath.Dir(img)))
	rel := filepath.Join(filepath.Base(filepath.Dir(img)), filepath.Base(img))
	if code, _, errs := runCLI("chat", rel, rel); code != 2 || !strings.Contains(errs, "usage") {
		t.Errorf("chat %s %s: exit %d, %q", rel, rel, code, errs)
	}
	out, _ := mustRun(t, "tokenize", "-m", "blip2-opt-2.7b", "hello")
	if out == "" {
		t.Error("tokenize -m NAME printed nothing")
	}

	// pull again: the same commit is up to date, nothing is sent.
	h.ResetCounts()
	out, _ = mustRun(t, "pull", "blip2-opt-2.7b")
	if !strings.Contains(out, "up to date") || h.FileBytes() != 0 {
		t.Errorf("second pull: %q, %d file bytes sent", out, h.FileBytes())
	}

	out, _ = mustRun(t, "models")
	dir := filepath.Join(app.ModelsDir(data), "blip2-opt-2.7b")
	var row string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "blip2-opt-2.7b ") && strings.Contains(l, "Salesforce/blip2-opt-2.7b@") {
			row = l
		}
	}
	// (The fixture's vision matrices are too narrow for q8_0: f16.)
	if row == "" || !strings.Contains(row, dir) || !strings.Contains(row, "vision f16") || !strings.Contains(row, "llm q8_0") {
		t.Errorf("models does not list the installed model with its path and types:\n%s", out)
	}
	for _, c := range hub.Catalogue() {
		if !strings.Contains(out, c.Name+" ") {
			t.Errorf("models does not list %s", c.Name)
		}
	}

	out, _ = mustRun(t, "rm", "blip2-opt-2.7b")
	if !strings.Contains(out, "removed blip2-opt-2.7b") {
		t.Errorf("rm said %q", out)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("rm left %s", dir)
	}
	if code, _, errs := runCLI("rm", "blip2-opt-2.7b"); code != 1 || !strings.Contains(errs, "no installed model") {
		t.Errorf("rm of a missing model: exit %d, %q", code, errs)
	}
	if code, _, errs := runCLI("pull", "no-such-model"); code != 2 || strings.Count(errs, "\n") != 1 {
		t.Errorf("pull of an unknown name: exit %d, %q", code, errs)
	}
}

// TestPullCacheAndToken: a cache filled as huggingface-cli fills it (blobs
// and relative symlinks) sends no file byte and keeps those files; the
// token goes to the Hub host only, and appears nowhere in the output or
// the files written; offline with a partial cache, one line names the
// missing file.
func TestPullCacheAndToken(t *testing.T) {
	const token = "hf_SECRETtokenVALUE123"
	h := hubtest.New(t)
	h.Token = token
	m, _ := hub.Lookup("blip2-flan-t5-xl")
	hubfixture.Commit(t, h, m, hubfixture.New)
	h.SetGated(m.Repo, true)
	cache, data := pullEnv(t, h)
	lib := modeltest.LibDir(t)

	// Without the token: the gated repository, one line, no secret.
	code, out, errs := runCLI("pull", m.Name, "--llama-lib", lib)
	if el := errorLines(errs, "pull"); code != 1 || len(el) != 1 || !strings.Contains(el[0], "gated") {
		t.Errorf("gated without a token: exit %d, %q %q", code, out, errs)
	}

	// A partial cache offline: the missing shard is named.
	if _, err := h.PrefillCache(cache, m.Repo, "main", false, func(p string) bool {
		return !strings.HasSuffix(p, "00002-of-00002.safetensors")
	}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HF_HUB_OFFLINE", "1")
	code, out, errs = runCLI("pull", m.Name, "--llama-lib", lib)
	if el := errorLines(errs, "pull"); code != 1 || len(el) != 1 || !strings.Contains(el[0], "model-00002-of-00002.safetensors is missing") {
		t.Errorf("offline with a partial cache: exit %d, %q %q", code, out, errs)
	}
	t.Setenv("HF_HUB_OFFLINE", "")

	// The whole cache as huggingface-cli leaves it, and the token.
	if err := os.RemoveAll(cache); err != nil {
		t.Fatal(err)
	}
	if _, err := h.PrefillCache(cache, m.Repo, "main", false, nil); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HF_TOKEN", token)
	h.ResetCounts()
	out, errs = mustRun(t, "pull", m.Name, "--llama-lib", lib)
	if n := h.FileBytes(); n != 0 {
		t.Errorf("a full cache: %d file bytes sent", n)
	}
	if !strings.Contains(out, "fetched before") && !strings.Contains(out, "holds") {
		t.Errorf("pull does not say the cached checkpoint stays: %q", out)
	}
	blobs, _ := os.ReadDir(filepath.Join(cache, "models--"+strings.ReplaceAll(m.Repo, "/", "--"), "blobs"))
	if len(blobs) == 0 {
		t.Error("pull removed files another tool had put in the cache")
	}

	// A fresh cache with the token: downloads through the CDN.
	cache2 := filepath.Join(t.TempDir(), "hub")
	t.Setenv("HF_HUB_CACHE", cache2)
	mustRun(t, "rm", m.Name)
	h.ResetCounts()
	out2, errs2 := mustRun(t, "pull", m.Name, "--llama-lib", lib, "--keep-source")
	out, errs = out+out2, errs+errs2
	var hubAuth, cdn int
	for _, r := range h.Requests() {
		switch {
		case r.Host == "cdn" && r.Auth != "":
			t.Errorf("the token went to the CDN: %s", r.Path)
		case r.Host == "cdn":
			cdn++
		case r.Auth == "Bearer "+token:
			hubAuth++
		}
	}
	if hubAuth == 0 || cdn == 0 {
		t.Errorf("%d authorized Hub requests, %d CDN downloads; want both", hubAuth, cdn)
	}
	if strings.Contains(out+errs, token) {
		t.Error("the token appears in pull's output")
	}
	for _, dir := range []string{data, cache, cache2} {
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(token)) {
				t.Errorf("the token is written in %s", p)
			}
			return nil
		})
	}
}

// stalledPull is a pull of blip2-opt-2.7b by the test binary run as
// blip2chat, stopped at 60 % of its largest shard until release.
type stalledPull struct {
	h           *hubtest.Hub
	m           hub.Model
	spec        hubfixture.Spec
	shard       string
	size, cut   int64
	cmd         *exec.Cmd
	stderr      *bytes.Buffer
	release     func()
	lib, commit string
}

func startStalledPull(t *testing.T) *stalledPull {
	t.Helper()
	s := &stalledPull{h: hubtest.New(t), stderr: &bytes.Buffer{}, lib: modeltest.LibDir(t)}
	s.m, _ = hub.Lookup("blip2-opt-2.7b")
	s.spec, _ = hubfixture.SpecFor(s.m)
	s.commit = hubfixture.Commit(t, s.h, s.m, hubfixture.Old)
	cache, _ := pullEnv(t, s.h)
	for _, f := range hubfixture.Files(t, s.spec, hubfixture.Old) {
		if strings.HasSuffix(f.Path, ".safetensors") && int64(len(f.Data)) > s.size {
			s.shard, s.size = f.Path, int64(len(f.Data))
		}
	}
	s.cut = s.size * 6 / 10
	s.release = s.h.StallAt(s.shard, s.cut)

	args, _ := json.Marshal([]string{"pull", s.m.Name, "--llama-lib", s.lib})
	s.cmd = exec.Command(os.Args[0], "-test.run=^$")
	s.cmd.Env = append(os.Environ(), askChildEnv+"="+string(args))
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.cmd.Process.Kill(); s.cmd.Wait() })
	sha, _ := s.h.Hashes(s.m.Repo, s.commit, s.shard)
	partial := filepath.Join(cache, "models--"+strings.ReplaceAll(s.m.Repo, "/", "--"), "blobs", sha+".incomplete")
	for deadline := time.Now().Add(time.Minute); ; {
		if st, err := os.Stat(partial); err == nil && st.Size() >= s.cut {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child did not reach %d bytes of %s: %s", s.cut, s.shard, s.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rerun releases the stalled transfer, pulls again in this process and
// checks that it resumed: the server sends the rest of the shard, not all
// of it; then the model answers.
func (s *stalledPull) rerun(t *testing.T) {
	t.Helper()
	s.release()
	// The stopped transfer's handler ends once released (writing into the
	// closed connection): wait for it, so that its bytes are not counted as
	// the rerun's.
	for deadline := time.Now().Add(10 * time.Second); ; {
		done := slices.ContainsFunc(s.h.Requests(), func(r hubtest.Request) bool { return r.File == s.shard && r.Bytes > 0 })
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.h.ResetCounts()
	mustRun(t, "pull", s.m.Name, "--llama-lib", s.lib)
	var sent int64
	for _, r := range s.h.Requests() {
		if r.File == s.shard {
			sent += r.Bytes
		}
	}
	t.Logf("rerun: %d bytes of %s sent; the rest was %d", sent, s.shard, s.size-s.cut)
	if sent > s.size-s.cut+1<<20 {
		t.Errorf("the rerun sent %d bytes of %s; the rest was %d", sent, s.shard, s.size-s.cut)
	}
	if a := askFixture(t, s.m.Name, s.spec); len(a.PromptIDs) == 0 {
		t.Errorf("ask after the resumed pull: %+v", a)
	}
}

// TestPullKilled: the real binary killed with SIGKILL in the middle of a
// shard; the next pull resumes from the partial file (the server sends
// the rest, not the whole shard again), verifies it, converts and the
// model answers.
func TestPullKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	s := startStalledPull(t)
	if err := s.cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	s.cmd.Wait()
	s.rerun(t)
}

// smallDisk reports 1 MiB free everywhere.
type smallDisk struct{}

func (smallDisk) Free(string) (int64, string, error) { return 1 << 20, "disk", nil }

// TestPullNoSpace: too little free space is refused before a byte is
// downloaded, in one line with the sizes; once there is room, the same
// command succeeds.
func TestPullNoSpace(t *testing.T) {
	h := hubtest.New(t)
	m, _ := hub.Lookup("blip2-itm-vit-g")
	hubfixture.Commit(t, h, m, hubfixture.New)
	pullEnv(t, h)
	pullDiskSpace = smallDisk{}
	defer func() { pullDiskSpace = nil }()
	code, _, errs := runCLI("pull", m.Name)
	el := errorLines(errs, "pull")
	if code != 1 || len(el) != 1 || !strings.Contains(el[0], "not enough disk space") || !strings.Contains(el[0], "only 1.0 MB is free") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	if n := h.FileBytes(); n != 0 {
		t.Errorf("%d file bytes downloaded before refusing", n)
	}
	pullDiskSpace = nil
	mustRun(t, "pull", m.Name)

	// Offline, with the raw files removed after the conversion, the
	// installed model is up to date.
	t.Setenv("HF_HUB_OFFLINE", "1")
	if out, _ := mustRun(t, "pull", m.Name); !strings.Contains(out, "up to date") {
		t.Errorf("offline pull of an installed model: %q", out)
	}
}

// TestPullBar: line mode (not a terminal) prints a line per finished file
// and a total line at most every 5 s, without escape sequences; a
// terminal gets a bar per file and the total, redrawn in place.
func TestPullBar(t *testing.T) {
	now := time.Unix(0, 0)
	clock := func() time.Time { return now }
	steps := []hub.Progress{
		{File: "config.json", FileBytes: 0, FileSize: 2000, Bytes: 0, Total: 10_002_000, Files: 2, ETA: -1},
		{File: "model.safetensors", FileBytes: 1_000_000, FileSize: 10_000_000, Bytes: 1_000_000, Total: 10_002_000, Files: 2, Rate: 500_000, ETA: 18 * time.Second},
		{File: "config.json", FileBytes: 2000, FileSize: 2000, FileDone: true, Bytes: 1_002_000, Total: 10_002_000, FilesDone: 1, Files: 2, Rate: 500_000, ETA: 18 * time.Second},
		{File: "model.safetensors", FileBytes: 6_000_000, FileSize: 10_000_000, Bytes: 6_002_000, Total: 10_002_000, FilesDone: 1, Files: 2, Rate: 1_000_000, ETA: 4 * time.Second},
		{File: "model.safetensors", FileBytes: 10_000_000, FileSize: 10_000_000, FileDone: true, Bytes: 10_002_000, Total: 10_002_000, FilesDone: 2, Files: 2, Received: 10_002_000, Rate: 1_000_000},
	}
	var lines bytes.Buffer
	b := newPullBar(&lines, false, clock)
	for _, p := range steps {
		b.update(p)
		now = now.Add(3 * time.Second)
	}
	b.finish()
	out := lines.String()
	want := []string{
		"total [....................] 0 B / 9.5 MB   0%, 0/2 files, ETA unknown",
		"  config.json 2.0 kB",
		"total [############........] 5.7 MB / 9.5 MB  60%, 1/2 files, 976.6 kB/s, ETA 4s",
		"  model.safetensors 9.5 MB",
		"total [####################] 9.5 MB / 9.5 MB 100%, 2/2 files, 976.6 kB/s",
	}
	if got := strings.Split(strings.TrimSpace(out), "\n"); !slices.Equal(got, want) {
		t.Errorf("line mode:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}

	var term bytes.Buffer
	b = newPullBar(&term, true, clock)
	for _, p := range steps[:4] {
		b.update(p)
	}
	out = term.String()
	for _, w := range []string{"\x1b[2A\r\x1b[J", "model.safetensors", "[############........] 5.7 MB / 9.5 MB  60%", "ETA 4s", "  config.json 2.0 kB\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("terminal mode lacks %q:\n%q", w, out)
		}
	}
}
