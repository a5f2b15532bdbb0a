package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestBatchProgressLines: into a file, progress is a line per image
// started: answers done/total, images/s, ETA and the file (its control
// characters escaped); the last line has the totals.
func TestBatchProgressLines(t *testing.T) {
	var w bytes.Buffer
	p := newBatchProgress(&w, 4, false)
	now := p.start
	p.now = func() time.Time { return now }
	p.image("/x/a.jpg")
	now = now.Add(2 * time.Second)
	p.answer()
	p.answer()
	p.image("/x/b\x1b[2J.jpg")
	now = now.Add(2 * time.Second)
	p.answer()
	p.answer()
	p.finish()
	want := []string{
		"blip2chat batch: 0/4 answers · a.jpg",
		`blip2chat batch: 2/4 answers · 0.50 images/s · ETA 0:02 · "b\x1b[2J.jpg"`,
		"blip2chat batch: 4/4 answers · 0.50 images/s",
	}
	if got := strings.Split(strings.TrimSuffix(w.String(), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("progress:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	w.Reset()
	q := newBatchProgress(&w, 4, true)
	q.image("a.jpg")
	q.answer()
	q.finish()
	if w.Len() != 0 {
		t.Errorf("quiet progress wrote %q", w.String())
	}
}

// TestBatchProgressBar: on a terminal the bar is redrawn in place, and a
// message goes above it.
func TestBatchProgressBar(t *testing.T) {
	var w bytes.Buffer
	p := newBatchProgress(&w, 2, false)
	p.tty = true
	p.image("a.jpg")
	p.answer()
	p.printf("skipped b.jpg")
	p.answer()
	p.finish()
	s := w.String()
	for _, want := range []string{"\r" + strings.Repeat("░", 24) + " 0/2 answers", "\r\x1b[Kskipped b.jpg\n", "\r" + strings.Repeat("█", 24) + " 2/2 answers"} {
		if !strings.Contains(s, want) {
			t.Errorf("bar output %q lacks %q", s, want)
		}
	}
	if !strings.HasSuffix(s, "\n") {
		t.Errorf("the bar's last state does not end its line: %q", s)
	}
}
