//go:build unix

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/engine/model/modeltest"
)

// TestBatchCtrlC: Ctrl+C (SIGINT) stops a batch after the answer in
// progress, which is written whole; it exits 130 saying how to go on.
func TestBatchCtrlC(t *testing.T) {
	lib := modeltest.LibDir(t)
	c := modeltest.Cases(t, "opt")[0]
	dir := askModelDir(t, c, "f32")
	folder, _ := batchImagesFixture(t)
	out := filepath.Join(t.TempDir(), "results.jsonl")
	args := []string{"batch", "-m", dir, folder, "--out", out, "--prompt", batchPrompts[0], "--prompt", batchPrompts[1],
		"--preset", "reference", "--preset", "vqa", "--llama-lib", lib, "--threads", "1"}
	enc, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), batchChildEnv+"="+string(enc))
	var childErr bytes.Buffer
	cmd.Stderr = &childErr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		data, _ := os.ReadFile(out)
		if bytes.Count(data, []byte("\n")) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no answers in 2 minutes: %s", childErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
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
