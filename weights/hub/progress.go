package hub

import (
	"sync"
	"time"
)

// Progress is a snapshot of a Fetch, passed to FetchOptions.Progress.
type Progress struct {
	// File is the file this update is about ("" for none), with its bytes
	// in the cache so far and its size; FileDone says it is complete,
	// verified and linked into the snapshot.
	File                string
	FileBytes, FileSize int64
	FileDone            bool
	// Bytes and Total are over every file of the plan: bytes in the cache
	// (already there, resumed, or received) and all bytes. Received counts
	// bytes received from the network in this Fetch.
	Bytes, Total, Received int64
	// FilesDone of Files are complete.
	FilesDone, Files int
	// Rate is the download rate in bytes per second over the last few
	// seconds, and ETA the time left at that rate (-1: unknown).
	Rate float64
	ETA  time.Duration
}

// Meter computes a transfer rate over a sliding window and the time left
// at it. The zero value is ready, with a 5-second window.
type Meter struct {
	Window  time.Duration
	samples []meterSample
}

type meterSample struct {
	t     time.Time
	bytes int64
}

// Add records that bytes (a running total) had arrived at t.
func (m *Meter) Add(t time.Time, bytes int64) {
	w := m.Window
	if w <= 0 {
		w = 5 * time.Second
	}
	m.samples = append(m.samples, meterSample{t, bytes})
	// Keep one sample older than the window, so the rate spans all of it.
	i := 0
	for i+1 < len(m.samples) && t.Sub(m.samples[i+1].t) >= w {
		i++
	}
	m.samples = m.samples[i:]
}

// Rate returns bytes per second over the window, 0 before two samples.
func (m *Meter) Rate() float64 {
	if len(m.samples) < 2 {
		return 0
	}
	a, b := m.samples[0], m.samples[len(m.samples)-1]
	dt := b.t.Sub(a.t).Seconds()
	if dt <= 0 {
		return 0
	}
	return float64(b.bytes-a.bytes) / dt
}

// ETA returns the time remaining bytes take at Rate, -1 when the rate is
// unknown or zero.
func (m *Meter) ETA(remaining int64) time.Duration {
	r := m.Rate()
	if remaining <= 0 {
		return 0
	}
	if r <= 0 {
		return -1
	}
	return time.Duration(float64(remaining) / r * float64(time.Second))
}

// tracker collects the progress of a Fetch's workers and reports it,
// serialized, at most every interval (and always when a file starts or
// ends).
type tracker struct {
	mu       sync.Mutex
	report   func(Progress)
	interval time.Duration
	last     time.Time
	meter    Meter
	p        Progress
	files    map[string]int64
	now      func() time.Time
}

func newTracker(report func(Progress), files []File) *tracker {
	t := &tracker{report: report, interval: 100 * time.Millisecond, files: map[string]int64{}, now: time.Now}
	t.p.Files = len(files)
	for _, f := range files {
		t.p.Total += f.Size
		switch {
		case f.Cached:
			t.p.Bytes += f.Size
			t.p.FilesDone++
		default:
			t.p.Bytes += f.Partial
			t.files[f.Path] = f.Partial
		}
	}
	t.meter.Add(t.now(), 0)
	return t
}

// set records that f has done bytes in the cache now (after a restart from
// 0, fewer than before).
func (t *tracker) set(f File, done int64, received int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.p.Bytes += done - t.files[f.Path]
	t.files[f.Path] = done
	t.p.Received += received
	t.emit(f, done, false, false)
}

// finish records that f is complete.
func (t *tracker) finish(f File) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.p.Bytes += f.Size - t.files[f.Path]
	t.files[f.Path] = f.Size
	t.p.FilesDone++
	t.emit(f, f.Size, true, true)
}

// start reports that f begins.
func (t *tracker) start(f File, done int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.emit(f, done, false, true)
}

func (t *tracker) emit(f File, done int64, fileDone, force bool) {
	now := t.now()
	t.meter.Add(now, t.p.Received)
	if t.report == nil || (!force && now.Sub(t.last) < t.interval) {
		return
	}
	t.last = now
	p := t.p
	p.File, p.FileBytes, p.FileSize, p.FileDone = f.Path, done, f.Size, fileDone
	p.Rate = t.meter.Rate()
	p.ETA = t.meter.ETA(p.Total - p.Bytes)
	t.report(p)
}
