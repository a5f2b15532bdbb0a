package app_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/app/apptest"
	"github.com/blip2chat/blip2chat/engine/index"
	"github.com/blip2chat/blip2chat/engine/retrieval"
	"github.com/blip2chat/blip2chat/engine/vision"
	"github.com/blip2chat/blip2chat/weights/convert"
)

const goldenDir = "../testdata/golden"

func startMatch(t *testing.T, eng app.Engine, src *app.ModelSource) *app.App {
	t.Helper()
	a := app.New(app.Options{Model: src})
	t.Cleanup(func() { a.Close() })
	a.Start()
	apptest.WaitFor(t, a, "the image", func(s app.State) bool { return apptest.Idle(s) && s.ImagePath != "" })
	return a
}

func lastNote(t *testing.T, a *app.App, what string) app.Entry {
	t.Helper()
	st := apptest.WaitIdle(t, a)
	e := st.Entries[len(st.Entries)-1]
	if e.Kind != app.EntryNote || len(e.Bars) == 0 {
		t.Fatalf("%s: the last entry is not a chart:\n%s", what, apptest.Transcript(st))
	}
	return e
}

// TestMatchAndLabels: /match ranks the texts by P(match) as bars, /labels
// by probability; both say in one line what is missing (texts, a
// retrieval model).
func TestMatchAndLabels(t *testing.T) {
	dir := t.TempDir()
	eng := apptest.NewMatchEngine()
	eng.Scores = map[string]float64{"a dog": 0.9, "a cat": 0.2, "a car": 0.5}
	a := startMatch(t, eng, eng.Source(dir, apptest.WritePNG(t, dir, "dog.png", 40, 30)))

	a.Submit("/match a cat | a dog|  | a car")
	e := lastNote(t, a, "/match")
	var got []string
	for _, b := range e.Bars {
		got = append(got, b.Label+" "+b.Value+" "+b.Remark)
	}
	if want := "a dog 90.0% ITC 0.450|a car 50.0% ITC 0.250|a cat 20.0% ITC 0.100"; strings.Join(got, "|") != want {
		t.Errorf("bars %q, want %q", strings.Join(got, "|"), want)
	}
	if e.Bars[0].Fraction != 0.9 {
		t.Errorf("fraction %g", e.Bars[0].Fraction)
	}

	a.Submit("/labels a cat, a dog, a car")
	e = lastNote(t, a, "/labels")
	if e.Bars[0].Label != "a dog" || e.Bars[2].Label != "a cat" || !strings.HasSuffix(e.Bars[0].Value, "%") {
		t.Errorf("labels %+v", e.Bars)
	}
	var sum float64
	for _, b := range e.Bars {
		sum += b.Fraction
	}
	if sum < 0.999 || sum > 1.001 {
		t.Errorf("label probabilities sum to %g", sum)
	}

	for _, c := range []struct{ line, want string }{
		{"/match  | ", "usage: /match TEXT | TEXT"},
		{"/labels ,", "usage: /labels A, B"},
	} {
		a.Submit(c.line)
		st := apptest.WaitIdle(t, a)
		if e, _ := apptest.Last(st, app.EntryError); !strings.Contains(e.Text, c.want) {
			t.Errorf("%q: %q", c.line, e.Text)
		}
	}

	// A generation model: one line.
	gen := apptest.NewEngine()
	b := startMatch(t, gen, gen.Source(dir, apptest.WritePNG(t, dir, "cat.png", 40, 30)))
	b.Submit("/match a dog")
	st := apptest.WaitIdle(t, b)
	if e, _ := apptest.Last(st, app.EntryError); !strings.Contains(e.Text, "has no image-text matching head") {
		t.Errorf("generation model: %q", e.Text)
	}
}

// itmModel converts the golden retrieval checkpoint.
func itmModel(t *testing.T) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "itm")
	if _, err := convert.Convert(context.Background(), filepath.Join(goldenDir, "blip2-itm", "hf"), d, convert.Options{VisionType: "f32"}); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestRetrievalModelSession: the real engine opens a retrieval model; a
// question is refused in one line, /match gives match's numbers, /search
// lists an indexed folder's images by the same scores and /image N opens
// a hit.
func TestRetrievalModelSession(t *testing.T) {
	data := t.TempDir()
	t.Setenv("XDG_DATA_HOME", data)
	model := itmModel(t)
	husky := filepath.Join(goldenDir, "images", "husky.jpg")
	src := &app.ModelSource{Dir: model, Image: husky, Open: func(ctx context.Context, status func(string)) (app.Engine, error) {
		return app.OpenEngine(ctx, model, app.OpenOptions{Threads: 1})
	}}
	a := startMatch(t, nil, src)
	if st := a.Snapshot(); !strings.Contains(st.Model.Desc, "retrieval") {
		t.Errorf("desc %q", st.Model.Desc)
	}
	a.Submit("what is it?")
	st := apptest.WaitIdle(t, a)
	if e, _ := apptest.Last(st, app.EntryError); !strings.Contains(e.Text, "cannot answer questions: use /match") {
		t.Errorf("question: %q", apptest.Transcript(st))
	}
	if _, ok := apptest.Last(st, app.EntryQuestion); ok {
		t.Error("the refused question stays in the transcript")
	}

	m, err := retrieval.Open(model, vision.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	img, err := m.EncodeFile(context.Background(), husky)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := m.Match(context.Background(), img, []string{"a dog in the snow"})
	a.Submit("/match a dog in the snow | two people riding bicycles")
	e := lastNote(t, a, "/match")
	if e.Bars[0].Label != "a dog in the snow" || e.Bars[0].Fraction != want[0].ITM {
		t.Errorf("match %+v, want P %g", e.Bars[0], want[0].ITM)
	}

	// /search over an indexed folder.
	folder := filepath.Join(goldenDir, "images")
	ix, err := index.Create(filepath.Join(data, "blip2chat"), folder)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Update(context.Background(), m.Encoder(), index.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	emb, _, _ := ix.Load(context.Background())
	ix.Close()
	hits, _ := m.Search(context.Background(), emb, "a dog", 10)
	a.Submit("/search a dog")
	e = lastNote(t, a, "/search")
	if len(e.Bars) != len(hits) || !strings.HasSuffix(e.Bars[0].Label, hits[0].Path) || !strings.Contains(e.Text, "/image N") {
		t.Fatalf("search %q %+v, want %v", e.Text, e.Bars, hits)
	}
	a.Submit("/image 2")
	st = apptest.WaitFor(t, a, "hit 2", func(s app.State) bool { return apptest.Idle(s) && s.ImagePath == hits[1].Path })
	if e, ok := apptest.Last(st, app.EntryImage); !ok || e.Text != hits[1].Path {
		t.Errorf("image entry %q", e.Text)
	}
}

// TestSearchWithoutIndex: /search before any folder is indexed says how
// to make one.
func TestSearchWithoutIndex(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	dir := t.TempDir()
	eng := apptest.NewEngine()
	a := startMatch(t, eng, eng.Source(dir, apptest.WritePNG(t, dir, "x.png", 20, 20)))
	a.Submit("/search a dog")
	st := apptest.WaitIdle(t, a)
	if e, _ := apptest.Last(st, app.EntryError); !strings.Contains(e.Text, "blip2chat index") {
		t.Errorf("%q", e.Text)
	}
}
