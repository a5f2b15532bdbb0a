package ui

import (
	"bytes"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/muesli/termenv"
	"go.uber.org/goleak"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/app/apptest"
	"github.com/blip2chat/blip2chat/engine/lm"
)

// Goroutines that outlive a test by design: engine/kernels' worker pool,
// rgbterm's writers (started by image2ascii's dependency at init),
// teatest's interrupt watcher, and the cursor blink timer (it ends within
// half a second).
var leakOpts = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/aybabtme/rgbterm.interpret"),
	goleak.IgnoreAnyFunction("github.com/charmbracelet/bubbles/cursor.(*Model).BlinkCmd.func1"),
	goleak.IgnoreTopFunction("github.com/blip2chat/blip2chat/engine/kernels.(*Pool).worker"),
	goleak.IgnoreAnyFunction("github.com/charmbracelet/x/exp/teatest.NewTestModel.func2"),
	goleak.IgnoreAnyFunction("os/signal.loop"),
	goleak.IgnoreAnyFunction("os/signal.signal_recv"),
}

// llamaLib is the library the tests on the demo model use: they are
// skipped without it.
func llamaLib(t testing.TB) string { return apptest.LlamaLib(t) }

var (
	waitApp = apptest.WaitFor
	idle    = apptest.Idle
)

func lastAnswer(s app.State) app.Entry {
	e, _ := apptest.Last(s, app.EntryAnswer)
	return e
}

// screen accumulates what the program wrote to the terminal, so that
// waits can look at everything shown since a mark (teatest's reader hands
// each byte out once).
type screen struct {
	tm   *teatest.TestModel
	buf  bytes.Buffer
	from int
}

// mark makes later waits look only at output written after it.
func (s *screen) mark() {
	s.read()
	s.from = s.buf.Len()
}

func (s *screen) read() {
	b := make([]byte, 64<<10)
	for {
		n, _ := s.tm.Output().Read(b)
		if n == 0 {
			return
		}
		s.buf.Write(b[:n])
	}
}

// has waits until the output since the mark shows text (90 s: on a machine
// shared with other jobs the renderer may lag far behind the app state).
func (s *screen) has(t *testing.T, text string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		s.read()
		if strings.Contains(ansi.Strip(string(s.buf.Bytes()[s.from:])), text) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the screen never showed %q; output since the mark:\n%s", text, ansi.Strip(string(s.buf.Bytes()[s.from:])))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var (
	enter = tea.KeyMsg{Type: tea.KeyEnter}
	esc   = tea.KeyMsg{Type: tea.KeyEsc}
	tab   = tea.KeyMsg{Type: tea.KeyTab}
	ctrlC = tea.KeyMsg{Type: tea.KeyCtrlC}
)

