//go:build unix

package imageprep

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// loadWithin runs Load and fails the test when it takes more than d (the
// FIFO is then opened for writing so that a blocked open returns).
func loadWithin(t *testing.T, ctx context.Context, path string, d time.Duration, unblock string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := Load(ctx, path)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		if unblock != "" {
			if w, err := os.OpenFile(unblock, os.O_WRONLY, 0); err == nil {
				w.Close()
			}
		}
		t.Fatalf("Load(%s) still running after %v", path, d)
		return nil
	}
}

// TestC1EndlessImage (C1): /dev/zero, or a link to it named like a photo,
// is refused at once instead of read until memory runs out; a regular file
// larger than any image could be is refused from its size, unread.
func TestC1EndlessImage(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "zero.jpg")
	if err := os.Symlink("/dev/zero", link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/dev/zero", link} {
		err := loadWithin(t, context.Background(), p, 2*time.Second, "")
		if err == nil || !strings.Contains(err.Error(), "is a character device, not a regular file") {
			t.Errorf("Load(%s) = %v, want a refusal of the device", p, err)
		}
	}
	// A sparse file: its size says it all, nothing is read.
	big := filepath.Join(dir, "big.png")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxFileBytes + 1); err != nil {
		t.Skip("no sparse files here:", err)
	}
	f.Close()
	err = loadWithin(t, context.Background(), big, 2*time.Second, "")
	if err == nil || !strings.Contains(err.Error(), "larger than any image of at most 100 megapixels") {
		t.Errorf("Load(%d-byte file) = %v", int64(MaxFileBytes+1), err)
	}
}

// TestH1FIFOImage (H1): a FIFO named like a photo is refused at once, where
// open(2) would wait for a writer forever, deaf to Ctrl+C.
func TestH1FIFOImage(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo.jpg")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	err := loadWithin(t, context.Background(), fifo, 2*time.Second, fifo)
	if err == nil || !strings.Contains(err.Error(), "is a named pipe (FIFO), not a regular file") {
		t.Errorf("Load(FIFO) = %v", err)
	}
}

// endless is a reader that never ends, as /dev/zero or a pipe fed forever.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestC1ReadStops (C1): the read of an endless stream stops at the byte
// limit, and as soon as the context is done.
func TestC1ReadStops(t *testing.T) {
	if _, err := readLimited(context.Background(), endless{}, 0, 10<<20); err == nil || !strings.Contains(err.Error(), "more than 10 MB of data") {
		t.Errorf("endless stream, 10 MB limit: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	// A limit far above what the machine could hold: only the context can
	// stop this read in time (each chunk is reused below the limit).
	_, err := readLimited(ctx, slowEndless{}, 0, 1<<62)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Errorf("cancelled read: %v after %v", err, time.Since(start))
	}
	if _, err := Decode(strings.NewReader(""), "empty.jpg"); err == nil || err.Error() != "empty.jpg: empty file" {
		t.Errorf("Decode(empty) = %v", err)
	}
}

// slowEndless is a stream that trickles forever, as a slow network file.
type slowEndless struct{}

func (slowEndless) Read(p []byte) (int, error) {
	time.Sleep(10 * time.Millisecond)
	n := min(len(p), 16)
	clear(p[:n])
	return n, nil
}
