package ui

import (
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/app/apptest"
)

// The tests in this file are named after the defects of the reliability
// probe they keep out (issue 12).

// runInput runs the interface as a program on raw terminal input, read in
// one go (typed text that arrives in one read, without bracketed paste:
// tmux send-keys -l, a slow machine, a paste in a terminal without
// bracketed paste). The input ends with a real Ctrl+C, which quits.
func runInput(t *testing.T, a *app.App, input string) *Model {
	t.Helper()
	m := New(a, Options{})
	p := tea.NewProgram(m, tea.WithInput(strings.NewReader(input+"\x03")), tea.WithOutput(io.Discard),
		tea.WithoutSignalHandler())
	done := make(chan error, 1)
	go func() {
		_, err := p.Run()
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		p.Kill()
		t.Fatalf("%q: the program did not quit", input)
	}
	return m
}

// TestD4BatchedTextIsNotAKey: words that are the names of keys, typed in
// one batch, are text: "explain ctrl+c" stays in the input instead of
// quitting, "hold enter" is not sent, "press tab" does not complete, "the
// up" does not browse the history, "ctrl+j" is no new line. The real keys
// still work (the final Ctrl+C quits).
func TestD4BatchedTextIsNotAKey(t *testing.T) {
	for _, text := range []string{"explain ctrl+c", "hold enter", "press tab", "the up", "one ctrl+j two", "esc pgup ctrl+t ctrl+l ?"} {
		a := app.New(app.Options{})
		m := runInput(t, a, text)
		st := a.Snapshot()
		a.Close()
		if v := m.ta.Value(); v != text {
			t.Errorf("typed %q: the input holds %q", text, v)
		}
		for _, e := range st.Entries {
			if e.Kind == app.EntryError || e.Kind == app.EntryQuestion {
				t.Errorf("typed %q: the app got %q", text, e.Text)
			}
		}
		if m.help.ShowAll || m.hint != "" {
			t.Errorf("typed %q: help %v, hint %q", text, m.help.ShowAll, m.hint)
		}
	}
	// A lone ? on an empty input is still the help key.
	a := app.New(app.Options{})
	defer a.Close()
	m := New(a, Options{})
	m.Update(keys("?"))
	if !m.help.ShowAll {
		t.Error("? does not open the help")
	}
}

// TestD3SaveAsksBeforeReplacing: /save over an existing file asks first
// (n keeps it, y replaces it); over a symbolic link, a device, the image
// or a model file it refuses, and nothing changes.
func TestD3SaveAsksBeforeReplacing(t *testing.T) {
	dir := t.TempDir()
	img := apptest.WritePNG(t, dir, "cat.png", 40, 30)
	a, m := fakeScreen(t, apptest.NewEngine(), img, 100, 30)
	waitApp(t, a, "the image", func(s app.State) bool { return idle(s) && s.Image != nil })
	typeLine(m, "What is it?")
	waitApp(t, a, "the answer", func(s app.State) bool { return idle(s) && lastAnswer(s).Text != "" })

	precious := filepath.Join(dir, "precious.txt")
	os.WriteFile(precious, []byte("precious"), 0o644)
	unchanged := func(what string) {
		t.Helper()
		if b, _ := os.ReadFile(precious); string(b) != "precious" {
			t.Fatalf("%s: precious.txt was overwritten", what)
		}
	}
	asked := func() {
		t.Helper()
		waitApp(t, a, "the question", func(s app.State) bool { return s.Confirm != "" })
		m.sync()
		if f := ansi.Strip(m.footer()); !strings.Contains(f, "precious.txt exists: replace it") || !strings.Contains(f, "y") {
			t.Errorf("the footer while asking: %q", f)
		}
	}
	typeLine(m, "/save "+precious)
	asked()
	unchanged("asked")
	// Keys other than the answers change nothing; typed text that holds a
	// y is no answer.
	m.Update(keys("x"))
	m.Update(keys("yes"))
	m.Update(enter)
	unchanged("other keys")
	if a.Snapshot().Confirm == "" {
		t.Fatal("other keys answered the question")
	}
	m.Update(keys("n"))
	waitApp(t, a, "the refusal", func(s app.State) bool {
		e, _ := apptest.Last(s, app.EntryNote)
		return s.Confirm == "" && strings.Contains(e.Text, "Not saved")
	})
	unchanged("n")

	typeLine(m, "/save "+precious)
	asked()
	m.Update(keys("y"))
	saved(t, a)
	if b, _ := os.ReadFile(precious); !strings.Contains(string(b), "**You:** What is it?") {
		t.Errorf("y did not replace the file: %q", b)
	}

	refused := func(target, want string) {
		t.Helper()
		n := len(a.Snapshot().Entries)
		typeLine(m, "/save "+target)
		st := waitApp(t, a, "the refusal", func(s app.State) bool { return len(s.Entries) > n })
		if e := st.Entries[n]; e.Kind != app.EntryError || !strings.Contains(e.Text, want) || st.Confirm != "" {
			t.Errorf("/save %s: %+v, confirm %q", target, e, st.Confirm)
		}
	}
	os.WriteFile(precious, []byte("precious"), 0o644)
	link := filepath.Join(dir, "link.md")
	os.Symlink(precious, link)
	refused(link, "is a symbolic link")
	unchanged("link")
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Error("the link was replaced")
	}
	refused(img, "is an input")
	modelFile := filepath.Join(a.Snapshot().Model.Dir, "llm.gguf")
	os.MkdirAll(filepath.Dir(modelFile), 0o755)
	os.WriteFile(modelFile, []byte("GGUF"), 0o644)
	refused(modelFile, "is an input")
	refused(a.Snapshot().SessionPath, "is an input")
	if _, err := os.Stat("/dev/null"); err == nil {
		refused("/dev/null", "is a character device: not replaced")
	}
}

