//go:build unix

package hub_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/blip2chat/blip2chat/weights/hub"
)

// TestMain runs the pull of TestKillMidDownload's child process when the
// test binary is started as one.
func TestMain(m *testing.M) {
	if os.Getenv("HUBTEST_CHILD") == "pull" {
		cfg, err := hub.ConfigFromEnv()
		if err == nil {
			var c *hub.Client
			if c, err = hub.New(cfg, hub.Options{}); err == nil {
				_, err = c.Pull(context.Background(), hub.Ref{Repo: repoID}, hub.FetchOptions{})
			}
		}
		fmt.Fprintf(os.Stderr, "child: pull returned %v\n", err)
		os.Exit(3)
	}
	os.Exit(m.Run())
}

// TestKillMidDownload: a process pulling is killed with SIGKILL in the
// middle of a 50 MB shard; the next pull completes it, sends only the rest,
// and the shard's sha256 checks.
func TestKillMidDownload(t *testing.T) {
	t.Parallel()
	const size = 50_000_000
	const at = 20_000_000
	const shard = "model-00001-of-00002.safetensors"
	e := newEnv(t, size, 1000)
	release := e.hub.StallAt(shard, at)
	defer release()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "HUBTEST_CHILD=pull", "HF_ENDPOINT="+e.hub.URL, "HF_HUB_CACHE="+e.cache,
		"HF_TOKEN=", "HUGGING_FACE_HUB_TOKEN=", "HF_HUB_OFFLINE=", "TRANSFORMERS_OFFLINE=", "HF_HOME="+t.TempDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sha, _ := e.hub.Hashes(repoID, e.commit, shard)
	inc := filepath.Join(e.repoDir(), "blobs", sha+".incomplete")
	waitSize(t, inc, at)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child: %v\n%s", err, out.String())
	}
	release()
	if _, err := os.Stat(filepath.Join(e.repoDir(), "blobs", sha)); err == nil {
		t.Fatal("the blob exists before its download finished")
	}
	if _, err := os.Lstat(filepath.Join(e.repoDir(), "snapshots", e.commit, shard)); err == nil {
		t.Fatal("the snapshot links the shard before its download finished")
	}

	e.hub.ResetCounts()
	if _, err := e.pull(e.client(nil), hub.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	var sent int64
	for _, r := range e.hub.Requests() {
		if r.File == shard && r.Range != "" { // (the killed child's request may end after ResetCounts)
			sent += r.Bytes
		}
	}
	t.Logf("killed at %d bytes; the rerun was sent %d bytes of the shard", at, sent)
	if sent > size-at+1<<20 || sent == 0 {
		t.Errorf("the rerun was sent %d bytes of the shard, want the rest %d (+ 1 MiB at most)", sent, size-at)
	}
	e.checkSnapshot(false) // sha256 of every file
}
