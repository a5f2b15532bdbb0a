//go:build unix

package app_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/app"
)

// within fails the test when f takes longer than d (it would block
// forever on a FIFO): f runs on its own goroutine. The FIFOs made by
// mkfifo are then opened for writing, so that what blocks on them ends.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		for _, p := range fifos {
			if w, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
		}
		t.Fatalf("%s blocked for %v", what, d)
	}
}

var fifos []string

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	fifos = append(fifos, path)
}

// TestH3SessionFIFO: a FIFO named like the newest session in the sessions
// folder neither hangs the list nor --resume: it is reported, the other
// sessions list, and resuming the latest says why it cannot.
func TestH3SessionFIFO(t *testing.T) {
	dir := t.TempDir()
	good := "20261202-150000-aaaaaa"
	writeSession(t, dir, good, turnLine("q", "a"))
	mkfifo(t, filepath.Join(dir, "20270101-000000-ffffff.jsonl"))
	within(t, 5*time.Second, "ListSessions", func() {
		list, errs := app.ListSessions(dir)
		if len(list) != 1 || list[0].ID != good || len(errs) != 1 || !strings.Contains(errs[0].Error(), "named pipe (FIFO)") {
			t.Errorf("list: %d sessions, errors %v", len(list), errs)
		}
	})
	within(t, 5*time.Second, "FindSession", func() {
		if _, err := app.FindSession(dir, ""); err == nil || !strings.Contains(err.Error(), "named pipe (FIFO)") {
			t.Errorf("latest: %v", err)
		}
		if s, err := app.FindSession(dir, good); err != nil || s.ID != good {
			t.Errorf("by id: %v", err)
		}
	})
}

// TestH1ImageFIFO: /image on a FIFO is refused at once with one line,
// where it hung in "decoding" with Esc unable to stop it.
func TestH1ImageFIFO(t *testing.T) {
	a, _, _ := newTestApp(t, nil)
	fifo := filepath.Join(t.TempDir(), "fifo.jpg")
	mkfifo(t, fifo)
	within(t, 5*time.Second, "/image FIFO", func() {
		a.Submit("/image " + fifo)
		st := waitIdle(t, a)
		if e, _ := lastOf(st, app.EntryError); !strings.Contains(e.Text, "fifo.jpg is a named pipe (FIFO), not a regular file") {
			t.Errorf("/image FIFO: %q", e.Text)
		}
		if filepath.Base(st.ImagePath) != sampleName {
			t.Errorf("the image is now %s", st.ImagePath)
		}
	})
}
