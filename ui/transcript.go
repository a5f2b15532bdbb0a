package ui

import (
	"fmt"
	"path/filepath"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/engine/lm"
)

// transcript is the chat pane's content: the entries rendered and wrapped
// to the pane's width, one blank line between entries, and how far it is
// scrolled. An entry is rendered again only when it changed (or the width
// did) and while it streams; drawing takes only the lines in view. So a
// streamed token costs the same at the first turn and at the
// five-hundredth.
type transcript struct {
	width, height int
	demo          bool // answers are headed "BLIP-2 (demo)"
	tint          bool // answers are tinted by token confidence
	entries       []rendered
	live          []int // the entries that were streaming
	lines         []string
	offset        int // the first line in view
}

// rendered is an entry's lines; lines[start:] of the transcript begin
// with them.
type rendered struct {
	start int
	lines []string
}

// set brings the transcript up to entries, of which those from changed on
// are new or changed since the last set (app.Refresh says which). It
// renders them with render, and the answers that stream, whose cursor and
// timer move.
func (t *transcript) set(entries []app.Entry, changed, width int, demo, tint bool, render func(app.Entry, int) []string) {
	if width != t.width || demo != t.demo || tint != t.tint {
		t.width, t.demo, t.tint = width, demo, tint
		t.entries, t.lines, t.live = t.entries[:0], t.lines[:0], t.live[:0]
	}
	first := min(changed, len(entries), len(t.entries))
	for _, i := range t.live {
		first = min(first, i)
	}
	if first < len(t.entries) {
		t.lines = t.lines[:max(0, t.entries[first].start-1)]
	}
	t.live = t.live[:0]
	for i := first; i < len(entries); i++ {
		e := entries[i]
		var lines []string
		if i < changed && i < len(t.entries) && !e.Streaming {
			lines = t.entries[i].lines
		} else {
			lines = render(e, width)
		}
		if e.Streaming {
			t.live = append(t.live, i)
		}
		if i > 0 {
			t.lines = append(t.lines, "")
		}
		r := rendered{start: len(t.lines), lines: lines}
		t.lines = append(t.lines, lines...)
		if i < len(t.entries) {
			t.entries[i] = r
		} else {
			t.entries = append(t.entries, r)
		}
	}
	t.entries = t.entries[:len(entries)]
	t.offset = min(t.offset, t.maxOffset())
}

// lastStart is the line where the last entry begins.
func (t *transcript) lastStart() int {
	if len(t.entries) == 0 {
		return 0
	}
	return t.entries[len(t.entries)-1].start
}

func (t *transcript) empty() bool    { return len(t.entries) == 0 }
func (t *transcript) maxOffset() int { return max(0, len(t.lines)-t.height) }
func (t *transcript) atBottom() bool { return t.offset >= t.maxOffset() }
func (t *transcript) scrollTo(n int) { t.offset = max(0, min(n, t.maxOffset())) }
func (t *transcript) scroll(n int)   { t.scrollTo(t.offset + n) }
func (t *transcript) bottom()        { t.scrollTo(t.maxOffset()) }

// view is the lines in view.
func (t *transcript) view() []string {
	return t.lines[t.offset:min(len(t.lines), t.offset+t.height)]
}

// wheel scrolls with the mouse wheel, three lines a notch.
func (t *transcript) wheel(msg tea.MouseMsg) {
	if msg.Action != tea.MouseActionPress || msg.Shift {
		return
	}
	switch msg.Button {
	case tea.MouseButtonWheelUp:
		t.scroll(-3)
	case tea.MouseButtonWheelDown:
		t.scroll(3)
	}
}

// printable makes model output and file names safe to draw (see
// app.Printable): nothing the model writes can drive the terminal.
func printable(s string) string { return app.Printable(s) }

// wrap wraps text to width and styles every line (styles must not span
// lines, or the pane cuts them).
func wrap(text string, width int, style func(...string) string) []string {
	lines := strings.Split(ansi.Wrap(printable(text), width, " -"), "\n")
	for i, l := range lines {
		lines[i] = style(l)
	}
	return lines
}

