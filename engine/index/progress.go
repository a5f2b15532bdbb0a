package index

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// meter draws the progress of an update: images done of total, images per
// second and the time left. On a terminal one line is redrawn in place
// (at most ten times a second); elsewhere a plain line is printed every
// ten seconds.
type meter struct {
	w        io.Writer
	terminal bool
	total    int
	done     int
	now      func() time.Time
	start    time.Time
	last     time.Time
	drawn    bool
}

func newMeter(w io.Writer, terminal bool, total int, now func() time.Time) *meter {
	t := now()
	return &meter{w: w, terminal: terminal, total: total, now: now, start: t, last: t}
}

// step counts one image done.
func (m *meter) step() {
	m.done++
	if m.w == nil {
		return
	}
	t := m.now()
	every := 10 * time.Second
	if m.terminal {
		every = 100 * time.Millisecond
	}
	if t.Sub(m.last) < every && m.done < m.total {
		return
	}
	m.last = t
	m.draw(t)
}

// Line is the progress text: "indexing 37/200 [=====     ] 2.3 images/s, 1m10s left".
func (m *meter) line(t time.Time) string {
	el := t.Sub(m.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(m.done) / el
	}
	const width = 20
	fill := width * m.done / max(1, m.total)
	s := fmt.Sprintf("indexing %d/%d [%s%s] %.2f images/s", m.done, m.total, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), rate)
	if rate > 0 && m.done < m.total {
		left := time.Duration(float64(m.total-m.done) / rate * float64(time.Second))
		s += ", " + left.Round(time.Second).String() + " left"
	}
	return s
}

func (m *meter) draw(t time.Time) {
	if m.terminal {
		fmt.Fprintf(m.w, "\r\033[K%s", m.line(t))
		m.drawn = true
		return
	}
	fmt.Fprintln(m.w, m.line(t))
}

// clear removes the drawn line before another message is printed.
func (m *meter) clear() {
	if m.w != nil && m.terminal && m.drawn {
		fmt.Fprint(m.w, "\r\033[K")
		m.drawn = false
	}
}

// finish ends the bar's line.
func (m *meter) finish() {
	if m.w != nil && m.terminal && m.drawn {
		fmt.Fprintln(m.w)
	}
}
