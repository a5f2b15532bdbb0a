package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/image/draw"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/engine/imageprep"
	"github.com/blip2chat/blip2chat/engine/index"
	"github.com/blip2chat/blip2chat/engine/llamacpp/llamatest"
	"github.com/blip2chat/blip2chat/weights/convert"
)

// itmModels converts the blip2-itm golden checkpoint once per weight type.
var itmModels struct {
	sync.Mutex
	dirs map[string]string
}

// TestMain removes the converted models when the tests end.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range itmModels.dirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

func itmModel(t testing.TB, wt string) string {
	t.Helper()
	itmModels.Lock()
	defer itmModels.Unlock()
	if d, ok := itmModels.dirs[wt]; ok {
		return d
	}
	d, err := os.MkdirTemp("", "itm-"+wt+"-")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := convert.Convert(context.Background(), filepath.Join(goldenRoot, "blip2-itm", "hf"), d, convert.Options{VisionType: wt}); err != nil {
		t.Fatal(err)
	}
	if itmModels.dirs == nil {
		itmModels.dirs = map[string]string{}
	}
	itmModels.dirs[wt] = d
	return d
}

type matchJSON struct {
	Results []struct {
		Text      string     `json:"text"`
		ITMLogits [2]float64 `json:"itm_logits"`
		ITM       float64    `json:"itm"`
		ITC       float64    `json:"itc"`
	} `json:"results"`
}

func runJSONInto(t testing.TB, v any, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("%v: exit %d: %s", args, code, errb.String())
	}
	if err := json.Unmarshal(out.Bytes(), v); err != nil {
		t.Fatalf("%v: %v in %q", args, err, out.String())
	}
	if n := strings.Count(out.String(), "\n"); n != 1 {
		t.Errorf("%v: %d lines of JSON", args, n)
	}
	return errb.String()
}

// TestMatchGolden: match --json from the golden image file gives
// transformers' ITM logits and ITC similarities for the golden texts, in
// their order, within 1e-4 with f32 weights; the f16 and q8_0 deviations
// are logged (and bounded). P(match) is the logits' softmax.
func TestMatchGolden(t *testing.T) {
	var g struct {
		Image string `json:"image"`
		Items []struct {
			Text      string    `json:"text"`
			ITMLogits []float64 `json:"itm_logits"`
			ITC       []float64 `json:"itc"`
		} `json:"items"`
	}
	data, err := os.ReadFile(filepath.Join(goldenRoot, "blip2-itm", "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(data, &g)
	args := []string{"match", "-m", "", filepath.Join(goldenRoot, "images", g.Image)}
	for _, it := range g.Items {
		args = append(args, it.Text)
	}
	for _, c := range []struct {
		wt  string
		tol float64
	}{{"f32", 1e-4}, {"f16", 5e-3}, {"q8_0", 3e-2}} {
		t.Run(c.wt, func(t *testing.T) {
			args[2] = itmModel(t, c.wt)
			var got matchJSON
			runJSONInto(t, &got, append(args, "--json")...)
			if len(got.Results) != len(g.Items) {
				t.Fatalf("%d results", len(got.Results))
			}
			worst := 0.0
			for i, it := range g.Items {
				r := got.Results[i]
				if r.Text != it.Text {
					t.Errorf("result %d is %q, want %q", i, r.Text, it.Text)
				}
				for j, want := range append(append([]float64{}, it.ITMLogits...), it.ITC...) {
					v := r.ITC
					if j < 2 {
						v = r.ITMLogits[j]
					}
					worst = math.Max(worst, math.Abs(v-want))
				}
				p := 1 / (1 + math.Exp(r.ITMLogits[0]-r.ITMLogits[1]))
				if math.Abs(p-r.ITM) > 1e-6 {
					t.Errorf("%q: itm %g, softmax of the logits %g", it.Text, r.ITM, p)
				}
			}
			t.Logf("%s: largest deviation from transformers %.3g", c.wt, worst)
			if worst > c.tol {
				t.Errorf("deviation %.3g > %g", worst, c.tol)
			}
		})
	}
}

// TestMatchRefusals: a generation model, no text, a label prompt without
// {} are one line each.
func TestMatchRefusals(t *testing.T) {
	img := filepath.Join(goldenRoot, "images", "husky.jpg")
	gen := filepath.Join(t.TempDir(), "opt")
	if _, err := convert.Convert(context.Background(), filepath.Join(goldenRoot, "blip2-opt", "hf"), gen, convert.Options{VisionOnly: true}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"match", "-m", gen, img, "a dog"}, 1, "has no image-text matching heads"},
		{[]string{"match", "-m", itmModel(t, "q8_0"), img}, 2, "usage: blip2chat match"},
		{[]string{"match", "-m", itmModel(t, "q8_0"), img, "--labels", "a,b", "--label-prompt", "photo"}, 2, "has no {}"},
		{[]string{"match", "-m", itmModel(t, "q8_0"), img, "x", "--rerank", "2"}, 2, "apply to --labels"},
		{[]string{"match", "-m", itmModel(t, "q8_0"), filepath.Join(goldenRoot, "images", "images.json"), "x"}, 1, "images.json"},
	} {
		var out, errb bytes.Buffer
		code := run(c.args, &out, &errb)
		if code != c.code || !strings.Contains(errb.String(), c.want) || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want %d and one line with %q", c.args[4:], code, errb.String(), c.code, c.want)
		}
	}
}

