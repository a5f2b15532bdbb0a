package ui

import (
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

func keys(s string) tea.KeyMsg { return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)} }

func TestInputEditing(t *testing.T) {
	k := func(t tea.KeyType) tea.KeyMsg { return tea.KeyMsg{Type: t} }
	alt := func(m tea.KeyMsg) tea.KeyMsg { m.Alt = true; return m }
	for _, c := range []struct {
		name string
		ks   []tea.KeyMsg
		want string
		pos  int
	}{
		{"type", []tea.KeyMsg{keys("héllo"), k(tea.KeySpace), keys("w")}, "héllo w", 7},
		{"alt+enter and ctrl+j", []tea.KeyMsg{keys("a"), alt(k(tea.KeyEnter)), keys("b"), k(tea.KeyCtrlJ), keys("c")}, "a\nb\nc", 5},
		{"plain enter is not taken", []tea.KeyMsg{keys("a"), k(tea.KeyEnter)}, "a", 1},
		{"backspace", []tea.KeyMsg{keys("abc"), k(tea.KeyBackspace)}, "ab", 2},
		{"left and insert", []tea.KeyMsg{keys("ac"), k(tea.KeyLeft), keys("b")}, "abc", 2},
		{"home end", []tea.KeyMsg{keys("bc"), k(tea.KeyHome), keys("a"), k(tea.KeyEnd), keys("d")}, "abcd", 4},
		{"ctrl+w", []tea.KeyMsg{keys("one two  "), k(tea.KeyCtrlW)}, "one ", 4},
		{"alt+backspace", []tea.KeyMsg{keys("one two"), alt(k(tea.KeyBackspace))}, "one ", 4},
		{"ctrl+u", []tea.KeyMsg{keys("a"), k(tea.KeyCtrlJ), keys("bcd"), k(tea.KeyLeft), k(tea.KeyCtrlU)}, "a\nd", 2},
		{"ctrl+k joins at line end", []tea.KeyMsg{keys("ab"), k(tea.KeyCtrlJ), keys("c"), k(tea.KeyUp), k(tea.KeyEnd), k(tea.KeyCtrlK)}, "abc", 2},
		{"delete", []tea.KeyMsg{keys("abc"), k(tea.KeyHome), k(tea.KeyDelete)}, "bc", 0},
		{"word moves", []tea.KeyMsg{keys("one two"), k(tea.KeyCtrlLeft), keys("X")}, "one Xtwo", 5},
		{"up keeps the column", []tea.KeyMsg{keys("abcd"), k(tea.KeyCtrlJ), keys("ef"), k(tea.KeyUp), keys("X")}, "abXcd\nef", 3},
		{"down", []tea.KeyMsg{keys("ab"), k(tea.KeyCtrlJ), keys("cd"), k(tea.KeyUp), k(tea.KeyHome), k(tea.KeyDown), keys("X")}, "ab\nXcd", 4},
		{"paste normalizes", []tea.KeyMsg{{Type: tea.KeyRunes, Runes: []rune("x\r\ny\tz\x1b"), Paste: true}}, "x\ny z", 5},
		{"backspace at start", []tea.KeyMsg{k(tea.KeyBackspace), k(tea.KeyLeft)}, "", 0},
	} {
		in := newInput(3, lipgloss.NewStyle(), lipgloss.NewStyle())
		in.SetWidth(20)
		for _, m := range c.ks {
			in.Update(m)
		}
		if in.Value() != c.want || in.pos != c.pos {
			t.Errorf("%s: value %q pos %d, want %q pos %d", c.name, in.Value(), in.pos, c.want, c.pos)
		}
	}
}

func TestInputWrapsAndScrolls(t *testing.T) {
	in := newInput(3, lipgloss.NewStyle(), lipgloss.NewStyle())
	in.SetWidth(10)
	in.SetValue(strings.Repeat("abcdefghi", 5)) // 45 runes: 5 lines of 9
	v := strings.Split(in.View(), "\n")
	if len(v) != 3 {
		t.Fatalf("%d lines shown, want 3", len(v))
	}
	for _, l := range v {
		if w := ansi.StringWidth(l); w != 10 {
			t.Errorf("line %q is %d wide, want 10", l, w)
		}
	}
	// The cursor is at the end: the last lines are in view.
	if !strings.HasPrefix(ansi.Strip(v[2]), "abcdefghi") || in.offset != 2 {
		t.Errorf("offset %d, view %q", in.offset, v)
	}
	if in.OnFirstLine() || !in.OnLastLine() {
		t.Error("cursor line")
	}
	for range 10 {
		in.Update(tea.KeyMsg{Type: tea.KeyUp})
	}
	if in.offset != 0 || !in.OnFirstLine() {
		t.Errorf("after Up: offset %d", in.offset)
	}
	in.Reset()
	in.placeholder = "Ask something long enough to be cut"
	if v := ansi.Strip(in.View()); !strings.HasPrefix(v, "Ask some") || !strings.Contains(v, "…") {
		t.Errorf("placeholder view %q", v)
	}
}
