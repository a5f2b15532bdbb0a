package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/blip2chat/blip2chat/internal/safefile"
)

// batchProgress shows a batch's progress on stderr: on a terminal a bar
// redrawn in place (answers done/total, images/s, ETA, the current file);
// into a file or a pipe one line per image started, which a log keeps.
type batchProgress struct {
	w           io.Writer
	tty, quiet  bool
	total, done int
	images      int // images started
	current     string
	start       time.Time
	now         func() time.Time
	drawn       bool // the bar is on the screen's last line
}

func newBatchProgress(w io.Writer, total int, quiet bool) *batchProgress {
	return &batchProgress{w: w, tty: isTerminal(w), quiet: quiet, total: total, start: time.Now(), now: time.Now}
}

// image says an image's answers start.
func (p *batchProgress) image(path string) {
	p.images++
	p.current = path
	if !p.tty {
		p.line()
		return
	}
	p.draw()
}

// answer counts an answer done.
func (p *batchProgress) answer() {
	p.done++
	if p.tty {
		p.draw()
	}
}

// status is the progress as text: "12/24 answers · 1.3 images/s · ETA
// 0:09 · cat.jpg".
func (p *batchProgress) status() string {
	el := p.now().Sub(p.start)
	parts := []string{fmt.Sprintf("%d/%d answers", p.done, p.total)}
	if el > 0 && p.images > 0 {
		// The images finished: the one in progress is not.
		finished := p.images - 1
		if p.done == p.total {
			finished = p.images
		}
		parts = append(parts, fmt.Sprintf("%.2f images/s", float64(finished)/el.Seconds()))
	}
	if p.done > 0 && p.done < p.total {
		eta := time.Duration(float64(el) / float64(p.done) * float64(p.total-p.done))
		parts = append(parts, "ETA "+clock(eta))
	}
	if p.current != "" && p.done < p.total {
		parts = append(parts, escapeControls(safefile.Name(filepath.Base(p.current))))
	}
	return strings.Join(parts, " · ")
}

func clock(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

func (p *batchProgress) line() {
	if !p.quiet {
		fmt.Fprintf(p.w, "blip2chat batch: %s\n", p.status())
	}
}

func (p *batchProgress) draw() {
	if p.quiet {
		return
	}
	const width = 24
	fill := 0
	if p.total > 0 {
		fill = p.done * width / p.total
	}
	bar := strings.Repeat("█", fill) + strings.Repeat("░", width-fill)
	// \r and erase to the end of the line: the bar is redrawn in place.
	fmt.Fprintf(p.w, "\r%s %s\x1b[K", bar, p.status())
	p.drawn = true
}

// clear takes the bar off the line, for a message.
func (p *batchProgress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

// printf prints a message line (a skipped image), above the bar. Messages
// are printed when quiet too.
func (p *batchProgress) printf(format string, args ...any) {
	p.clear()
	fmt.Fprintf(p.w, format+"\n", args...)
	if p.tty && p.done < p.total {
		p.draw()
	}
}

// note prints a status line (loading a model) unless quiet.
func (p *batchProgress) note(s string) {
	if !p.quiet {
		p.printf("blip2chat batch: %s", s)
	}
}

// finish ends the progress: the bar's last state stays on its line.
func (p *batchProgress) finish() {
	if p.quiet || p.total == 0 || p.images == 0 {
		return
	}
	if p.tty {
		p.draw()
		fmt.Fprintln(p.w)
		p.drawn = false
		return
	}
	p.current = ""
	p.line()
}
