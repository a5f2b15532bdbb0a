package ui

import (
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/blip2chat/blip2chat/app"
)

// fakeEngine answers with fixed text: what these tests need is an answer
// the test chooses (control characters) and an encoding that lasts until
// the test says, which a real model cannot give.
type fakeEngine struct {
	answer string
	block  chan struct{} // SetImage waits for it when set
	set    app.Settings
}

func (f *fakeEngine) Info() app.ModelInfo {
	return app.ModelInfo{Name: "fake", Desc: "BLIP-2 · fake", Backend: "none"}
}
func (f *fakeEngine) SetImage(ctx context.Context, _ image.Image, path string) (app.ImageStats, error) {
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return app.ImageStats{}, ctx.Err()
		}
	}
	return app.ImageStats{Encode: time.Millisecond, Tokens: 32}, nil
}
func (f *fakeEngine) Ask(ctx context.Context, q string, on func(string)) (app.Answer, error) {
	on(f.answer)
	return app.Answer{Text: f.answer, Stop: app.StopEnd, Tokens: 5, TokensPerSec: 10, FirstToken: time.Millisecond}, nil
}
func (f *fakeEngine) Caption(ctx context.Context, on func(string)) (app.Answer, error) {
	return f.Ask(ctx, "", on)
}
func (f *fakeEngine) Retry(ctx context.Context, on func(string)) (app.Answer, error) {
	return f.Ask(ctx, "", on)
}
func (f *fakeEngine) Reset() error                       { return nil }
func (f *fakeEngine) Restore([]app.Turn) error           { return nil }
func (f *fakeEngine) Settings() app.Settings             { return f.set }
func (f *fakeEngine) Apply(s app.Settings) error         { f.set = s; return nil }
func (f *fakeEngine) Tokens(string) ([]app.Token, error) { return nil, nil }
func (f *fakeEngine) Usage() (int, int)                  { return 40, 2048 }
func (f *fakeEngine) Close() error                       { return nil }
func (f *fakeEngine) source(dir, img string) *app.ModelSource {
	return &app.ModelSource{Dir: dir, Image: img, Open: func(context.Context, func(string)) (app.Engine, error) { return f, nil }}
}

// writePNG writes a small image.
func writePNG(t *testing.T, path string, w, h int) {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x), uint8(y), 99, 255})
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

// fakeScreen starts an app on eng with the screen's Model at w x h.
func fakeScreen(t *testing.T, eng *fakeEngine, img string, w, h int) (*app.App, *Model) {
	t.Helper()
	data := t.TempDir()
	a := app.New(app.Options{Model: eng.source(filepath.Join(data, "model"), img),
		SessionsDir: filepath.Join(data, "sessions"), SaveDir: data})
	t.Cleanup(func() {
		if eng.block != nil {
			select {
			case <-eng.block:
			default:
				close(eng.block)
			}
		}
		a.Close()
	})
	m := New(a, Options{})
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	m.Init()
	return a, m
}

// sync brings the Model up to the app's state, as a changedMsg does.
func (m *Model) sync() { m.Update(changedMsg{}) }

func typeLine(m *Model, s string) {
	m.Update(keys(s))
	m.Update(tea.KeyMsg{Type: tea.KeyEnter})
}