// photoFolder is the golden images plus 200 generated ones (copies,
// resized, rotated, in subfolders) and broken files: a truncated JPEG, a
// text file named .png, an empty .jpg.
func photoFolder(t testing.TB) (dir string, images, broken int) {
	t.Helper()
	dir = t.TempDir()
	src, _ := filepath.Glob(filepath.Join(goldenRoot, "images", "*"))
	var golden []string
	for _, p := range src {
		if !index.IsImageName(p) {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, filepath.Base(p)), data, 0o644)
		golden = append(golden, p)
	}
	for i := 0; i < 200; i++ {
		p := golden[i%len(golden)]
		sub := filepath.Join(dir, fmt.Sprintf("set%d", i%5))
		os.MkdirAll(sub, 0o755)
		out := filepath.Join(sub, fmt.Sprintf("%03d-%s", i, strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))))
		switch i % 3 {
		case 0: // a byte copy (of the small ones: decoding is most of the time)
			if st, _ := os.Stat(p); st.Size() > 64<<10 {
				p = filepath.Join(goldenRoot, "images", "gray.jpeg")
			}
			data, _ := os.ReadFile(p)
			os.WriteFile(out+filepath.Ext(p), data, 0o644)
		case 1: // resized
			img := loadRGB(t, p)
			w := 40 + (i*7)%200
			dst := image.NewNRGBA(image.Rect(0, 0, w, w*3/4))
			draw.ApproxBiLinear.Scale(dst, dst.Bounds(), img, img.Bounds(), draw.Src, nil)
			writeImage(t, out+".png", dst)
		case 2: // rotated by 90 degrees
			img := loadRGB(t, p)
			b := img.Bounds()
			small := image.NewNRGBA(image.Rect(0, 0, 96, 96*b.Dy()/b.Dx()+1))
			draw.ApproxBiLinear.Scale(small, small.Bounds(), img, b, draw.Src, nil)
			sb := small.Bounds()
			rot := image.NewNRGBA(image.Rect(0, 0, sb.Dy(), sb.Dx()))
			for y := 0; y < sb.Dy(); y++ {
				for x := 0; x < sb.Dx(); x++ {
					rot.Set(sb.Dy()-1-y, x, small.At(x, y))
				}
			}
			writeImage(t, out+".jpg", rot)
		}
	}
	cat, _ := os.ReadFile(filepath.Join(goldenRoot, "images", "cat.jpg"))
	os.WriteFile(filepath.Join(dir, "set1", "truncated.jpg"), cat[:len(cat)/3], 0o644)
	os.WriteFile(filepath.Join(dir, "set2", "notes.png"), []byte("these are notes, not an image"), 0o644)
	os.WriteFile(filepath.Join(dir, "empty.jpg"), nil, 0o644)
	return dir, len(golden) + 200, 3
}

