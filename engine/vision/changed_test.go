package vision

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/blip2chat/blip2chat/weights/gguf"
)

// TestC5TruncatedWeights (C5): vision.gguf truncated while loaded. A run
// that starts afterwards is refused (the file changed on disk); a run that
// was already reading the weights when the file shrank faults (SIGBUS) in
// the kernel threads, which pass the fault to the caller, where it becomes
// the same error instead of killing the process.
func TestC5TruncatedWeights(t *testing.T) {
	data, err := os.ReadFile(modelPath(t, "blip2-opt", "f32"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "vision.gguf")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Load(path, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	g := readGolden(t, "blip2-opt")
	px := g.pixels(t)
	if _, err := m.EncodeImage(context.Background(), px); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Skip("cannot truncate a mapped file here:", err)
	}
	if _, err := m.EncodeImage(context.Background(), px); !errors.Is(err, gguf.ErrChanged) {
		t.Errorf("EncodeImage after truncation: %v", err)
	}
	// A run already past the check: the patch embedding on every thread.
	v := &m.info.Vision
	err = func() (err error) {
		defer m.file.Guard(&err, gguf.PanicOnFault())
		m.im2col(px)
		m.patch.forward(m.pool, m.buf.x.F32()[v.HiddenSize:], m.buf.patches.F32(), v.Tokens-1)
		return nil
	}()
	if !errors.Is(err, gguf.ErrChanged) {
		t.Errorf("a run reading the truncated weights: %v", err)
	}
	t.Log(err)
}
