package ui

import (
	"fmt"
	"path/filepath"
	"strings"
	"unicode"

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

// printable makes model output safe to draw: a random (or confused) model
// can emit control bytes (ESC, BEL, CR, ...) that would drive the terminal.
// Tabs become spaces; other control characters, U+FFFD.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r != '\n' && unicode.IsControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n':
			return r
		case r == '\t':
			return ' '
		case unicode.IsControl(r):
			return '\uFFFD'
		}
		return r
	}, s)
}

// wrap wraps text to width and styles every line (styles must not span
// lines, or the viewport cuts them).
func wrap(text string, width int, style func(...string) string) string {
	lines := strings.Split(ansi.Wrap(printable(text), width, " -"), "\n")
	for i, l := range lines {
		lines[i] = style(l)
	}
	return strings.Join(lines, "\n")
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
	return wrap(e.Text, width, s.muted.Render)
}