// TestDemoSession drives the whole interface, on the real engine and the
// random-weight demo model (its answers run on, so Esc has one to stop):
// the sample image -> /image another -> ask (the answer
// streams) -> Esc -> /retry -> /save -> a 60-column terminal stacks the
// panes -> Ctrl+C.
func TestDemoSession(t *testing.T) {
	lib := llamaLib(t)
	data := t.TempDir()
	a := app.New(app.Options{
		Model:       app.RandomDemoSource(data, app.OpenOptions{LlamaLib: lib}),
		SessionsDir: app.SessionsDir(data),
		SaveDir:     t.TempDir(),
	})
	tm := teatest.NewTestModel(t, New(a, Options{ImageMode: ASCII}), teatest.WithInitialTermSize(120, 40))
	scr := &screen{tm: tm}
	t.Cleanup(func() { tm.Quit(); a.Close() })

	// Loading: the demo label is prominent, the sample image shows.
	scr.has(t, "DEMO  demo model: random weights, answers are meaningless")
	st := waitApp(t, a, "the sample image", func(s app.State) bool { return idle(s) && s.Image != nil })
	if filepath.Base(st.ImagePath) != "sample.png" {
		t.Fatalf("image %s", st.ImagePath)
	}
	scr.has(t, "╭─ sample.png · ascii")

	// /image with Tab completion of the command and of the path.
	tm.Type("/ima")
	tm.Send(tab)
	tm.Type("../testdata/golden/images/ca")
	tm.Send(tab)
	tm.Send(enter)
	st = waitApp(t, a, "cat.jpg", func(s app.State) bool { return idle(s) && filepath.Base(s.ImagePath) == "cat.jpg" })
	scr.has(t, "▣ image cat.jpg")

	// Ask: the answer streams token by token into the transcript.
	tm.Type("/set seed 7")
	tm.Send(enter)
	waitApp(t, a, "seed", func(s app.State) bool { return idle(s) && s.Settings.Seed == 7 })
	tm.Type("/set max_tokens 300") // long enough to watch it stream
	tm.Send(enter)
	waitApp(t, a, "max_tokens", func(s app.State) bool { return idle(s) && s.Settings.MaxTokens == 300 })
	tm.Type("What is in the picture?")
	tm.Send(enter)
	var partial []string
	st = waitApp(t, a, "the answer", func(s app.State) bool {
		if e := lastAnswer(s); e.Streaming && e.Text != "" && (len(partial) == 0 || partial[len(partial)-1] != e.Text) {
			partial = append(partial, e.Text)
		}
		return idle(s) && lastAnswer(s).Text != ""
	})
	ans := lastAnswer(st)
	if len(partial) < 2 {
		t.Errorf("the answer came in %d pieces, want it streamed", len(partial))
	}
	scr.has(t, "What is in the picture?")
	first := strings.Fields(printable(ans.Text))[0]
	scr.has(t, first)
	scr.has(t, "tok/s")

	scr.mark()
	// Esc stops a long answer: the text stays, marked stopped.
	tm.Type("/set max_tokens 100000")
	tm.Send(enter)
	waitApp(t, a, "max_tokens", func(s app.State) bool { return idle(s) && s.Settings.MaxTokens == 100000 })
	tm.Type("Tell me everything.")
	tm.Send(enter)
	waitApp(t, a, "a long answer", func(s app.State) bool { e := lastAnswer(s); return e.Streaming && len(e.Text) > 20 })
	tm.Send(esc)
	st = waitApp(t, a, "the stop", func(s app.State) bool { return idle(s) })
	if e := lastAnswer(st); e.Stop != lm.StopCancelled || e.Text == "" {
		t.Fatalf("after Esc: %+v", e)
	}
	scr.has(t, "■ stopped")

	// /retry generates the last answer again in place.
	tm.Type("/set max_tokens 16")
	tm.Send(enter)
	waitApp(t, a, "max_tokens", func(s app.State) bool { return idle(s) && s.Settings.MaxTokens == 16 })
	n := len(a.Snapshot().Entries)
	tm.Type("/retry")
	tm.Send(enter)
	st = waitApp(t, a, "the retry", func(s app.State) bool { return idle(s) && lastAnswer(s).Retries == 1 })
	if len(st.Entries) != n || lastAnswer(st).Stop == lm.StopCancelled {
		t.Errorf("retry: %d entries (was %d), %+v", len(st.Entries), n, lastAnswer(st))
	}
	scr.has(t, "↻ 1")

	// /save writes the Markdown transcript.
	out := filepath.Join(t.TempDir(), "chat.md")
	tm.Type("/save " + out)
	tm.Send(enter)
	scr.has(t, "Saved the transcript to")
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"cat.jpg", "**You:** What is in the picture?", "**You:** Tell me everything.", "| max_tokens | `16` |"} {
		if !bytes.Contains(md, []byte(w)) {
			t.Errorf("saved transcript lacks %q", w)
		}
	}

	// 60 columns: the image goes above the chat.
	scr.mark()
	tm.Send(tea.WindowSizeMsg{Width: 60, Height: 30})
	scr.has(t, "╭─ cat.jpg · ascii "+strings.Repeat("─", 60-5-len("cat.jpg · ascii")+1)+"╮")
	tm.Send(ctrlC)
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*Model)
	if err := a.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	screen := ansi.Strip(fm.render())
	lines := strings.Split(screen, "\n")
	if len(lines) != 30 {
		t.Errorf("screen has %d lines, want 30", len(lines))
	}
	imageTop, chatTop := -1, -1
	for i, l := range lines {
		if w := ansi.StringWidth(l); w > 60 {
			t.Errorf("line %d is %d columns wide: %q", i, w, l)
		}
		if strings.HasPrefix(l, "╭─ cat.jpg") {
			imageTop = i
		}
		if strings.HasPrefix(l, "╭─ chat") {
			chatTop = i
		}
	}
	if imageTop != 1 || chatTop <= imageTop {
		t.Errorf("at 60 columns the image pane starts at line %d and the chat at %d, want the image on top:\n%s", imageTop, chatTop, screen)
	}
	if s, err := app.FindSession(app.SessionsDir(data), ""); err != nil || len(s.All) != 2 {
		t.Errorf("session file: %v, %+v", err, s)
	}
	goleak.VerifyNone(t, leakOpts...)
}

