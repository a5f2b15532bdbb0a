package gguf

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestWriterRejects(t *testing.T) {
	fill := func(i int, info TensorInfo, out io.Writer) error {
		_, err := out.Write(make([]byte, info.Size()))
		return err
	}
	tests := []struct {
		name  string
		build func(w *Writer)
		data  func(i int, info TensorInfo, out io.Writer) error
		want  string
	}{
		{"int is not a GGUF type", func(w *Writer) { w.Add("n", 5) }, nil, `key "n": unsupported Go type int`},
		{"[]int", func(w *Writer) { w.Add("n", []int{5}) }, nil, "unsupported Go type []int"},
		{"map", func(w *Writer) { w.Add("m", map[string]int{}) }, nil, "unsupported Go type map[string]int"},
		{"nil", func(w *Writer) { w.Add("m", nil) }, nil, "unsupported Go type <nil>"},
		{"[]any of scalars", func(w *Writer) { w.Add("a", []any{uint8(1)}) }, nil, "element 0: []any may only hold arrays"},
		{"[]any too deep", func(w *Writer) {
			var v any = []uint8{}
			for range 8 {
				v = []any{v}
			}
			w.Add("a", v)
		}, nil, "nested deeper than 8"},
		{"empty key", func(w *Writer) { w.Add("", uint8(1)) }, nil, "empty metadata key"},
		{"alignment not uint32", func(w *Writer) { w.Add(AlignmentKey, int32(64)) }, nil, "must be a uint32 power of two"},
		{"alignment 24", func(w *Writer) { w.SetAlignment(24) }, nil, "alignment 24 is not a power of two"},
		{"alignment 0", func(w *Writer) { w.SetAlignment(0) }, nil, "alignment 0 is not a power of two"},
		{"first error wins", func(w *Writer) { w.Add("x", 1); w.Add("y", uint(2)) }, nil, `key "x"`},
		{"empty tensor name", func(w *Writer) { w.AddTensor("", TypeF32, []uint64{1}) }, fill, "empty tensor name"},
		{"tensor name of 64 bytes", func(w *Writer) { w.AddTensor(strings.Repeat("a", 64), TypeF32, []uint64{1}) }, fill, "ggml allows at most 63"},
		{"duplicate tensor", func(w *Writer) {
			w.AddTensor("t", TypeF32, []uint64{1})
			w.AddTensor("t", TypeF16, []uint64{1})
		}, fill, `tensor "t" added twice`},
		{"5 dims", func(w *Writer) { w.AddTensor("t", TypeF32, []uint64{1, 1, 1, 1, 1}) }, fill, "5 dimensions"},
		{"unknown type", func(w *Writer) { w.AddTensor("t", Type(31), []uint64{32}) }, fill, "unknown tensor type 31"},
		{"row not multiple of block", func(w *Writer) { w.AddTensor("t", TypeQ4_K, []uint64{128}) }, fill, "row length 128 is not a multiple of the Q4_K block size 256"},
		{"no callback", func(w *Writer) { w.AddTensor("t", TypeF32, []uint64{1}) }, nil, "no data callback"},
		{"too few bytes", func(w *Writer) { w.AddTensor("t", TypeF32, []uint64{4}) }, func(i int, info TensorInfo, out io.Writer) error {
			_, err := out.Write(make([]byte, 15))
			return err
		}, `tensor "t": data wrote 15 bytes, want 16`},
		{"too many bytes", func(w *Writer) { w.AddTensor("t", TypeF32, []uint64{4}) }, func(i int, info TensorInfo, out io.Writer) error {
			out.Write(make([]byte, 10))
			out.Write(make([]byte, 10)) // error ignored by a careless callback
			return nil
		}, `tensor "t": data wrote more than its 6 remaining bytes`},
		{"callback error", func(w *Writer) { w.AddTensor("t", TypeF32, []uint64{4}) }, func(i int, info TensorInfo, out io.Writer) error {
			return errors.New("source tensor missing")
		}, `tensor "t": source tensor missing`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWriter()
			tt.build(w)
			err := w.WriteTo(io.Discard, tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "gguf: ") {
				t.Errorf("WriteTo error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestAddTensorReturnsError(t *testing.T) {
	w := NewWriter()
	if err := w.AddTensor("t", TypeQ8_0, []uint64{31}); err == nil {
		t.Error("AddTensor accepted a partial Q8_0 block")
	}
	if err := w.AddTensor("ok", TypeQ8_0, []uint64{32}); err != nil {
		t.Error(err)
	}
}

func TestWriteFileRemovesTempOnError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.gguf")
	if err := os.WriteFile(path, []byte("previous"), 0o644); err != nil {
		t.Fatal(err)
	}
	w := NewWriter()
	w.AddTensor("t", TypeF32, []uint64{8})
	err := WriteFile(path, w, func(i int, info TensorInfo, out io.Writer) error {
		out.Write(make([]byte, 8)) // half the tensor, then fail
		return errors.New("disk on fire")
	})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("error %v should name %s and the cause", err, path)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temp file left behind: %v", entries)
	}
	if b, _ := os.ReadFile(path); string(b) != "previous" {
		t.Errorf("existing file was changed to %q", b)
	}
	if err := WriteFile(filepath.Join(dir, "missing", "x.gguf"), NewWriter(), nil); err == nil {
		t.Error("WriteFile into a missing folder succeeded")
	}
}

// countingDiscard counts bytes without keeping them.
type countingDiscard struct{ n int64 }

func (c *countingDiscard) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// TestWriteStreamsLargeTensor writes a 2.5 GB tensor (beyond 2^31 bytes)
// in 1 MiB pieces and checks that memory use stays flat.
func TestWriteStreamsLargeTensor(t *testing.T) {
	if testing.Short() {
		t.Skip("2.5 GB stream")
	}
	const n = 5 << 29 // bytes: 2.5 GiB of I8
	w := NewWriter()
	w.AddTensor("huge", TypeI8, []uint64{n / 1024, 1024})
	w.AddTensor("after", TypeF32, []uint64{8})
	chunk := make([]byte, 1<<20)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	out := &countingDiscard{}
	err := w.WriteTo(out, func(i int, info TensorInfo, o io.Writer) error {
		for left := info.Size(); left > 0; {
			k := min(left, uint64(len(chunk)))
			if _, err := o.Write(chunk[:k]); err != nil {
				return err
			}
			left -= k
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if out.n < n+32 || out.n%32 != 0 {
		t.Errorf("wrote %d bytes", out.n)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("allocated %d bytes to stream %d", alloc, n)
	}
	t.Logf("streamed %d bytes, allocated %d KiB", out.n, (after.TotalAlloc-before.TotalAlloc)>>10)
}
