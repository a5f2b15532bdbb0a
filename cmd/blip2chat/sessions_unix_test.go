//go:build unix

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestH3SessionsFIFO: a FIFO in the sessions folder, named like a session,
// does not hang 'sessions' nor 'chat --resume': both say what it is, with
// the file's name made printable.
func TestH3SessionsFIFO(t *testing.T) {
	dir := sessionsDir(t)
	os.MkdirAll(dir, 0o755)
	fifo := filepath.Join(dir, "20270101-000000-ff\x1b[2Jff.jsonl")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	done := make(chan struct{})
	var out, errb bytes.Buffer
	var code, code2 int
	var msg string
	go func() {
		defer close(done)
		code = run([]string{"sessions"}, &out, &errb)
		code2, msg = runArgs("chat", "--resume")
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		w, _ := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if w != nil {
			w.Close()
		}
		t.Fatal("blocked on the FIFO")
	}
	if code != 0 || !strings.Contains(errb.String(), "named pipe (FIFO)") || strings.Contains(errb.String(), "\x1b") {
		t.Errorf("sessions: exit %d, %q", code, errb.String())
	}
	if code2 != 1 || !strings.Contains(msg, "named pipe (FIFO)") || strings.Contains(msg, "\x1b") {
		t.Errorf("chat --resume: exit %d, %q", code2, msg)
	}
}