// TestU5SaveErrorNamesTarget: a /save that cannot write names the path
// given, not the hidden temporary file beside it.
func TestU5SaveErrorNamesTarget(t *testing.T) {
	a, m := fakeScreen(t, apptest.NewEngine(), "", 100, 30)
	waitApp(t, a, "ready", idle)
	target := filepath.Join(t.TempDir(), "missing", "x.md")
	n := len(a.Snapshot().Entries)
	typeLine(m, "/save "+target)
	st := waitApp(t, a, "the error", func(s app.State) bool { return len(s.Entries) > n })
	e := st.Entries[n]
	if e.Kind != app.EntryError || !strings.Contains(e.Text, target) || strings.Contains(e.Text, ".tmp") || strings.Contains(e.Text, ".x.md") {
		t.Errorf("/save into a missing folder: %q", e.Text)
	}
}

// TestU6LargeInput: a 1 MB paste does not make typing slow: the input
// takes what a prompt can be and says that the rest was left out, and a
// keystroke with the input full costs milliseconds (it cost 2 s). Times
// are the CPU time of the thread that runs Update and View.
func TestU6LargeInput(t *testing.T) {
	a := app.New(app.Options{})
	defer a.Close()
	m := New(a, Options{})
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	line := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 23) + "\n" // about 1 KB
	big := strings.Repeat(line, 1<<20/len(line)+1)
	paste := cpuTime(func() { m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(big), Paste: true}) })
	if n := len(m.ta.Value()); n != maxInput || n < 16<<10 {
		t.Errorf("the input holds %d of the %d bytes pasted, want %d", n, len(big), maxInput)
	}
	if !strings.Contains(m.hint, "left out") {
		t.Errorf("no word about the text left out: hint %q", m.hint)
	}
	// Typing at the end of a full input: refused, with a word.
	m.Update(keys("x"))
	if len(m.ta.Value()) != maxInput || !strings.Contains(m.hint, "the input is full") {
		t.Errorf("typed into a full input: %d characters, hint %q", len(m.ta.Value()), m.hint)
	}
	// Editing keys (the cursor moves, a character goes), with the screen
	// drawn after each: the median.
	var ds []time.Duration
	for i := 0; i < 15; i++ {
		k := tea.KeyMsg{Type: tea.KeyLeft}
		if i%2 == 1 {
			k = tea.KeyMsg{Type: tea.KeyBackspace}
		}
		ds = append(ds, cpuTime(func() {
			m.Update(k)
			m.View()
		}))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	t.Logf("paste %v, median keystroke %v (CPU time)", paste, ds[len(ds)/2])
	if paste > 2*time.Second {
		t.Errorf("the paste took %v", paste)
	}
	if ds[len(ds)/2] > 50*time.Millisecond {
		t.Errorf("a keystroke takes %v with the input full", ds[len(ds)/2])
	}
}

// TestD6InterruptedAnswerShows: a session whose last answer was cut by a
// kill resumes with the question and the part of the answer that was
// saved, marked as interrupted.
func TestD6InterruptedAnswerShows(t *testing.T) {
	dir := t.TempDir()
	img := apptest.WritePNG(t, dir, "cat.png", 40, 30)
	sess := filepath.Join(dir, "sessions")
	os.MkdirAll(sess, 0o755)
	id := "20261202-150942-063e0e"
	lines := []string{
		`{"type":"session","id":"` + id + `","time":"2026-12-02T15:09:42Z","model":"` + filepath.Join(dir, "model") + `"}`,
		`{"type":"image","time":"2026-12-02T15:09:43Z","path":"` + img + `"}`,
		`{"type":"ask","time":"2026-12-02T15:09:44Z","turn":{"question":"q2 long"}}`,
		`{"type":"more","time":"2026-12-02T15:09:45Z","text":"the first second"}`,
		`{"type":"more","time":"2026-12-02T15:09:46Z","text":" and the next"}`,
	}
	os.WriteFile(filepath.Join(sess, id+".jsonl"), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	s, err := app.FindSession(sess, id)
	if err != nil {
		t.Fatal(err)
	}
	a := app.New(app.Options{Model: apptest.NewEngine().Source(filepath.Join(dir, "model"), ""), SessionsDir: sess, Resume: s})
	defer a.Close()
	m := New(a, Options{})
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	m.Init()
	waitApp(t, a, "the resumed session", func(s app.State) bool { return idle(s) && s.Image != nil })
	m.sync()
	plain := ansi.Strip(m.render())
	for _, w := range []string{"q2 long", "the first second and the next", "■ interrupted"} {
		if !strings.Contains(plain, w) {
			t.Errorf("the screen lacks %q:\n%s", w, plain)
		}
	}
}
