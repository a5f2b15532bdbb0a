package ui

import (
	"io"
	"math"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/blip2chat/blip2chat/app"
)

func keys(s string) tea.KeyMsg { return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)} }

// cursorMark is typed after a test's keys to show where the cursor is.
const cursorMark = "|"

func TestEditorEditing(t *testing.T) {
	k := func(t tea.KeyType) tea.KeyMsg { return tea.KeyMsg{Type: t} }
	alt := func(m tea.KeyMsg) tea.KeyMsg { m.Alt = true; return m }
	for _, c := range []struct {
		name string
		ks   []tea.KeyMsg
		want string
		pos  int // the cursor, in runes
	}{
		{"type", []tea.KeyMsg{keys("héllo"), k(tea.KeySpace), keys("w")}, "héllo w", 7},
		{"alt+enter and ctrl+j", []tea.KeyMsg{keys("a"), alt(k(tea.KeyEnter)), keys("b"), k(tea.KeyCtrlJ), keys("c")}, "a\nb\nc", 5},
		{"plain enter is not taken", []tea.KeyMsg{keys("a"), k(tea.KeyEnter)}, "a", 1},
		{"backspace", []tea.KeyMsg{keys("abc"), k(tea.KeyBackspace)}, "ab", 2},
		{"left and insert", []tea.KeyMsg{keys("ac"), k(tea.KeyLeft), keys("b")}, "abc", 2},
		{"home end", []tea.KeyMsg{keys("bc"), k(tea.KeyHome), keys("a"), k(tea.KeyEnd), keys("d")}, "abcd", 4},
		{"ctrl+a ctrl+e", []tea.KeyMsg{keys("bc"), k(tea.KeyCtrlA), keys("a"), k(tea.KeyCtrlE), keys("d")}, "abcd", 4},
		{"ctrl+w", []tea.KeyMsg{keys("one two  "), k(tea.KeyCtrlW)}, "one ", 4},
		{"alt+backspace", []tea.KeyMsg{keys("one two"), alt(k(tea.KeyBackspace))}, "one ", 4},
		{"ctrl+u", []tea.KeyMsg{keys("a"), k(tea.KeyCtrlJ), keys("bcd"), k(tea.KeyLeft), k(tea.KeyCtrlU)}, "a\nd", 2},
		{"ctrl+k joins at line end", []tea.KeyMsg{keys("ab"), k(tea.KeyCtrlJ), keys("c"), k(tea.KeyUp), k(tea.KeyEnd), k(tea.KeyCtrlK)}, "abc", 2},
		{"delete", []tea.KeyMsg{keys("abc"), k(tea.KeyHome), k(tea.KeyDelete)}, "bc", 0},
		{"word moves", []tea.KeyMsg{keys("one two"), k(tea.KeyCtrlLeft), keys("X")}, "one Xtwo", 5},
		{"alt+b", []tea.KeyMsg{keys("one two"), alt(keys("b")), keys("X")}, "one Xtwo", 5},
		{"up keeps the column", []tea.KeyMsg{keys("abcd"), k(tea.KeyCtrlJ), keys("ef"), k(tea.KeyUp), keys("X")}, "abXcd\nef", 3},
		{"down", []tea.KeyMsg{keys("ab"), k(tea.KeyCtrlJ), keys("cd"), k(tea.KeyUp), k(tea.KeyHome), k(tea.KeyDown), keys("X")}, "ab\nXcd", 4},
		{"paste normalizes", []tea.KeyMsg{{Type: tea.KeyRunes, Runes: []rune("x\r\ny\tz\x1b"), Paste: true}}, "x\ny z", 5},
		{"backspace at start", []tea.KeyMsg{k(tea.KeyBackspace), k(tea.KeyLeft)}, "", 0},
		{"an unbound alt+letter types nothing", []tea.KeyMsg{keys("a"), alt(keys("z"))}, "a", 1},
		{"ctrl+t and ctrl+v are not the textarea's", []tea.KeyMsg{keys("ab"), k(tea.KeyCtrlT), k(tea.KeyCtrlV)}, "ab", 2},
	} {
		e := newEditor(newStyles(lipgloss.NewRenderer(io.Discard)))
		e.SetWidth(20)
		for _, m := range c.ks {
			e.update(m)
		}
		if e.Value() != c.want {
			t.Errorf("%s: value %q, want %q", c.name, e.Value(), c.want)
			continue
		}
		e.update(keys(cursorMark))
		r := []rune(c.want)
		if want := string(r[:c.pos]) + cursorMark + string(r[c.pos:]); e.Value() != want {
			t.Errorf("%s: cursor: %q, want %q", c.name, e.Value(), want)
		}
	}
}

