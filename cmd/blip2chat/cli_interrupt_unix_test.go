//go:build unix

package main

import (
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAskInterrupt: Ctrl-C while the answer streams stops ask at once,
// keeps what was printed (ended by a newline) and exits with status 130
// after one line on stderr.
func TestAskInterrupt(t *testing.T) {
	f := newCLIFixtures(t)
	// A context far beyond the tiny model's training one, so that the
	// answer goes on until interrupted.
	args := []string{"ask", "-m", f.llama, f.img, "q", "--max-tokens", "20000", "--ctx", "20100", "--threads", "1", "--llama-lib", f.lib}
	// While the test runs, SIGINT is also delivered here, so a signal that
	// arrives after ask has stopped listening cannot kill the test binary.
	held := make(chan os.Signal, 4)
	signal.Notify(held, os.Interrupt)
	defer signal.Stop(held)
	var stdout, stderr *syncBuffer
	var code int
	var sent time.Time
	// The sampled answer may reach its end of text before the signal; then the
	// run says nothing about interrupting, and another one is made.
	for attempt := 1; ; attempt++ {
		stdout, stderr = &syncBuffer{}, &syncBuffer{}
		done := make(chan int, 1)
		go func() { done <- run(args, stdout, stderr) }()
		// ask handles SIGINT from before it loads the model, so once the
		// answer streams the signal reaches it.
		deadline := time.Now().Add(30 * time.Second)
		ended := false
		for stdout.String() == "" && !ended {
			select {
			case code = <-done:
				ended = true
			default:
			}
			if time.Now().After(deadline) {
				t.Fatal("no answer after 30 s")
			}
			time.Sleep(5 * time.Millisecond)
		}
		if !ended {
			sent = time.Now()
			if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			select {
			case code = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("ask still running 10 s after SIGINT")
			}
		}
		if code != 0 || attempt == 5 {
			break
		}
		t.Logf("attempt %d: the answer ended (exit 0) before the interrupt; again", attempt)
	}
	t.Logf("stopped %v after SIGINT, %d bytes of answer", time.Since(sent).Round(time.Millisecond), len(stdout.String()))
	if code != 130 {
		t.Errorf("exit status %d, want 130", code)
	}
	if msg := stderr.String(); msg != "blip2chat ask: interrupted\n" {
		t.Errorf("stderr %q", msg)
	}
	if out := stdout.String(); out == "" || !strings.HasSuffix(out, "\n") {
		t.Errorf("stdout %q: want the partial answer and a newline", out)
	}
}
