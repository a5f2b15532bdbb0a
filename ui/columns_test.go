package ui

import (
	"io"
	"strings"
	"testing"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/engine/lm"
)

// TestColumnsLayout: /compare's answers sit side by side, each under its
// setting, within the width; too narrow for that, they are stacked; an
// answer's control characters are not passed to the terminal.
func TestColumnsLayout(t *testing.T) {
	m := &Model{sty: newStyles(lipgloss.NewRenderer(io.Discard))}
	cols := []app.Column{
		{Title: "vqa", Text: "a cat"},
		{Title: "caption+max_tokens=30", Text: "a grey cat sitting on a wooden table next to a cup of coffee\x1b[2J", Stop: lm.StopMaxTokens},
		{Title: "num_beams=1", Text: ""},
	}
	for _, width := range []int{100, 72} {
		lines := m.columns(cols, width)
		plain := make([]string, len(lines))
		for i, l := range lines {
			plain[i] = ansi.Strip(l)
			if w := ansi.StringWidth(plain[i]); w > width {
				t.Errorf("width %d: line %d is %d wide: %q", width, i, w, plain[i])
			}
			if strings.Contains(l, "\x1b[2J") {
				t.Errorf("an escape sequence from the answer reached the screen: %q", l)
			}
		}
		t.Logf("width %d:\n%s", width, strings.Join(plain, "\n"))
		first := plain[0]
		if !strings.Contains(first, "vqa") || !strings.Contains(first, "│") || !strings.Contains(first, "num_beams=1") {
			t.Errorf("width %d: the titles are not side by side: %q", width, first)
		}
		all := strings.Join(plain, "\n")
		for _, want := range []string{"a cat", "coffee", "…", "(empty)"} {
			if !strings.Contains(all, want) {
				t.Errorf("width %d: %q missing:\n%s", width, want, all)
			}
		}
	}
	narrow := m.columns(cols, 40)
	all := ansi.Strip(strings.Join(narrow, "\n"))
	if strings.Contains(all, "│") || !strings.Contains(all, "  vqa\n    a cat") {
		t.Errorf("narrow: not stacked:\n%s", all)
	}
	for _, l := range narrow {
		if w := ansi.StringWidth(ansi.Strip(l)); w > 40 {
			t.Errorf("narrow line %q is %d wide", ansi.Strip(l), w)
		}
	}
}
