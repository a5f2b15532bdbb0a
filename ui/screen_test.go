package ui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/app/apptest"
)

// fakeScreen starts an app on eng (apptest's engine: no model) with the
// screen's Model at w x h.
func fakeScreen(t *testing.T, eng *apptest.Engine, img string, w, h int) (*app.App, *Model) {
	t.Helper()
	data := t.TempDir()
	a := app.New(app.Options{Model: eng.Source(filepath.Join(data, "model"), img),
		SessionsDir: filepath.Join(data, "sessions"), SaveDir: data})
	t.Cleanup(func() { a.Close() })
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

// saved waits for /save's note.
func saved(t *testing.T, a *app.App) {
	t.Helper()
	waitApp(t, a, "the save", func(s app.State) bool {
		e, _ := apptest.Last(s, app.EntryNote)
		return strings.HasPrefix(e.Text, "Saved the transcript to")
	})
}

// TestControlCharactersAreNotDrawn: an answer and a file name holding
// ESC [2J and BEL show as U+FFFD on the screen; the session file keeps the
// answer as generated and /save escapes it.
func TestControlCharactersAreNotDrawn(t *testing.T) {
	const answer = "it clears \x1b[2J the screen and rings \x07 a bell"
	dir := t.TempDir()
	img := apptest.WritePNG(t, dir, "evil\x1b[2J\x07.png", 40, 30)
	eng := apptest.NewEngine()
	eng.Answer = answer
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
	saved(t, a)
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
	first, big := apptest.WritePNG(t, dir, "first.png", 20, 20), apptest.WritePNG(t, dir, "big.png", 1200, 900)
	eng := apptest.NewEngine()
	now := time.Now()
	a, m := fakeScreen(t, eng, first, 80, 24)
	m.opts.Now = func() time.Time { return now.Add(3 * time.Second) }
	waitApp(t, a, "the first image", func(s app.State) bool { return idle(s) && s.Image != nil })

	eng.Block = make(chan struct{})
	defer close(eng.Block)
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
	for _, c := range a.Commands() {
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

// TestNoteWrapsUnderValues: a table's long values (/info) wrap under the
// value column; a note's list items under their text, indented lines
// under their indent.
func TestNoteWrapsUnderValues(t *testing.T) {
	plain := func(s ...string) string { return strings.Join(s, "") }
	for _, c := range []struct {
		in    string
		width int
		want  []string
	}{
		{"1. Download a checkpoint in safetensors", 20, []string{"1. Download a", "   checkpoint in", "   safetensors"}},
		{"     blip2chat convert blip2-opt -o x", 21, []string{"     blip2chat", "     convert", "     blip2-opt -o x"}},
		{"- a bullet that wraps", 12, []string{"- a bullet", "  that wraps"}},
		{"short", 24, []string{"short"}},
	} {
		got := wrapNote(c.in, c.width, plain)
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("wrapNote(%q, %d) =\n%q, want\n%q", c.in, c.width, got, c.want)
		}
	}
	// The label column is as wide as the widest label ("Loaded in").
	loaded := app.Row{Label: "Loaded in", Value: "5ms"}
	for _, c := range []struct {
		row   app.Row
		width int
		want  []string
	}{
		{app.Row{Label: "Model", Value: "a very long name that wraps"}, 24, []string{"Model     a very long", "          name that", "          wraps"}},
		{app.Row{Value: "BLIP-2 · llama 7B Q4_K_M"}, 24, []string{"          BLIP-2 · llama", "          7B Q4_K_M"}},
		{app.Row{Label: "Image", Value: "/very/long/folder/name/that/goes/on/cat.jpg (encoded in 5ms)"}, 34,
			[]string{"Image     /very/long/…s/on/cat.jpg", "          (encoded in 5ms)"}},
		{app.Row{Label: "Note", Value: "a-word-that-is-not-a-path-and-is-long"}, 24, []string{"Note      a-word-that-is", "          -not-a-path-an", "          d-is-long"}},
		{app.Row{Label: "Short", Value: "fits"}, 24, []string{"Short     fits"}},
	} {
		got := table([]app.Row{c.row, loaded}, 0, 1, c.width, plain, plain)
		got = got[:len(got)-1]
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("table(%+v, %d) =\n%q, want\n%q", c.row, c.width, got, c.want)
		}
	}
	// A value column too far right: each label on its line, its value
	// under it (the full help's commands in a narrow terminal).
	got := table([]app.Row{{Label: "/template [TEXT|edit|reset]", Value: "show, change or edit the template"}}, 2, 2, 36, plain, plain)
	if want := []string{"  /template [TEXT|edit|reset]", "      show, change or edit the", "      template"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("stacked table =\n%q, want\n%q", got, want)
	}
	// Remarks (/set) align in their own column when the rows fit, and
	// follow the value when they do not.
	set := []app.Row{{Label: "top_k", Value: "40", Remark: "keep the k most likely"}, {Label: "template", Value: `"Q: {prompt} A:"`, Remark: "prompt template"}}
	got = table(set, 2, 1, 60, plain, plain)
	if want := []string{`  top_k    40               keep the k most likely`, `  template "Q: {prompt} A:" prompt template`}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("table with remarks =\n%q, want\n%q", got, want)
	}
	got = table(set, 2, 1, 30, plain, plain)
	if want := []string{`  top_k    40  keep the k most`, `           likely`, `  template "Q: {prompt} A:"`, `           prompt template`}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("narrow table with remarks =\n%q, want\n%q", got, want)
	}
}

