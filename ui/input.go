package ui

import (
	"strings"
	"unicode"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/mattn/go-runewidth"
)

// input is the multi-line input box: Enter is left to the caller (send),
// Alt+Enter and Ctrl+J insert a new line, long lines wrap, and the box
// scrolls to keep the cursor in view. It keeps the usual editing keys
// (arrows, Home/End, Ctrl+A/E, Ctrl+W, Ctrl+U, Ctrl+K, word moves) and takes
// bracketed paste.
//
// (bubbles/textarea would need github.com/atotto/clipboard, which the
// module does not list; the terminal's own paste covers the need.)
type input struct {
	buf           []rune
	pos           int // cursor: index in buf
	width, height int
	offset        int // first visual line shown
	placeholder   string
	text, faint   lipgloss.Style
}

// cursor draws the cursor cell in reverse video, written directly: it is
// no colour, so it stays under NO_COLOR, where lipgloss drops all styling.
func cursor(s string) string { return "\x1b[7m" + s + "\x1b[27m" }

func newInput(height int, text, faint lipgloss.Style) *input {
	return &input{height: height, width: 20, text: text, faint: faint}
}

// Value is the text typed.
func (in *input) Value() string { return string(in.buf) }

// SetValue replaces the text; the cursor goes to its end.
func (in *input) SetValue(s string) {
	in.buf = []rune(clean(s))
	in.pos = len(in.buf)
	in.scroll()
}

// Reset empties the box.
func (in *input) Reset() { in.buf, in.pos, in.offset = nil, 0, 0 }

// SetWidth sets the width of the text area in cells.
func (in *input) SetWidth(w int) { in.width = max(2, w); in.scroll() }

// clean makes pasted text plain: CR LF and CR become LF, tabs spaces, other
// control characters are dropped.
func clean(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n':
			return r
		case r == '\t':
			return ' '
		case unicode.IsControl(r):
			return -1
		}
		return r
	}, s)
}

func (in *input) insert(rs []rune) {
	rs = []rune(clean(string(rs)))
	buf := make([]rune, 0, len(in.buf)+len(rs))
	buf = append(buf, in.buf[:in.pos]...)
	buf = append(buf, rs...)
	in.buf = append(buf, in.buf[in.pos:]...)
	in.pos += len(rs)
}

func (in *input) deleteRange(from, to int) {
	from, to = max(0, from), min(len(in.buf), to)
	if from >= to {
		return
	}
	in.buf = append(in.buf[:from], in.buf[to:]...)
	in.pos = from
}

// lineStart and lineEnd are the ends of the logical line holding the cursor.
func (in *input) lineStart() int {
	i := in.pos
	for i > 0 && in.buf[i-1] != '\n' {
		i--
	}
	return i
}

func (in *input) lineEnd() int {
	i := in.pos
	for i < len(in.buf) && in.buf[i] != '\n' {
		i++
	}
	return i
}

func (in *input) wordLeft() int {
	i := in.pos
	for i > 0 && unicode.IsSpace(in.buf[i-1]) {
		i--
	}
	for i > 0 && !unicode.IsSpace(in.buf[i-1]) {
		i--
	}
	return i
}

func (in *input) wordRight() int {
	i := in.pos
	for i < len(in.buf) && unicode.IsSpace(in.buf[i]) {
		i++
	}
	for i < len(in.buf) && !unicode.IsSpace(in.buf[i]) {
		i++
	}
	return i
}

// Update edits the text for a key; it reports whether the key was used.
func (in *input) Update(k tea.KeyMsg) bool {
	switch k.Type {
	case tea.KeyRunes, tea.KeySpace:
		if k.Alt && !k.Paste {
			switch string(k.Runes) {
			case "b":
				in.pos = in.wordLeft()
			case "f":
				in.pos = in.wordRight()
			case "d":
				in.deleteRange(in.pos, in.wordRight())
			default:
				return false
			}
			break
		}
		if k.Type == tea.KeySpace {
			in.insert([]rune{' '})
		} else {
			in.insert(k.Runes)
		}
	case tea.KeyEnter:
		if !k.Alt {
			return false
		}
		in.insert([]rune{'\n'})
	case tea.KeyCtrlJ:
		in.insert([]rune{'\n'})
	case tea.KeyBackspace:
		if k.Alt {
			in.deleteRange(in.wordLeft(), in.pos)
		} else {
			in.deleteRange(in.pos-1, in.pos)
		}
	case tea.KeyDelete, tea.KeyCtrlD:
		p := in.pos
		in.deleteRange(p, p+1)
		in.pos = p
	case tea.KeyCtrlW:
		in.deleteRange(in.wordLeft(), in.pos)
	case tea.KeyCtrlU:
		in.deleteRange(in.lineStart(), in.pos)
	case tea.KeyCtrlK:
		p := in.pos
		end := in.lineEnd()
		if end == p && end < len(in.buf) {
			end++ // at the end of a line: join the next one
		}
		in.deleteRange(p, end)
		in.pos = p
	case tea.KeyLeft:
		if k.Alt {
			in.pos = in.wordLeft()
		} else {
			in.pos = max(0, in.pos-1)
		}
	case tea.KeyRight:
		if k.Alt {
			in.pos = in.wordRight()
		} else {
			in.pos = min(len(in.buf), in.pos+1)
		}
	case tea.KeyCtrlLeft:
		in.pos = in.wordLeft()
	case tea.KeyCtrlRight:
		in.pos = in.wordRight()
	case tea.KeyHome, tea.KeyCtrlA:
		in.pos = in.lineStart()
	case tea.KeyEnd, tea.KeyCtrlE:
		in.pos = in.lineEnd()
	case tea.KeyUp:
		in.vertical(-1)
	case tea.KeyDown:
		in.vertical(+1)
	default:
		return false
	}
	in.scroll()
	return true
}