// shortenPath fits a path in width cells with an ellipsis in its middle,
// keeping its file name whole when it fits in two thirds of the width.
func shortenPath(p string, width int) string {
	n := ansi.StringWidth(p)
	if n <= width || width < 8 {
		return p
	}
	base := ansi.StringWidth(filepath.Base(p)) + 1
	tail := min(max(width/2, base), width*2/3)
	head := width - 1 - tail
	return ansi.Truncate(p, head, "") + "…" + ansi.TruncateLeft(p, n-tail, "")
}

// listMarker is the width of a numbered or bulleted line's marker ("1. ",
// "- "), after its indent, or 0.
func listMarker(line string) int {
	i := len(line) - len(strings.TrimLeft(line, " "))
	j := i
	for j < len(line) && j-i < 3 && line[j] >= '0' && line[j] <= '9' {
		j++
	}
	switch {
	case j > i && j < len(line) && (line[j] == '.' || line[j] == ')'):
		j++
	case j == i && strings.HasPrefix(line[i:], "•"):
		j += len("•")
	case j == i && j < len(line) && (line[j] == '-' || line[j] == '*'):
		j++
	default:
		return 0
	}
	k := j
	for k < len(line) && line[k] == ' ' {
		k++
	}
	if k == j || k == len(line) {
		return 0
	}
	return ansi.StringWidth(line[:k])
}

// wrapNote wraps the lines of a note at spaces only (a command or a path
// is not broken at its hyphens), each under its own indent, or under the
// text of a list item.
func wrapNote(text string, width int, style func(...string) string) []string {
	var out []string
	for _, line := range strings.Split(printable(text), "\n") {
		if ansi.StringWidth(line) <= width {
			out = append(out, style(line))
			continue
		}
		lead := len(line) - len(strings.TrimLeft(line, " "))
		ind := max(lead, listMarker(line))
		switch {
		case lead > width/2:
			ind = 0
		case ind > min(32, width/2):
			ind = lead
		}
		out = append(out, hanging(ansi.Truncate(line, ind, ""), strings.TrimLeft(ansi.TruncateLeft(line, ind, ""), " "), ind, width, style)...)
	}
	return out
}

// hanging puts head (padded to ind cells) before text wrapped at spaces to
// the rest of the width; its further rows start at ind.
func hanging(head, text string, ind, width int, style func(...string) string) []string {
	head += strings.Repeat(" ", max(0, ind-ansi.StringWidth(head)))
	pad := strings.Repeat(" ", ind)
	rows := wordWrap(text, width-ind)
	for i, r := range rows {
		r = strings.TrimRight(r, " ")
		if i == 0 {
			rows[i] = style(head + r)
		} else {
			rows[i] = style(pad + r)
		}
	}
	return rows
}

// table lays rows out in columns: label, value, remark (a remark in its
// own column when the row fits, else after the value). A value that does
// not fit wraps under its own column. When that column would start too far
// right (past 32 cells, or half the width), every label goes on a line of
// its own, styled label, and its value under it, indented by 4. indent is
// the table's left margin, gap the space between columns.
func table(rows []app.Row, indent, gap, width int, style, label func(...string) string) []string {
	labelW, valueW := 0, 0
	for _, r := range rows {
		labelW = max(labelW, ansi.StringWidth(printable(r.Label)))
		valueW = max(valueW, ansi.StringWidth(printable(r.Value)))
	}
	margin, sep := strings.Repeat(" ", indent), strings.Repeat(" ", gap)
	col := indent + labelW + gap
	stacked := col > min(32, width/2)
	var out []string
	for _, r := range rows {
		l, v := printable(r.Label), printable(r.Value)
		body := v
		if r.Remark != "" {
			body += "  " + printable(r.Remark)
		}
		if stacked {
			if l != "" {
				out = append(out, wrapNote(margin+l, width, label)...)
			}
			ind := min(indent+4, width/2)
			out = append(out, hanging("", body, ind, width, style)...)
			continue
		}
		head := margin + l + strings.Repeat(" ", labelW-ansi.StringWidth(l)) + sep
		if r.Remark != "" {
			if aligned := v + strings.Repeat(" ", valueW-ansi.StringWidth(v)) + sep + printable(r.Remark); col+ansi.StringWidth(aligned) <= width {
				body = aligned
			}
		}
		if col+ansi.StringWidth(body) <= width {
			out = append(out, style(strings.TrimRight(head+body, " ")))
			continue
		}
		out = append(out, hanging(head, body, col, width, style)...)
	}
	return out
}