// TestWrappedRows checks the row count the box's height follows against
// the textarea's own wrapping (LineInfo, with the cursor at the end).
func TestWrappedRows(t *testing.T) {
	texts := []string{"", "a", "abcdefgh", "abcdefghi", "abcdefghijklmnopq", "one two three four five six",
		"a b c d e f g h i j k l", "supercalifragilistic and more", "ends with space ", "日本語のテキストです",
		"two  spaces  between", strings.Repeat("x", 45), "word " + strings.Repeat("y", 30) + " tail"}
	for _, w := range []int{4, 8, 9, 12, 20} {
		for _, s := range texts {
			e := newEditor(newStyles(lipgloss.NewRenderer(io.Discard)))
			e.SetWidth(w + promptWidth)
			e.SetValue(s)
			if got, want := wrappedRows([]rune(s), e.Width(), math.MaxInt), e.LineInfo().Height; got != want {
				t.Errorf("width %d, %q: %d rows, the textarea has %d", w, s, got, want)
			}
		}
	}
}

func TestEditorGrowsAndScrolls(t *testing.T) {
	e := newEditor(newStyles(lipgloss.NewRenderer(io.Discard)))
	e.SetWidth(12) // 10 cells of text after the prompt
	if e.Height() != 1 {
		t.Fatalf("empty box is %d lines high, want 1", e.Height())
	}
	for i := 2; i <= 7; i++ {
		e.update(tea.KeyMsg{Type: tea.KeyCtrlJ})
		e.update(keys(string(rune('a' + i))))
		if want := min(i, maxInputLines); e.Height() != want {
			t.Errorf("%d lines of text: box %d high, want %d", i, e.Height(), want)
		}
	}
	view := func() []string { return strings.Split(ansi.Strip(e.View()), "\n") }
	v := view()
	if len(v) != maxInputLines || !strings.Contains(v[len(v)-1], "h") || strings.Contains(v[0], "❯") {
		t.Errorf("7 lines in a 5-line box should show the last ones: %q", v)
	}
	for _, l := range v {
		if w := ansi.StringWidth(l); w != 12 {
			t.Errorf("line %q is %d wide, want 12", l, w)
		}
	}
	if e.OnFirstRow() || !e.OnLastRow() {
		t.Error("cursor row at the end")
	}
	// Deleting lines shrinks the box, which shows the text from its start.
	for range 6 {
		e.update(tea.KeyMsg{Type: tea.KeyBackspace})
	}
	if e.Height() != 4 {
		t.Fatalf("4 lines: box %d high", e.Height())
	}
	if v = view(); !strings.HasPrefix(v[0], "❯ ") || strings.TrimSpace(v[3]) != "e" {
		t.Errorf("after shrinking: %q", v)
	}
	for range 10 {
		e.update(tea.KeyMsg{Type: tea.KeyUp})
	}
	if !e.OnFirstRow() || e.OnLastRow() {
		t.Error("after Up: not on the first row")
	}
	// A long line wraps; the box grows with the rows.
	e.SetValue(strings.Repeat("abcdefgh ", 3))
	if e.Height() != 3 {
		t.Errorf("a line wrapping to 3 rows: box %d high", e.Height())
	}
	e.Reset()
	if e.Height() != 1 {
		t.Errorf("after Reset: %d high", e.Height())
	}
	e.SetPlaceholder("Ask something long enough to be cut")
	if v := ansi.Strip(e.View()); !strings.HasPrefix(v, "❯ Ask some") || !strings.Contains(v, "…") || strings.Contains(v, "\n") {
		t.Errorf("placeholder view %q", v)
	}
}

