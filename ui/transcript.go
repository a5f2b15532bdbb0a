package ui

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/blip2chat/blip2chat/app"
)

// transcript renders the entries, wrapped to width, one blank line
// between entries; lastStart is the line where the last entry begins.
func (m *Model) transcript(width int) (content string, lastStart int) {
	width = max(8, width)
	var b strings.Builder
	lines := 0
	for i, e := range m.st.Entries {
		if i > 0 {
			b.WriteString("\n\n")
			lines += 2
		}
		lastStart = lines
		s := m.entry(e, width)
		b.WriteString(s)
		lines += strings.Count(s, "\n")
	}
	return b.String(), lastStart
}

// printable makes model output and file names safe to draw (see
// app.Printable): nothing the model writes can drive the terminal.
func printable(s string) string { return app.Printable(s) }

// wrap wraps text to width and styles every line (styles must not span
// lines, or the viewport cuts them).
func wrap(text string, width int, style func(...string) string) string {
	lines := strings.Split(ansi.Wrap(printable(text), width, " -"), "\n")
	for i, l := range lines {
		lines[i] = style(l)
	}
	return strings.Join(lines, "\n")
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

// wideGap is padding between columns.
var wideGap = regexp.MustCompile(`   +`)

// listItem matches the marker of a numbered or bulleted line.
var listItem = regexp.MustCompile(`^ *([0-9]{1,3}[.)]|[-*•]) +`)

// hangIndent is where the wrapped rows of a line of a note start: under
// the value of an aligned "Label   value" line (the first gap of two or
// more spaces, near the start), under the text of a list item, or under
// the line's own indent. col is the value column when there is one but it
// is too far right for width (the value then goes under its label).
func hangIndent(line string, width int) (indent, col int) {
	lead := len(line) - len(strings.TrimLeft(line, " "))
	indent = lead
	if m := listItem.FindString(line); m != "" {
		indent = ansi.StringWidth(m)
	} else if i := strings.Index(line[lead:], "  "); i > 0 {
		j := lead + i
		for j < len(line) && line[j] == ' ' {
			j++
		}
		if j < len(line) {
			indent = ansi.StringWidth(line[:j])
		}
	}
	if indent > 32 || indent > width/2 {
		indent, col = lead, indent
	}
	if lead > width/2 {
		indent = 0
	}
	return indent, col
}

// wrapHanging wraps the lines of a note at spaces only (a command or a
// path is not broken at its hyphens), each with a hanging indent
// (hangIndent), so that columns stay readable when they wrap.
func wrapHanging(text string, width int, style func(...string) string) string {
	var out []string
	for _, line := range strings.Split(printable(text), "\n") {
		if ansi.StringWidth(line) <= width {
			out = append(out, style(line))
			continue
		}
		ind, col := hangIndent(line, width)
		if col > 0 {
			// The label on its row, the value under it.
			label := strings.TrimRight(ansi.Truncate(line, col, ""), " ")
			value := strings.Repeat(" ", min(ind+4, width/2)) + ansi.TruncateLeft(line, col, "")
			out = append(out, strings.Split(wrapHanging(label, width, style), "\n")...)
			out = append(out, strings.Split(wrapHanging(value, width, style), "\n")...)
			continue
		}
		head := ansi.Truncate(line, ind, "")
		head += strings.Repeat(" ", ind-ansi.StringWidth(head))
		// Padding that aligns further columns only scatters a wrapped
		// value: keep two spaces of it.
		body := wideGap.ReplaceAllString(strings.TrimLeft(ansi.TruncateLeft(line, ind, ""), " "), "  ")
		pad := strings.Repeat(" ", ind)
		for i, l := range wordWrap(body, width-ind) {
			if i == 0 {
				out = append(out, style(head+l))
			} else {
				out = append(out, style(pad+l))
			}
		}
	}
	return strings.Join(out, "\n")
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

func (m *Model) entry(e app.Entry, width int) string {
	s := m.sty
	switch e.Kind {
	case app.EntryQuestion:
		head := s.user.Render("You")
		if e.Caption {
			return head + "\n" + wrap("/caption (describe the image)", width, s.muted.Render)
		}
		return head + "\n" + wrap(e.Text, width, s.text.Render)
	case app.EntryAnswer:
		name := "BLIP-2"
		if m.st.Demo {
			name = "BLIP-2 (demo)"
		}
		// The head line: the name, then as many details as fit.
		var details []string
		if e.Retries > 0 {
			details = append(details, fmt.Sprintf("↻ %d", e.Retries))
		}
		if e.Stats != nil && e.Stats.Tokens > 0 {
			details = append(details, fmt.Sprintf("%d tokens", e.Stats.Tokens), fmt.Sprintf("%.1f tok/s", e.Stats.TokensPerSec))
		}
		if e.Stop == app.StopMaxTokens {
			details = append(details, "max_tokens reached")
		}
		for len(details) > 0 && ansi.StringWidth(name)+2+ansi.StringWidth(strings.Join(details, " · ")) > width {
			details = details[:len(details)-1]
		}
		head := s.model.Render(name)
		if len(details) > 0 {
			head += s.faint.Render("  " + strings.Join(details, " · "))
		}
		text := strings.TrimSpace(e.Text)
		var body string
		switch {
		case e.Streaming && text == "":
			body = m.spin.View() + s.muted.Render(" thinking… "+m.elapsed())
		case e.Streaming:
			body = wrap(text+"▍", width, s.text.Render)
		default:
			if text == "" {
				text = "(no answer)"
			}
			body = wrap(text, width, s.text.Render)
		}
		switch e.Stop {
		case app.StopCancelled:
			body += "\n" + s.warn.Render("■ stopped")
		case app.StopContextFull:
			body += "\n" + s.warn.Render("■ the context is full: /reset to start again")
		}
		return head + "\n" + body
	case app.EntryImage:
		line := "▣ image " + filepath.Base(e.Text)
		if e.Stats != nil && e.Stats.Elapsed > 0 {
			line += fmt.Sprintf(" · encoded in %s", formatMillis(e.Stats.Elapsed))
		}
		return wrap(line, width, s.image.Render) + "\n" + wrap("a new conversation about it starts here", width, s.faint.Render)
	case app.EntryError:
		return wrap("✗ "+e.Text, width, s.error.Render)
	}
	return wrapHanging(e.Text, width, s.muted.Render)
}