// wordWrap breaks text into rows of at most width cells at spaces; a path
// wider than a row is shortened in its middle, keeping its end (the file
// name), any other word is cut.
func wordWrap(s string, width int) []string {
	width = max(1, width)
	var rows []string
	cur, started := "", false
	for _, w := range strings.Split(s, " ") {
		if ansi.StringWidth(w) > width && (strings.HasPrefix(w, "/") || strings.HasPrefix(w, "~/")) {
			w = shortenPath(w, width)
		}
		for ansi.StringWidth(w) > width {
			if started {
				rows = append(rows, cur)
				cur, started = "", false
			}
			rows = append(rows, ansi.Truncate(w, width, ""))
			w = ansi.TruncateLeft(w, width, "")
		}
		switch {
		case !started:
			cur, started = w, true
		case ansi.StringWidth(cur)+1+ansi.StringWidth(w) <= width:
			cur += " " + w
		default:
			rows = append(rows, cur)
			cur = w
		}
	}
	if started {
		rows = append(rows, cur)
	}
	return rows
}

// entry renders one entry in width cells.
func (m *Model) entry(e app.Entry, width int) []string {
	s := m.sty
	switch e.Kind {
	case app.EntryQuestion:
		head := s.user.Render("You")
		if e.Caption {
			return append([]string{head}, wrap("/caption (describe the image)", width, s.muted.Render)...)
		}
		return append([]string{head}, wrap(e.Text, width, s.text.Render)...)
	case app.EntryAnswer:
		return m.answer(e, width)
	case app.EntryImage:
		line := "▣ image " + filepath.Base(e.Text)
		if e.Encoding != nil && e.Encoding.Encode > 0 {
			line += fmt.Sprintf(" · encoded in %s", formatMillis(e.Encoding.Encode))
		}
		return append(wrap(line, width, s.image.Render), wrap("a new conversation about it starts here", width, s.faint.Render)...)
	case app.EntryError:
		return wrap("✗ "+e.Text, width, s.error.Render)
	}
	var lines []string
	if e.Text != "" {
		lines = wrapNote(e.Text, width, s.muted.Render)
	}
	if len(e.Rows) > 0 {
		indent := 0
		if e.Text != "" {
			indent = 2
		}
		lines = append(lines, table(e.Rows, indent, 1, width, s.muted.Render, s.muted.Render)...)
	}
	if len(e.Bars) > 0 {
		lines = append(lines, m.bars(e.Bars, 2, width)...)
	}
	if len(e.Columns) > 0 {
		lines = append(lines, m.columns(e.Columns, width)...)
	}
	return lines
}

// minColumn is the narrowest a /compare column may be; narrower, the
// answers are stacked.
const minColumn = 20

// columns renders /compare's answers side by side, each under its setting,
// separated by a rule; stacked, each under its setting, when the columns
// would be narrower than minColumn.
func (m *Model) columns(cols []app.Column, width int) []string {
	s := m.sty
	const sep = " │ "
	n := len(cols)
	colW := (width - 2 - (n-1)*len([]rune(sep))) / n
	text := func(c app.Column) string {
		t := printable(strings.TrimSpace(c.Text))
		if t == "" {
			t = "(empty)"
		}
		if c.Stop == lm.StopMaxTokens {
			t += " …"
		}
		return t
	}
	if colW < minColumn {
		var out []string
		for _, c := range cols {
			out = append(out, wrap("  "+printable(c.Title), width, s.muted.Render)...)
			for _, r := range wordWrap(strings.ReplaceAll(text(c), "\n", " "), max(1, width-4)) {
				out = append(out, "    "+s.text.Render(r))
			}
		}
		return out
	}
	// Each column: its title's rows, a blank row, the answer's rows.
	cells, titles := make([][]string, n), make([]int, n)
	rows := 0
	for i, c := range cols {
		cells[i] = wordWrap(printable(c.Title), colW)
		titles[i] = len(cells[i])
		cells[i] = append(append(cells[i], ""), wordWrap(strings.ReplaceAll(text(c), "\n", " "), colW)...)
		rows = max(rows, len(cells[i]))
	}
	var out []string
	for r := range rows {
		var b strings.Builder
		b.WriteString("  ")
		for i := range cells {
			cell, style := "", s.text.Render
			if r < len(cells[i]) {
				cell = cells[i][r]
			}
			if r < titles[i] {
				style = s.muted.Render
			}
			if i > 0 {
				b.WriteString(s.faint.Render(sep))
			}
			b.WriteString(style(cell))
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", max(0, colW-ansi.StringWidth(cell))))
			}
		}
		out = append(out, strings.TrimRight(b.String(), " "))
	}
	return out
}

