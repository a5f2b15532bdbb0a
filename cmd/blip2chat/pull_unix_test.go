//go:build unix

package main

import (
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestPullInterrupted: Ctrl+C (SIGINT) in the middle of a shard stops the
// pull with status 130 and one line saying how to go on; the next pull
// resumes.
func TestPullInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	s := startStalledPull(t)
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := s.cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("after SIGINT: %v; stderr %s", err, s.stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(s.stderr.String()), "\n")
	if last := lines[len(lines)-1]; last != "blip2chat pull: interrupted; run the same command again to go on where it stopped" {
		t.Errorf("last line %q", last)
	}
	s.rerun(t)
}