// TestControlCharactersAreNotDrawn: an answer and a file name holding
// ESC [2J and BEL show as U+FFFD on the screen; the session file keeps the
// answer as generated and /save escapes it.
func TestControlCharactersAreNotDrawn(t *testing.T) {
	const answer = "it clears \x1b[2J the screen and rings \x07 a bell"
	dir := t.TempDir()
	img := filepath.Join(dir, "evil\x1b[2J\x07.png")
	writePNG(t, img, 40, 30)
	eng := &fakeEngine{answer: answer}
	a, m := fakeScreen(t, eng, img, 100, 30)
	waitApp(t, a, "the image", func(s app.State) bool { return idle(s) && s.Image != nil })
	typeLine(m, "What does it say?")
	st := waitApp(t, a, "the answer", func(s app.State) bool { return idle(s) && lastAnswer(s).Text != "" })
	m.sync()
	screen := m.render()
	for _, bad := range []string{"\x1b[2J", "\x07"} {
		if strings.Contains(screen, bad) {
			t.Errorf("the screen holds %q", bad)
		}
	}
	plain := ansi.Strip(screen)
	for _, want := range []string{"it clears \uFFFD[2J the screen and rings \uFFFD a bell", "evil\uFFFD[2J\uFFFD.png"} {
		if !strings.Contains(plain, want) {
			t.Errorf("the screen lacks %q:\n%s", want, plain)
		}
	}
	// Every line of the screen is exactly as wide as the terminal.
	for i, l := range strings.Split(plain, "\n") {
		if w := ansi.StringWidth(l); w > 100 {
			t.Errorf("line %d is %d wide", i, w)
		}
	}

	s, err := app.LoadSession(st.SessionPath)
	if err != nil || len(s.All) != 1 || s.All[0].Answer != answer || s.Image != img {
		t.Fatalf("session: %v %+v", err, s)
	}
	out := filepath.Join(dir, "t.md")
	typeLine(m, "/save "+out)
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "it clears &#27;[2J the screen and rings &#7; a bell") || strings.ContainsAny(string(md), "\x1b\x07") {
		t.Errorf("saved Markdown:\n%q", md)
	}
}

// TestImageProgressAndEsc: while an image encodes the screen shows what
// runs and for how long; Esc cancels the encoding and keeps the previous
// image; Ctrl+C during an encoding quits at once.
func TestImageProgressAndEsc(t *testing.T) {
	dir := t.TempDir()
	first, big := filepath.Join(dir, "first.png"), filepath.Join(dir, "big.png")
	writePNG(t, first, 20, 20)
	writePNG(t, big, 1200, 900)
	eng := &fakeEngine{answer: "x"}
	now := time.Now()
	a, m := fakeScreen(t, eng, first, 80, 24)
	m.opts.Now = func() time.Time { return now.Add(3 * time.Second) }
	waitApp(t, a, "the first image", func(s app.State) bool { return idle(s) && s.Image != nil })

	eng.block = make(chan struct{})
	typeLine(m, "/image "+big)
	waitApp(t, a, "encoding", func(s app.State) bool {
		return s.Phase == app.Encoding && strings.Contains(s.Progress, "encoding")
	})
	m.sync()
	plain := ansi.Strip(m.render())
	for _, want := range []string{"encoding image: preparing and encoding", "╭─ big.png", " encoding "} {
		if !strings.Contains(plain, want) {
			t.Errorf("while encoding the screen lacks %q:\n%s", want, plain)
		}
	}
	if !strings.Contains(plain, "s ") && !strings.Contains(plain, "s\n") {
		t.Errorf("no elapsed time:\n%s", plain)
	}
	m.Update(esc)
	waitApp(t, a, "the cancelled encoding", func(s app.State) bool { return idle(s) })
	if s := a.Snapshot(); s.Image == nil || filepath.Base(s.ImagePath) != "first.png" {
		t.Errorf("after Esc the image is %q, want first.png", s.ImagePath)
	}
	m.sync()
	if plain := ansi.Strip(m.render()); !strings.Contains(plain, "Image loading cancelled") {
		t.Errorf("no cancel note after Esc:\n%s", plain)
	}

	// Ctrl+C quits at once, and the app closes without waiting for the
	// encoding to finish.
	typeLine(m, "/image "+big)
	waitApp(t, a, "encoding again", func(s app.State) bool { return s.Phase == app.Encoding })
	if _, c := m.Update(ctrlC); c == nil || c() != tea.Quit() {
		t.Error("Ctrl+C while encoding does not quit")
	}
	start := time.Now()
	if err := closeApp(a, 200*time.Millisecond); err != nil {
		t.Error(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("closeApp waited %v for an encoding", d)
	}
	close(eng.block)
	<-a.Done()
}

// TestFullHelp: ? shows every key and every command over the panes, and
// Esc or ? closes it.
func TestFullHelp(t *testing.T) {
	a := app.New(app.Options{Demo: func() *app.ModelSource { return nil }})
	defer a.Close()
	a.Start()
	m := New(a, Options{})
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	m.sync()
	m.Update(keys("?"))
	if !m.help.ShowAll {
		t.Fatal("? did not open the help")
	}
	content := ansi.Strip(m.helpContent(200))
	k := m.keys
	for _, b := range []key.Binding{k.Send, k.Newline, k.Complete, k.Stop, k.Quit, k.ScrollUp, k.ScrollDown,
		k.Top, k.Bottom, k.History, k.ImageMode, k.Help, k.ClearScreen} {
		for _, name := range b.Keys() {
			if !strings.Contains(content, keyName(name)) {
				t.Errorf("the help lacks key %s (%s)", name, b.Help().Desc)
			}
		}
	}
	for _, c := range app.Commands {
		if !strings.Contains(content, c.Name+" "+c.Args) {
			t.Errorf("the help lacks %s %s", c.Name, c.Args)
		}
	}
	for _, w := range []string{"/demo", "ctrl+w", "alt+enter, ctrl+j"} {
		if !strings.Contains(content, w) {
			t.Errorf("the help lacks %q", w)
		}
	}
	plain := ansi.Strip(m.render())
	if !strings.Contains(plain, "keys and commands") || !strings.Contains(plain, "/image PATH") {
		t.Errorf("the help pane is not shown:\n%s", plain)
	}
	m.Update(esc)
	if m.help.ShowAll || strings.Contains(ansi.Strip(m.render()), "keys and commands") {
		t.Error("Esc did not close the help")
	}
}

// TestNoteWrapsUnderValues: /info's long values wrap under the value
// column; list items under their text.
func TestNoteWrapsUnderValues(t *testing.T) {
	for _, c := range []struct {
		in    string
		width int
		want  []string
	}{
		{"Model     a very long name that wraps", 24, []string{"Model     a very long", "          name that", "          wraps"}},
		{"          BLIP-2 · llama 7B Q4_K_M", 24, []string{"          BLIP-2 · llama", "          7B Q4_K_M"}},
		{"1. Download a checkpoint in safetensors", 20, []string{"1. Download a", "   checkpoint in", "   safetensors"}},
		{"     blip2chat convert blip2-opt -o x", 21, []string{"     blip2chat", "     convert", "     blip2-opt -o x"}},
		{"Image     /very/long/folder/name/that/goes/on/cat.jpg (encoded in 5ms)", 34,
			[]string{"Image     /very/long/…s/on/cat.jpg", "          (encoded in 5ms)"}},
		{"Note      a-word-that-is-not-a-path-and-is-long", 24, []string{"Note      a-word-that-is", "          -not-a-path-an", "          d-is-long"}},
		{"short", 24, []string{"short"}},
		{"  /template [TEXT|edit|reset]  show, change or edit the template", 36,
			[]string{"  /template [TEXT|edit|reset]", "      show, change or edit the", "      template"}},
	} {
		got := strings.Split(wrapHanging(c.in, c.width, func(s ...string) string { return strings.Join(s, "") }), "\n")
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("wrapHanging(%q, %d) =\n%q, want\n%q", c.in, c.width, got, c.want)
		}
	}
}