// answer renders an answer: a head line with as many of its numbers as
// fit, the text (a cursor while it streams), and why it stopped.
func (m *Model) answer(e app.Entry, width int) []string {
	s := m.sty
	name := "BLIP-2"
	if m.st.Demo {
		name = "BLIP-2 (demo)"
	}
	var details []string
	if e.Retries > 0 {
		details = append(details, fmt.Sprintf("↻ %d", e.Retries))
	}
	if e.Stats != nil && e.Stats.Tokens > 0 {
		unit := "tokens"
		if e.Stats.Tokens == 1 {
			unit = "token"
		}
		details = append(details, fmt.Sprintf("%d %s", e.Stats.Tokens, unit), fmt.Sprintf("%.1f tok/s", e.Stats.TokensPerSec))
	}
	if e.Stop == lm.StopMaxTokens {
		details = append(details, "max_tokens reached")
	}
	for len(details) > 0 && ansi.StringWidth(name)+2+ansi.StringWidth(strings.Join(details, " · ")) > width {
		details = details[:len(details)-1]
	}
	head := s.model.Render(name)
	if len(details) > 0 {
		head += s.faint.Render("  " + strings.Join(details, " · "))
	}
	lines := []string{head}
	text := strings.TrimSpace(e.Text)
	switch {
	case e.Streaming && text == "":
		lines = append(lines, m.spin.View()+s.muted.Render(" thinking… "+m.elapsed()))
	case e.Streaming && e.Hypothesis:
		// Beam search's best hypothesis so far: the next step may change
		// it, so it is dimmed until the answer is final.
		lines = append(lines, wrap(text+"▍", width, s.faint.Render)...)
	case e.Streaming:
		lines = append(lines, wrap(text+"▍", width, s.text.Render)...)
	case m.st.Confidence && len(e.Tokens) > 0 && text != "":
		lines = append(lines, m.tinted(e.Tokens, width)...)
	default:
		if text == "" {
			text = "(no answer)"
		}
		lines = append(lines, wrap(text, width, s.text.Render)...)
	}
	switch e.Stop {
	case lm.StopCancelled:
		lines = append(lines, s.warn.Render("■ stopped"))
	case lm.StopContextFull:
		lines = append(lines, s.warn.Render("■ the context is full: /reset to start again"))
	case lm.StopInterrupted:
		lines = append(lines, s.warn.Render("■ interrupted: the program ended during this answer"))
	}
	return lines
}

// Token confidence bands of the tint: at least confident is drawn as
// text, at least unsure in the warning colour, below it in the error
// colour.
const (
	confident = 0.8
	unsure    = 0.4
)

// tinted renders an answer from its tokens, each piece in the colour of
// the model's confidence in it. Every piece is styled on its own, so a
// line break never falls inside a style (a piece wider than the pane is
// cut in its own style).
func (m *Model) tinted(toks []app.TokenConfidence, width int) []string {
	s := m.sty
	var b strings.Builder
	started := false
	for _, t := range toks {
		piece := printable(t.Text)
		if !started {
			piece = strings.TrimLeft(piece, " ")
			started = piece != ""
		}
		style := s.text
		switch {
		case t.P < unsure:
			style = s.error
		case t.P < confident:
			style = s.warn
		}
		// Spaces stay unstyled so that the wrap breaks lines there.
		lead := len(piece) - len(strings.TrimLeft(piece, " "))
		b.WriteString(piece[:lead])
		if rest := piece[lead:]; rest != "" {
			b.WriteString(style.Render(rest))
		}
	}
	return strings.Split(ansi.Wrap(b.String(), width, " -"), "\n")
}