func loadRGB(t testing.TB, p string) *image.NRGBA {
	t.Helper()
	img, err := imageprep.Load(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return imageprep.ToRGB(img)
}

func writeImage(t testing.TB, p string, img image.Image) {
	t.Helper()
	var b bytes.Buffer
	var err error
	if strings.HasSuffix(p, ".png") {
		err = png.Encode(&b, img)
	} else {
		err = jpeg.Encode(&b, img, &jpeg.Options{Quality: 90})
	}
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p, b.Bytes(), 0o644)
}

type searchJSON struct {
	Results []struct {
		Path string   `json:"path"`
		ITC  float64  `json:"itc"`
		ITM  *float64 `json:"itm"`
	} `json:"results"`
}

// TestIndexSearch: index then search a folder of the golden images and
// 200 generated ones: broken files are skipped with a warning each and
// counted; search ranks by the scores match computes image by image; a
// second index of the unchanged folder reads nothing and takes under a
// second; deleting and touching files is picked up; --rerank orders the
// hits by the matching head's P(match), as match computes it.
func TestIndexSearch(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	model := itmModel(t, "q8_0")
	dir, images, broken := photoFolder(t)

	var out, errb bytes.Buffer
	if code := run([]string{"index", "-m", model, dir, "--threads", "2"}, &out, &errb); code != 0 {
		t.Fatalf("index: exit %d: %s", code, errb.String())
	}
	want := fmt.Sprintf("%d images: %d embedded, 0 unchanged, 0 removed, %d unreadable (skipped)", images+broken, images, broken)
	if !strings.Contains(out.String(), want) {
		t.Errorf("index: %q, want %q", out.String(), want)
	}
	if n := strings.Count(errb.String(), "warning: skipped "); n != broken {
		t.Errorf("%d warnings, want %d: %s", n, broken, errb.String())
	}
	t.Logf("first index: %s", strings.TrimSpace(out.String()))

	const query = "a dog in the snow"
	var res searchJSON
	runJSONInto(t, &res, "search", dir, query, "-k", "1000", "--json")
	if len(res.Results) != images {
		t.Fatalf("%d results, want %d", len(res.Results), images)
	}
	// The ranking is by the scores match computes one by one (a sample:
	// the first five, and every 40th).
	for i, r := range res.Results {
		if i > 0 && r.ITC > res.Results[i-1].ITC {
			t.Errorf("not sorted at %d", i)
		}
		if i >= 5 && i%40 != 0 {
			continue
		}
		var m matchJSON
		runJSONInto(t, &m, "match", "-m", model, r.Path, query, "--json")
		if d := math.Abs(m.Results[0].ITC - r.ITC); d > 1e-5 {
			t.Errorf("%s: search %g, match %g", r.Path, r.ITC, m.Results[0].ITC)
		}
	}

	// Unchanged: nothing read, under a second.
	out.Reset()
	errb.Reset()
	start := time.Now()
	if code := run([]string{"index", dir}, &out, &errb); code != 0 {
		t.Fatalf("second index: %s", errb.String())
	}
	el := time.Since(start)
	if want := fmt.Sprintf("0 embedded, %d unchanged, 0 removed, %d unreadable", images, broken); !strings.Contains(out.String(), want) || errb.Len() != 0 {
		t.Errorf("second index: %q %q, want %q", out.String(), errb.String(), want)
	}
	if el > time.Second {
		t.Errorf("second index took %v", el)
	}
	t.Logf("second index: %v: %s", el.Round(time.Millisecond), strings.TrimSpace(out.String()))

	// Deleted and touched files.
	os.Remove(filepath.Join(dir, "husky.jpg"))
	later := time.Now().Add(time.Minute)
	os.Chtimes(filepath.Join(dir, "cat.jpg"), later, later)
	out.Reset()
	run([]string{"index", dir}, &out, &errb)
	if want := fmt.Sprintf("1 embedded, %d unchanged, 1 removed", images-2); !strings.Contains(out.String(), want) {
		t.Errorf("after changes: %q, want %q", out.String(), want)
	}
	runJSONInto(t, &res, "search", dir, query, "-k", "1000", "--json")
	for _, r := range res.Results {
		if filepath.Base(r.Path) == "husky.jpg" && filepath.Dir(r.Path) == dir {
			t.Error("a deleted image is still found")
		}
	}
	if len(res.Results) != images-1 {
		t.Errorf("%d results after deleting one of %d", len(res.Results), images)
	}

	// --rerank: P(match) from the image, best first, equal to match's.
	runJSONInto(t, &res, "search", dir, query, "-k", "4", "--rerank", "--json")
	if len(res.Results) != 4 {
		t.Fatalf("%d reranked results", len(res.Results))
	}
	for i, r := range res.Results {
		if r.ITM == nil || (i > 0 && *r.ITM > *res.Results[i-1].ITM) {
			t.Fatalf("rerank order: %+v", res.Results)
		}
		var m matchJSON
		runJSONInto(t, &m, "match", "-m", model, r.Path, query, "--json")
		if math.Abs(m.Results[0].ITM-*r.ITM) > 1e-9 {
			t.Errorf("%s: rerank %g, match %g", r.Path, *r.ITM, m.Results[0].ITM)
		}
	}

	// Another model is refused; a generation model searches with the
	// index's, saying so.
	f32 := itmModel(t, "f32")
	if code := run([]string{"search", dir, query, "-m", f32, "--json"}, &out, &errb); code != 0 {
		t.Errorf("the same checkpoint at f32 is refused: %s", errb.String())
	}
	errb.Reset()
	gen := filepath.Join(t.TempDir(), "opt")
	convert.Convert(context.Background(), filepath.Join(goldenRoot, "blip2-opt", "hf"), gen, convert.Options{VisionOnly: true})
	out.Reset()
	if code := run([]string{"search", dir, query, "-m", gen}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "was indexed with "+model) {
		t.Errorf("generation model: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"index", "-m", gen, dir}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "is not a retrieval model") {
		t.Errorf("indexing with a generation model: %q", errb.String())
	}
}

// TestIndexKilled: index killed with SIGKILL midway (the test binary run
// again as blip2chat) leaves an index that searches; the next index
// finishes the folder without embedding again what was committed.
func TestIndexKilled(t *testing.T) {
	if args := os.Getenv("BLIP2CHAT_TEST_RUN"); args != "" {
		os.Exit(run(strings.Split(args, "\x1f"), os.Stdout, os.Stderr))
	}
	data := t.TempDir()
	t.Setenv("XDG_DATA_HOME", data)
	model := itmModel(t, "f32")
	dir, images, _ := photoFolder(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestIndexKilled$")
	cmd.Env = append(os.Environ(), "BLIP2CHAT_TEST_RUN="+strings.Join([]string{"index", "-m", model, dir, "--threads", "1"}, "\x1f"))
	var childErr bytes.Buffer
	cmd.Stderr = &childErr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	appData, err := app.DataDir()
	if err != nil {
		t.Fatal(err)
	}
	indexed := func() int {
		p, _ := index.PathFor(appData, dir)
		ix, err := index.OpenFile(p, dir)
		if err != nil {
			return 0
		}
		defer ix.Close()
		n, _ := ix.Count()
		return n
	}
	deadline := time.Now().Add(2 * time.Minute)
	for indexed() < 32 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("nothing committed in 2 minutes: %s", childErr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	n := indexed()
	if n >= images {
		t.Fatalf("the child finished (%d images) before it was killed", n)
	}
	var res searchJSON
	runJSONInto(t, &res, "search", dir, "a dog", "-k", "1000", "--json")
	if len(res.Results) != n {
		t.Errorf("search after the kill: %d results, %d indexed", len(res.Results), n)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"index", dir}, &out, &errb); code != 0 {
		t.Fatalf("index after the kill: %s", errb.String())
	}
	if want := fmt.Sprintf("%d embedded, %d unchanged", images-n, n); !strings.Contains(out.String(), want) {
		t.Errorf("index after the kill: %q, want %q", out.String(), want)
	}
	t.Logf("killed with %d of %d images committed; the rerun: %s", n, images, strings.TrimSpace(out.String()))
}

// TestDoctorRetrieval: doctor takes a retrieval model folder (vision.gguf
// alone) as complete.
func TestDoctorRetrieval(t *testing.T) {
	lib, err := filepath.Abs(llamatest.LibDir(t))
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"doctor", "-m", itmModel(t, "q8_0"), "--llama-lib", lib}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "a retrieval model (match, index, search): vision.gguf loads") || strings.Contains(out.String(), "MISSING") {
		t.Errorf("exit %d\n%s%s", code, out.String(), errb.String())
	}
}
