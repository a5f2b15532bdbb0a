package ui

import (
	"io"
	"os"

	"github.com/charmbracelet/x/term"
)

// terminal is the terminal as it was before the interface took it, to put
// back where Bubble Tea cannot: a panic outside its event loop, an
// interface that stopped answering.
type terminal struct {
	in    uintptr
	state *term.State // nil when the input is not a terminal
	out   io.Writer
}

func saveTerminal(in *os.File, out io.Writer) *terminal {
	t := &terminal{in: in.Fd(), out: out}
	if s, err := term.GetState(t.in); err == nil {
		t.state = s
	}
	return t
}

// restoreSeq turns off what the interface turns on: mouse reporting (cell
// motion, all motion, SGR), bracketed paste, the hidden cursor and the
// alternate screen, in that order.
const restoreSeq = "\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?2004l\x1b[?25h\x1b[?1049l"

// restore puts the terminal back: its modes, then its line discipline
// (echo, line editing).
func (t *terminal) restore() {
	io.WriteString(t.out, restoreSeq)
	if t.state != nil {
		term.Restore(t.in, t.state)
	}
}