// TestInputKeys drives the input through the screen's Model (no model is
// loaded): Enter sends, Alt+Enter does not, Tab completes, the box grows
// the layout, Up recalls.
func TestInputKeys(t *testing.T) {
	a := app.New(app.Options{})
	defer a.Close()
	m := New(a, Options{})
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	body := m.bodyHeight()
	// send types keys, and hands Tab's completions back (Bubble Tea runs
	// the command that looks them up).
	send := func(ks ...tea.KeyMsg) {
		for _, k := range ks {
			if _, c := m.Update(k); c != nil && k.Type == tea.KeyTab {
				if msg, ok := c().(completedMsg); ok {
					m.Update(msg)
				}
			}
		}
	}
	send(keys("/ima"), tea.KeyMsg{Type: tea.KeyTab})
	if v := m.ta.Value(); v != "/image " {
		t.Errorf("Tab: %q", v)
	}
	m.ta.Reset()
	send(keys("first"), tea.KeyMsg{Type: tea.KeyEnter, Alt: true}, keys("second"))
	if v := m.ta.Value(); v != "first\nsecond" {
		t.Fatalf("Alt+Enter: %q", v)
	}
	if m.bodyHeight() != body-1 {
		t.Errorf("a 2-line input leaves %d lines for the panes, want %d", m.bodyHeight(), body-1)
	}
	n := len(a.Snapshot().Entries)
	send(tea.KeyMsg{Type: tea.KeyEnter})
	st := a.Snapshot()
	if m.ta.Value() != "" || len(st.Entries) != n+1 || !strings.Contains(st.Entries[n].Text, "no model") {
		t.Errorf("Enter did not send: input %q, entries %+v", m.ta.Value(), st.Entries[n:])
	}
	if m.bodyHeight() != body {
		t.Errorf("the box did not shrink back: body %d, want %d", m.bodyHeight(), body)
	}
	send(tea.KeyMsg{Type: tea.KeyUp})
	if v := m.ta.Value(); v != "first\nsecond" {
		t.Errorf("Up: %q", v)
	}
	send(tea.KeyMsg{Type: tea.KeyDown})
	if v := m.ta.Value(); v != "" {
		t.Errorf("Down back to the draft: %q", v)
	}
	send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("pasted\r\nline\x1b[2J"), Paste: true})
	if v := m.ta.Value(); v != "pasted\nline[2J" {
		t.Errorf("paste: %q", v)
	}
}

// FuzzWrappedRows: the box's height follows the textarea's wrapping for
// any line and width.
func FuzzWrappedRows(f *testing.F) {
	f.Add("one two three four five six", 8)
	f.Add("supercalifragilistic and more", 5)
	f.Add("日本語 のテキスト", 6)
	f.Fuzz(func(t *testing.T, s string, w int) {
		if w < 2 || w > 200 || strings.ContainsAny(s, "\n\r") || len(s) > 400 {
			return
		}
		s = cleanText(strings.ToValidUTF8(s, ""))
		e := newEditor(newStyles(lipgloss.NewRenderer(io.Discard)))
		e.SetWidth(w + promptWidth)
		e.SetValue(s)
		if e.Value() != s {
			return // the textarea's sanitizer changed it
		}
		if got, want := wrappedRows([]rune(s), e.Width(), math.MaxInt), e.LineInfo().Height; got != want {
			t.Errorf("width %d, %q: %d rows, the textarea has %d", w, s, got, want)
		}
	})
}
