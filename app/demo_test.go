package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/app/apptest"
	"github.com/blip2chat/blip2chat/engine/demo"
	"github.com/blip2chat/blip2chat/engine/lm"
)

// The tests in this file drive the real engine (engine/model and
// engine/chat over llama.cpp) on the demo model end to end: no part of the
// engine is replaced. They need the llama.cpp library.

func TestMain(m *testing.M) {
	code := m.Run()
	if testData != "" {
		os.RemoveAll(testData)
	}
	if code == 0 {
		// Every app closed by the tests must have stopped its goroutines.
		// engine/kernels keeps a process-wide worker pool by design.
		if err := goleak.Find(goleak.IgnoreTopFunction("github.com/blip2chat/blip2chat/engine/kernels.(*Pool).worker")); err != nil {
			os.Stderr.WriteString("goroutine leak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

var (
	demoOnce sync.Once
	testData string
	demoErr  error
)

// demoSource is the random-weight demo model (built once per test run),
// opened by the real engine: its answers run on, as these tests of
// streaming and stopping need. TestTrainedDemo tries the trained one.
func demoSource(t testing.TB) *app.ModelSource {
	t.Helper()
	lib := apptest.LlamaLib(t)
	demoOnce.Do(func() {
		testData, demoErr = os.MkdirTemp("", "blip2chat-app-test-")
		if demoErr == nil {
			_, demoErr = demo.EnsureRandom(context.Background(), testData)
		}
	})
	if demoErr != nil {
		t.Fatal(demoErr)
	}
	return app.RandomDemoSource(testData, app.OpenOptions{LlamaLib: lib})
}

// newDemoApp starts an app on the demo model with its sample image and
// testSettings, and waits until it is ready.
func newDemoApp(t *testing.T, sessDir string, resume *app.Session) *app.App {
	t.Helper()
	s := testSettings
	a := app.New(app.Options{Model: demoSource(t), SessionsDir: sessDir, Settings: &s, Resume: resume, SaveDir: t.TempDir()})
	t.Cleanup(func() { a.Close() })
	a.Start()
	if st := waitIdle(t, a); !st.HasModel || st.Image == nil {
		t.Fatalf("not ready: %s", transcript(st))
	}
	return a
}

// TestDemoModelEndToEnd: on the real model an answer streams token by
// token with its numbers, the context counts the soft tokens, /tokens and
// /info show the real model, Esc stops a long answer, and a resumed
// session puts its turns back into the real context.
func TestDemoModelEndToEnd(t *testing.T) {
	sessDir := t.TempDir()
	a := newDemoApp(t, sessDir, nil)
	st := a.Snapshot()
	if st.Settings.Seed != 7 || st.Settings.MaxTokens != 24 || filepath.Base(st.ImagePath) != "sample.png" {
		t.Errorf("settings %+v, image %s", st.Settings, st.ImagePath)
	}

	a.Submit("/set max_tokens 300")
	waitIdle(t, a)
	var seen []string
	a.Submit("What is in the picture?")
	st = waitFor(t, a, "the answer", func(s app.State) bool {
		if e, ok := lastOf(s, app.EntryAnswer); ok && e.Streaming && e.Text != "" && (len(seen) == 0 || seen[len(seen)-1] != e.Text) {
			seen = append(seen, e.Text)
		}
		return apptest.Idle(s)
	})
	ans, _ := lastOf(st, app.EntryAnswer)
	if ans.Streaming || ans.Text == "" || ans.Stats == nil || ans.Stats.Tokens == 0 {
		t.Fatalf("answer = %+v", ans)
	}
	if len(seen) < 2 {
		t.Errorf("saw %d partial answers, want the answer to grow token by token", len(seen))
	}
	for _, s := range seen {
		if !strings.HasPrefix(ans.Text, s) {
			t.Errorf("partial answer %q is not a prefix of %q", s, ans.Text)
		}
	}
	if ans.Stop != lm.StopEOG && ans.Stop != lm.StopMaxTokens {
		t.Errorf("stop = %q", ans.Stop)
	}
	if st.Last == nil || st.Last.TokensPerSec <= 0 || st.Last.FirstToken <= 0 {
		t.Errorf("no speed numbers: %+v", st.Last)
	}
	if st.CtxUsed <= 32 || st.CtxTotal < st.CtxUsed {
		t.Errorf("context %d/%d: want the 32 soft tokens and the turn counted", st.CtxUsed, st.CtxTotal)
	}
	t.Logf("answer %q: %d tokens, %.0f tok/s, first token %v", ans.Text, ans.Stats.Tokens, ans.Stats.TokensPerSec, ans.Stats.FirstToken)

	note := func(line string) string {
		t.Helper()
		n := len(a.Snapshot().Entries)
		a.Submit(line)
		st := waitIdle(t, a)
		for _, e := range st.Entries[n:] {
			if e.Kind == app.EntryNote {
				return apptest.NoteText(e)
			}
		}
		t.Fatalf("%s: no note:\n%s", line, transcript(st))
		return ""
	}
	if tok := note("/tokens hello there"); !strings.Contains(tok, "[image ×32]") || !strings.Contains(tok, `"▁Q"`) && !strings.Contains(tok, "Q") {
		t.Errorf("/tokens: %s", tok)
	}
	info := note("/info")
	for _, w := range []string{"Model", "llama.cpp", "Context", "random weights"} {
		if !strings.Contains(info, w) {
			t.Errorf("/info lacks %q:\n%s", w, info)
		}
	}

	// Esc stops a long answer; what came stays.
	a.Submit("/set max_tokens 100000")
	waitIdle(t, a)
	a.Submit("Describe everything in great detail.")
	waitFor(t, a, "some text", func(s app.State) bool {
		e, ok := lastOf(s, app.EntryAnswer)
		return ok && e.Streaming && len(e.Text) > 10
	})
	if !a.Cancel() {
		t.Fatal("Cancel found nothing to stop")
	}
	st = waitIdle(t, a)
	if e, _ := lastOf(st, app.EntryAnswer); e.Stop != lm.StopCancelled || e.Text == "" {
		t.Fatalf("after Esc: %+v", e)
	}

	// Resume: the two turns go back into the real context.
	id := st.SessionID
	a.Close()
	s, err := app.FindSession(sessDir, id)
	if err != nil {
		t.Fatal(err)
	}
	b := newDemoApp(t, sessDir, s)
	b.Submit("/tokens x")
	st = waitIdle(t, b)
	n, _ := lastOf(st, app.EntryNote)
	var ntok int
	fmt.Sscanf(n.Text[strings.Index(n.Text, " is ")+4:], "%d", &ntok)
	if ntok < 30 { // "Question: x Answer:" alone is under 10
		t.Errorf("the next prompt is %d tokens: it lacks the restored turns (%s)", ntok, n.Text)
	}
	if e, ok := lastOf(st, app.EntryError); ok {
		t.Errorf("resume reported: %s", e.Text)
	}
}

// holdViT makes the demo model's ViT observable and slow: when it reaches
// its second layer it closes reached, then waits for hold to return; it
// records whether any later activation of the ViT was computed.
func holdViT(t *testing.T, a *app.App, hold func()) (reached <-chan struct{}, ranOn *atomic.Bool, stop func()) {
	t.Helper()
	r := make(chan struct{})
	var once sync.Once
	var later atomic.Bool
	vis := app.VisionOf(a)
	if vis == nil {
		t.Fatal("the app's engine is not the real one")
	}
	if n := vis.Info().Vision.Layers; n != 2 {
		t.Fatalf("the demo ViT has %d layers; the test stops it after the first of 2", n)
	}
	vis.SetTrace(func(name string, rows, cols int, data []float32) {
		switch name {
		case "vision_hidden_states.1":
			once.Do(func() {
				close(r)
				hold()
			})
		case "vision_hidden_states.2", "vision_last_hidden_state":
			later.Store(true)
		}
	})
	return r, &later, func() { vis.SetTrace(nil) }
}

func waitChan(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(60 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestCancelStopsTheViT: Esc while the real ViT runs stops it at its next
// layer, and so does closing the app (Ctrl+C), instead of waiting for the
// whole encoder.
func TestCancelStopsTheViT(t *testing.T) {
	other := otherImage(t)
	a := newDemoApp(t, t.TempDir(), nil)
	before := a.Snapshot()
	release := make(chan struct{})
	reached, ranOn, stop := holdViT(t, a, func() { <-release })
	a.Submit("/image " + other)
	waitChan(t, reached, "the ViT's second layer")
	if st := a.Snapshot(); st.Phase != app.Encoding {
		t.Fatalf("phase %v while the ViT runs", st.Phase)
	}
	if !a.Cancel() {
		t.Fatal("Cancel found nothing to stop while encoding")
	}
	close(release)
	st := waitIdle(t, a)
	stop()
	if ranOn.Load() {
		t.Error("the ViT went on after the cancel")
	}
	if st.ImagePath != before.ImagePath || st.Image != before.Image {
		t.Errorf("after the cancel the image is %s, was %s", st.ImagePath, before.ImagePath)
	}

	reached, ranOn, _ = holdViT(t, a, func() {
		// Hold the encoder mid-run until Close cancels the app's work.
		select {
		case <-app.Closing(a):
		case <-time.After(60 * time.Second):
		}
	})
	a.Submit("/image " + other)
	waitChan(t, reached, "the ViT's second layer")
	start := time.Now()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	t.Logf("Close took %v with the ViT mid-run", d)
	if d > 10*time.Second {
		t.Errorf("Close took %v", d)
	}
	if ranOn.Load() {
		t.Error("the ViT ran to its end after Close")
	}
}

// TestU6LongPromptAnswersQuickly: a question as long as the input box
// takes (16K characters, ui's cap) is refused by the real engine within
// a second or two, saying that it does not fit the context.
func TestU6LongPromptAnswersQuickly(t *testing.T) {
	a := newDemoApp(t, t.TempDir(), nil)
	q := strings.Repeat("describe the picture in every detail ", 16<<10/37)
	start := time.Now()
	a.Submit(q)
	st := waitIdle(t, a)
	d := time.Since(start)
	e, ok := lastOf(st, app.EntryError)
	if !ok || !strings.Contains(e.Text, "does not fit the context") {
		t.Fatalf("a %d-character question:\n%s", len(q), transcript(st))
	}
	t.Logf("%d characters refused in %v: %s", len(q), d, e.Text)
	if d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestTrainedDemo opens the demo as `blip2chat demo` does (DemoSource): the
// trained model, labelled as trained only on synthetic shapes, decoding
// with DemoPreset, on its first sample scene. Asked the caption and every
// question the generator made for that scene, it must answer what the
// trained checkpoint answers in PyTorch (engine/demo/samples/pytorch.json,
// greedy): the demo decodes as the model was measured. How many of those
// answers are right is logged (the generator's answers,
// samples/scenes.jsonl).
func TestTrainedDemo(t *testing.T) {
	lib := apptest.LlamaLib(t)
	data := t.TempDir()
	a := app.New(app.Options{Model: app.DemoSource(data, app.OpenOptions{LlamaLib: lib}), SessionsDir: t.TempDir(), SaveDir: t.TempDir()})
	t.Cleanup(func() { a.Close() })
	a.Start()
	st := waitIdle(t, a)
	if !st.HasModel || st.Image == nil || filepath.Base(st.ImagePath) != demo.SampleName {
		t.Fatalf("not ready on the sample scene: %s", transcript(st))
	}
	if !st.Demo || st.DemoLabel != demo.Label || st.Settings.Preset != app.DemoPreset {
		t.Errorf("demo %v, label %q, preset %q", st.Demo, st.DemoLabel, st.Settings.Preset)
	}

	b, err := os.ReadFile(filepath.Join("..", "engine", "demo", "samples", "pytorch.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Items []struct{ File, Q, Want, Got string }
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	n, right := 0, 0
	for _, it := range ref.Items {
		if it.File != demo.SampleName {
			continue
		}
		q := it.Q
		if q == "" {
			q = "/caption"
		}
		a.Submit("/reset") // one fresh conversation per question, as PyTorch was asked
		waitIdle(t, a)
		a.Submit(q)
		st := waitIdle(t, a)
		ans, _ := lastOf(st, app.EntryAnswer)
		got := strings.TrimSpace(ans.Text)
		if got != it.Got {
			t.Errorf("%s: %q, PyTorch answers %q", q, got, it.Got)
		}
		n++
		if got == it.Want {
			right++
		}
		t.Logf("%-45s %-45q (generator: %q)", q, got, it.Want)
	}
	if n < 7 {
		t.Fatalf("pytorch.json has %d answers about %s, want the caption and six questions", n, demo.SampleName)
	}
	t.Logf("%d of %d right", right, n)
}
