package plan

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress draws the progress of WriteFiles: tensors and bytes done out of
// the total, rate and ETA. On a terminal one line is redrawn in place (at
// most 10 times a second); elsewhere (a log file, a pipe) a plain line is
// printed every 10% or 10 seconds, whichever comes first.
type progress struct {
	w            io.Writer
	tty          bool
	totalTensors int
	totalBytes   int64
	tensors      int
	bytes        int64
	start, last  time.Time
	lastTenth    int64
	now          func() time.Time // for tests
}

func newProgress(w io.Writer, tty bool, tensors int, bytes int64) *progress {
	p := &progress{w: w, tty: tty, totalTensors: tensors, totalBytes: bytes, now: time.Now}
	p.start = p.now()
	p.last = p.start
	return p
}

// add records n more bytes written, and one more tensor when last (a large
// tensor is written in several chunks).
func (p *progress) add(n int, last bool) {
	if p == nil || p.w == nil {
		return
	}
	if last {
		p.tensors++
	}
	p.bytes += int64(n)
	now := p.now()
	switch {
	case p.tty:
		if now.Sub(p.last) >= 100*time.Millisecond || p.tensors == p.totalTensors {
			fmt.Fprintf(p.w, "\r%s\x1b[K", p.line(now))
			p.last = now
		}
	default:
		tenth := int64(0)
		if p.totalBytes > 0 {
			tenth = 10 * p.bytes / p.totalBytes
		}
		if tenth > p.lastTenth || now.Sub(p.last) >= 10*time.Second {
			fmt.Fprintln(p.w, p.line(now))
			p.last, p.lastTenth = now, tenth
		}
	}
}

// finish ends the progress display with a summary line.
func (p *progress) finish() {
	if p == nil || p.w == nil {
		return
	}
	now := p.now()
	el := now.Sub(p.start)
	if p.tty {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	fmt.Fprintf(p.w, "converted %d tensors, %s in %s\n", p.tensors, FormatBytes(p.bytes), el.Round(100*time.Millisecond))
}

// abort ends a redrawn line so that the error message starts on its own.
func (p *progress) abort() {
	if p != nil && p.w != nil && p.tty && p.tensors > 0 {
		fmt.Fprintln(p.w)
	}
}

// line is one progress line:
//
//	[=========>          ]  45%  123/456 tensors  1.2 GB/2.7 GB  85 MB/s  ETA 0:17
func (p *progress) line(now time.Time) string {
	frac := 1.0
	if p.totalBytes > 0 {
		frac = float64(p.bytes) / float64(p.totalBytes)
	}
	const width = 20
	fill := int(frac * width)
	bar := strings.Repeat("=", fill)
	if fill < width {
		bar += ">" + strings.Repeat(" ", width-fill-1)
	}
	el := now.Sub(p.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(p.bytes) / el
	}
	eta := "?"
	if rate > 0 {
		eta = formatDuration(time.Duration(float64(p.totalBytes-p.bytes) / rate * float64(time.Second)))
	}
	return fmt.Sprintf("[%s] %3d%%  %d/%d tensors  %s/%s  %s/s  ETA %s",
		bar, int(frac*100), p.tensors, p.totalTensors, FormatBytes(p.bytes), FormatBytes(p.totalBytes),
		FormatBytes(int64(rate)), eta)
}

// FormatBytes writes a size for people: GB, MB or kB with one decimal.
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func formatDuration(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
