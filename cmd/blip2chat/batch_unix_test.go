//go:build unix

package main

import (
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestBatchCtrlC: Ctrl+C (SIGINT) stops a batch after the answer in
// progress, which is written whole; it exits 130 saying how to go on.
func TestBatchCtrlC(t *testing.T) {
	b := startBatchChild(t, 2)
	cmd, out, childErr := b.cmd, b.out, &b.stderr
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("exit %v, want 130; stderr: %s", err, childErr.String())
	}
	if !strings.Contains(childErr.String(), "run the same command again to go on") {
		t.Errorf("stderr: %s", childErr.String())
	}
	recs := readBatchOut(t, out) // every line whole
	if len(recs) < 2 || len(recs) > 4 {
		t.Errorf("%d answers after Ctrl+C at the 2nd: it did not stop after the answer in progress", len(recs))
	}
}