// TestNoModelScreen is the first screen of 'blip2chat' with no model:
// golden at 80x24 and, stacked, at 60x24.
func TestNoModelScreen(t *testing.T) {
	a := app.New(app.Options{Demo: func() *app.ModelSource { return nil }})
	tm := teatest.NewTestModel(t, New(a, Options{Version: "test"}), teatest.WithInitialTermSize(80, 24))
	scr := &screen{tm: tm}
	t.Cleanup(func() { tm.Quit(); a.Close() })
	scr.has(t, "No model yet")
	scr.has(t, "/demo")
	tm.Send(ctrlC)
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*Model)
	a.Close()
	t.Run("80x24", func(t *testing.T) {
		golden.RequireEqual(t, []byte(ansi.Strip(fm.render())))
	})
	fm.Update(tea.WindowSizeMsg{Width: 60, Height: 24})
	t.Run("60x24", func(t *testing.T) {
		golden.RequireEqual(t, []byte(ansi.Strip(fm.render())))
	})
	goleak.VerifyNone(t, leakOpts...)
}

// TestQuitWhileAnswering: Ctrl+C in the middle of an answer ends the
// program cleanly, and closing the app stops the generation.
func TestQuitWhileAnswering(t *testing.T) {
	lib := llamaLib(t)
	data := t.TempDir()
	a := app.New(app.Options{Model: app.RandomDemoSource(data, app.OpenOptions{LlamaLib: lib}), SessionsDir: app.SessionsDir(data)})
	tm := teatest.NewTestModel(t, New(a, Options{}), teatest.WithInitialTermSize(80, 24))
	t.Cleanup(func() { tm.Quit(); a.Close() })
	waitApp(t, a, "ready", func(s app.State) bool { return idle(s) && s.Image != nil })
	tm.Type("/set max_tokens 1000000")
	tm.Send(enter)
	waitApp(t, a, "max_tokens", func(s app.State) bool { return idle(s) && s.Settings.MaxTokens == 1000000 })
	tm.Type("Go on forever.")
	tm.Send(enter)
	waitApp(t, a, "streaming", func(s app.State) bool { return lastAnswer(s).Streaming && lastAnswer(s).Text != "" })
	tm.Send(ctrlC)
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
	done := make(chan error)
	go func() { done <- a.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not stop the answer")
	}
	goleak.VerifyNone(t, leakOpts...)
}

// TestImageRendering checks the aspect ratio kept by fitCells and both
// renderers' shapes.
func TestImageRendering(t *testing.T) {
	for _, c := range []struct{ w, h, cols, rows, wantC, wantR int }{
		{800, 800, 46, 36, 46, 23}, // square: half as many rows as columns
		{800, 400, 40, 40, 40, 10}, // wide
		{400, 800, 40, 20, 20, 20}, // tall: limited by rows
		{1000, 10, 50, 20, 50, 1},  // a strip still gets one row
		{10, 1000, 50, 20, 1, 20},  // and one column
		{640, 480, 0, 10, 0, 0},    // no room
	} {
		gc, gr := fitCells(c.w, c.h, c.cols, c.rows)
		if gc != c.wantC || gr != c.wantR {
			t.Errorf("fitCells(%d,%d,%d,%d) = %d,%d want %d,%d", c.w, c.h, c.cols, c.rows, gc, gr, c.wantC, c.wantR)
		}
	}
	img := image.NewNRGBA(image.Rect(0, 0, 64, 32))
	for y := 0; y < 32; y++ {
		for x := 0; x < 64; x++ {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x * 4), uint8(y * 8), 128, 255})
		}
	}
	plain := renderImage(img, 20, 20, ASCII, termenv.Ascii, nil)
	if len(plain) != 5 || ansi.StringWidth(plain[0]) != 20 || strings.Contains(plain[0], "\x1b") {
		t.Errorf("ascii without colour: %q", plain)
	}
	col := renderImage(img, 20, 20, ASCII, termenv.TrueColor, nil)
	if len(col) != 5 || ansi.StringWidth(col[0]) != 20 || !strings.Contains(col[0], "\x1b[38;2;") {
		t.Errorf("coloured ascii: %q", col[0])
	}
	hb := renderImage(img, 20, 20, HalfBlock, termenv.TrueColor, nil)
	if len(hb) != 5 || ansi.StringWidth(hb[0]) != 20 || !strings.Contains(hb[0], "▀") || !strings.Contains(hb[0], "\x1b[48;2;") {
		t.Errorf("half-block: %q", hb[0])
	}
	if fb := renderImage(img, 20, 20, HalfBlock, termenv.Ascii, nil); strings.Contains(fb[0], "▀") {
		t.Error("half-block without colour should fall back to ascii")
	}
	if c256 := renderImage(img, 20, 20, HalfBlock, termenv.ANSI256, nil); !strings.Contains(c256[0], "\x1b[38;5;") {
		t.Errorf("256-colour half-block: %q", c256[0])
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain text":        "plain text",
		"two\nlines":        "two\nlines",
		"tab\there":         "tab here",
		"bell\a esc\x1b[2J": "bell\uFFFD esc\uFFFD[2J",
		"cr\roverwrite":     "cr\uFFFDoverwrite",
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}