// vline is one visual line: runes [start, end) of buf.
type vline struct{ start, end int }

// layout splits the text into visual lines of at most width cells (one
// more cell is kept for the cursor at a line's end).
func (in *input) layout() []vline {
	var out []vline
	start, w := 0, 0
	for i, r := range in.buf {
		if r == '\n' {
			out = append(out, vline{start, i})
			start, w = i+1, 0
			continue
		}
		rw := runewidth.RuneWidth(r)
		if w+rw > in.width-1 && i > start {
			out = append(out, vline{start, i})
			start, w = i, 0
		}
		w += rw
	}
	return append(out, vline{start, len(in.buf)})
}

// cursorLine is the visual line of the cursor and its column in cells.
func (in *input) cursorLine(ls []vline) (line, col int) {
	for i, l := range ls {
		if in.pos >= l.start && in.pos <= l.end {
			// At a wrap point the cursor belongs to the next line.
			if in.pos == l.end && i+1 < len(ls) && ls[i+1].start == l.end {
				continue
			}
			return i, runewidth.StringWidth(string(in.buf[l.start:in.pos]))
		}
	}
	return len(ls) - 1, 0
}

func (in *input) vertical(d int) {
	ls := in.layout()
	line, col := in.cursorLine(ls)
	t := line + d
	if t < 0 || t >= len(ls) {
		return
	}
	l := ls[t]
	p, w := l.start, 0
	for p < l.end {
		rw := runewidth.RuneWidth(in.buf[p])
		if w+rw > col {
			break
		}
		w += rw
		p++
	}
	in.pos = p
}

// OnFirstLine and OnLastLine say where the cursor is (Up and Down past
// them browse the history).
func (in *input) OnFirstLine() bool {
	l, _ := in.cursorLine(in.layout())
	return l == 0
}

func (in *input) OnLastLine() bool {
	ls := in.layout()
	l, _ := in.cursorLine(ls)
	return l == len(ls)-1
}

// scroll keeps the cursor's line in view.
func (in *input) scroll() {
	ls := in.layout()
	line, _ := in.cursorLine(ls)
	if line < in.offset {
		in.offset = line
	}
	if line >= in.offset+in.height {
		in.offset = line - in.height + 1
	}
	in.offset = max(0, min(in.offset, len(ls)-1))
}

// View draws height lines of width cells.
func (in *input) View() string {
	pad := func(s string, w int) string { return s + strings.Repeat(" ", max(0, in.width-w)) }
	out := make([]string, 0, in.height)
	if len(in.buf) == 0 {
		ph := []rune(in.placeholder)
		first := cursor(" ")
		rest := ""
		if len(ph) > 0 {
			first = cursor(string(ph[:1]))
			rest = runewidth.Truncate(string(ph[1:]), in.width-2, "…")
		}
		out = append(out, pad(first+in.faint.Render(rest), 1+runewidth.StringWidth(rest)))
	} else {
		ls := in.layout()
		line, col := in.cursorLine(ls)
		for i := in.offset; i < len(ls) && i < in.offset+in.height; i++ {
			s := string(in.buf[ls[i].start:ls[i].end])
			w := runewidth.StringWidth(s)
			if i != line {
				out = append(out, pad(in.text.Render(s), w))
				continue
			}
			rs := []rune(s)
			k, cw := 0, 0
			for k < len(rs) && cw < col {
				cw += runewidth.RuneWidth(rs[k])
				k++
			}
			under, after := " ", ""
			if k < len(rs) {
				under, after = string(rs[k]), string(rs[k+1:])
			} else {
				w++
			}
			out = append(out, pad(in.text.Render(string(rs[:k]))+cursor(under)+in.text.Render(after), w))
		}
	}
	for len(out) < in.height {
		out = append(out, strings.Repeat(" ", in.width))
	}
	return strings.Join(out, "\n")
}