// TestQuitWhileLoading: Esc while the model loads says it cannot be
// stopped; Ctrl+C quits, and closing does not wait for the load.
func TestQuitWhileLoading(t *testing.T) {
	release := make(chan struct{})
	src := &app.ModelSource{Dir: t.TempDir(), Open: func(context.Context, func(string)) (app.Engine, error) {
		<-release
		return &fakeEngine{}, nil
	}}
	a := app.New(app.Options{Model: src})
	m := New(a, Options{})
	m.Update(tea.WindowSizeMsg{Width: 60, Height: 24})
	m.Init()
	waitApp(t, a, "loading", func(s app.State) bool { return s.Phase == app.Loading })
	m.sync()
	plain := ansi.Strip(m.render())
	if !strings.Contains(plain, "loading model") {
		t.Errorf("the screen while loading:\n%s", plain)
	}
	m.Update(esc)
	if !strings.Contains(m.footer(), "cannot be interrupted") {
		t.Errorf("Esc while loading: %q", ansi.Strip(m.footer()))
	}
	if _, c := m.Update(ctrlC); c == nil || c() != tea.Quit() {
		t.Fatal("Ctrl+C while loading does not quit")
	}
	if m.View() != "" {
		t.Error("the last frame is not empty")
	}
	start := time.Now()
	if err := closeApp(a, 100*time.Millisecond); err != nil {
		t.Error(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("closeApp waited %v for the load", d)
	}
	close(release)
	<-a.Done()
}
