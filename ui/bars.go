package ui

import (
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/blip2chat/blip2chat/app"
)

// barCells is a bar's width when the pane has room.
const barCells = 20

// bars draws a note's chart (/match, /labels, /search): per bar its label,
// a bar as long as its fraction, its value and remark, in aligned columns.
// A label that does not fit is shortened (a path in its middle, keeping
// the file name); when the pane is too narrow for a label column, each
// label goes on its own line above its bar.
func (m *Model) bars(bs []app.Bar, indent, width int) []string {
	s := m.sty
	labelW, valueW, remarkW := 0, 0, 0
	for _, b := range bs {
		labelW = max(labelW, ansi.StringWidth(printable(b.Label)))
		valueW = max(valueW, ansi.StringWidth(printable(b.Value)))
		remarkW = max(remarkW, ansi.StringWidth(printable(b.Remark)))
	}
	barW := min(barCells, max(5, width/4))
	rest := indent + 1 + barW + 1 + valueW
	if remarkW > 0 {
		rest += 2 + remarkW
	}
	stacked := width-rest < 12
	if stacked {
		rest -= indent + 1
		if rest > width-indent {
			remarkW = 0 // no room: the remark goes
		}
	} else {
		labelW = min(labelW, width-rest)
	}
	margin := strings.Repeat(" ", indent)
	var out []string
	for _, b := range bs {
		filled := int(b.Fraction*float64(barW) + 0.5)
		filled = max(0, min(barW, filled))
		bar := s.model.Render(strings.Repeat("█", filled)) + s.faint.Render(strings.Repeat("░", barW-filled))
		v := printable(b.Value)
		tail := " " + s.text.Render(strings.Repeat(" ", valueW-ansi.StringWidth(v))+v)
		if remarkW > 0 && b.Remark != "" {
			tail += "  " + s.muted.Render(printable(b.Remark))
		}
		l := printable(b.Label)
		if stacked {
			out = append(out, wrapNote(margin+l, width, s.text.Render)...)
			out = append(out, margin+"  "+bar+tail)
			continue
		}
		if ansi.StringWidth(l) > labelW {
			if strings.Contains(l, "/") {
				l = shortenPath(l, labelW)
			}
			l = ansi.Truncate(l, labelW, "…")
		}
		out = append(out, margin+s.text.Render(l+strings.Repeat(" ", labelW-ansi.StringWidth(l)))+" "+bar+tail)
	}
	return out
}
