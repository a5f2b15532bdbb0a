//go:build unix

package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOpenRefusesFIFO (H1/H3): a FIFO, or a link to one, is refused at
// once with one line, where open(2) would wait for a writer forever; a
// device node is refused as an output.
func TestOpenRefusesFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.jsonl")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	link := filepath.Join(dir, "link.jpg")
	os.Symlink(fifo, link)
	for _, p := range []string{fifo, link} {
		done := make(chan error, 1)
		go func() {
			_, err := ReadFile(p, 0)
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "is a named pipe (FIFO), not a regular file") {
				t.Errorf("ReadFile(%s): %v", p, err)
			}
		case <-time.After(5 * time.Second):
			// Unblock the open so that the test can end.
			w, _ := os.OpenFile(fifo, os.O_WRONLY, 0)
			w.Close()
			t.Fatalf("ReadFile(%s) blocked on the FIFO", p)
		}
	}
	if _, err := OpenFile(fifo, os.O_RDWR, 0); !errors.Is(err, ErrNotRegular) {
		t.Errorf("OpenFile(FIFO, O_RDWR): %v", err)
	}
	if _, err := Regular(fifo); !errors.Is(err, ErrNotRegular) {
		t.Errorf("Regular(FIFO): %v", err)
	}
	if _, err := CheckTarget(fifo); err == nil || !strings.Contains(err.Error(), "is a named pipe (FIFO): not replaced") {
		t.Errorf("CheckTarget(FIFO): %v", err)
	}
	if _, err := CheckTarget("/dev/null"); err == nil || !strings.Contains(err.Error(), "is a character device: not replaced") {
		t.Errorf("CheckTarget(/dev/null): %v", err)
	}
}