// TestQuitWhileLoading: Esc while the model loads says it cannot be
// stopped; Ctrl+C quits, and closing does not wait for the load.
func TestQuitWhileLoading(t *testing.T) {
	release := make(chan struct{})
	src := &app.ModelSource{Dir: t.TempDir(), Open: func(context.Context, func(string)) (app.Engine, error) {
		<-release
		return apptest.NewEngine(), nil
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

// TestTranscriptKeptUpToDate: the transcript, rendered again only where
// entries changed, matches one rendered afresh through a stream, notes, a
// retry, a dropped answer and a resize.
func TestTranscriptKeptUpToDate(t *testing.T) {
	eng := apptest.NewEngine()
	a, m := fakeScreen(t, eng, apptest.WritePNG(t, t.TempDir(), "img.png", 40, 30), 100, 30)
	waitApp(t, a, "the image", func(s app.State) bool { return idle(s) && s.Image != nil })
	check := func(what string) {
		t.Helper()
		m.sync()
		var fresh transcript
		fresh.set(m.st.Entries, 0, m.chat.width, m.st.Demo, m.st.Confidence, m.entry)
		if !slices.Equal(fresh.lines, m.chat.lines) {
			t.Fatalf("%s: the transcript\n%s\nrendered afresh is\n%s", what, strings.Join(m.chat.lines, "\n"), strings.Join(fresh.lines, "\n"))
		}
	}
	check("start")
	for i := range 3 {
		typeLine(m, fmt.Sprintf("question %d?", i))
		waitApp(t, a, "an answer", idle)
		check("an answer")
	}
	eng.Stream, eng.Streamed = make(chan string), make(chan struct{})
	typeLine(m, "/retry")
	for _, p := range []string{"one", " two", " three four five six seven eight nine ten eleven twelve"} {
		eng.Stream <- p
		<-eng.Streamed
		check("a token")
	}
	typeLine(m, "/info")
	check("a note while the answer streams")
	close(eng.Stream)
	waitApp(t, a, "the end of the answer", idle)
	eng.Stream, eng.Streamed = nil, nil
	check("the answer done")
	eng.Fail = errors.New("no answer")
	typeLine(m, "dropped?")
	waitApp(t, a, "the error", func(s app.State) bool { e, _ := apptest.Last(s, app.EntryError); return idle(s) && e.Text != "" })
	check("a dropped answer")
	eng.Fail = nil
	m.Update(tea.WindowSizeMsg{Width: 70, Height: 30})
	check("a narrower terminal")
	typeLine(m, "/reset")
	waitApp(t, a, "the reset", idle)
	check("a reset")
}

// TestHelpWhileAnswering: /help (or a unique prefix of it) shows the full
// help, commands and keys, even while an answer streams; a command that
// changes the state waits, its text kept.
func TestHelpWhileAnswering(t *testing.T) {
	eng := apptest.NewEngine()
	a, m := fakeScreen(t, eng, apptest.WritePNG(t, t.TempDir(), "img.png", 40, 30), 100, 30)
	waitApp(t, a, "the image", func(s app.State) bool { return idle(s) && s.Image != nil })
	eng.Stream, eng.Streamed = make(chan string), make(chan struct{})
	typeLine(m, "What is it?")
	eng.Stream <- "a"
	<-eng.Streamed
	typeLine(m, "/he")
	if !m.help.ShowAll || m.ta.Value() != "" {
		t.Fatalf("/he while answering: help shown %v, input %q", m.help.ShowAll, m.ta.Value())
	}
	content := ansi.Strip(m.helpContent(200))
	for _, w := range []string{"/caption", "ctrl+c", "/image PATH", "alt+enter, ctrl+j"} {
		if !strings.Contains(content, w) {
			t.Errorf("the help lacks %q", w)
		}
	}
	m.Update(esc)
	if m.help.ShowAll || a.Snapshot().Phase != app.Generating {
		t.Errorf("Esc with the help open: help %v, phase %v (want the help closed, the answer going on)", m.help.ShowAll, a.Snapshot().Phase)
	}
	typeLine(m, "/image elsewhere.png")
	if m.ta.Value() != "/image elsewhere.png" || !strings.HasPrefix(m.hint, hintWait) {
		t.Errorf("/image while answering: input %q, hint %q", m.ta.Value(), m.hint)
	}
	close(eng.Stream)
	waitApp(t, a, "the answer", idle)
}
