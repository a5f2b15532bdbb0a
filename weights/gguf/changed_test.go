package gguf

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTestFile writes a GGUF with one F32 tensor of n values.
func writeTestFile(t *testing.T, n int) string {
	t.Helper()
	w := NewWriter()
	w.Add(KeyArchitecture, "test")
	if err := w.AddTensor("t", TypeF32, []uint64{uint64(n)}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "t.gguf")
	err := WriteFile(path, w, func(_ int, info TensorInfo, out io.Writer) error {
		b := make([]byte, info.Size())
		for i := range b {
			b[i] = 1
		}
		_, err := out.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// sumTensor reads every byte of tensor t through the mapping, guarded.
func sumTensor(f *File) (sum int, err error) {
	defer f.Guard(&err, PanicOnFault())
	_, b, _ := f.Tensor("t")
	for _, x := range b {
		sum += int(x)
	}
	return sum, nil
}

// TestC5ChangedFile (C5): a mapped file truncated on disk is reported by
// Unchanged, and a read of its mapping past the new end — a memory fault
// (SIGBUS), fatal to the process otherwise — is an error wrapping
// ErrChanged under Guard.
func TestC5ChangedFile(t *testing.T) {
	const n = 1 << 16 // 256 KB: several pages past the header
	path := writeTestFile(t, n)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Unchanged(); err != nil {
		t.Fatalf("fresh file: %v", err)
	}
	if sum, err := sumTensor(f); err != nil || sum != 4*n {
		t.Fatalf("read: %d, %v", sum, err)
	}
	if err := os.Truncate(path, 100); err != nil {
		t.Skip("cannot truncate a mapped file here:", err) // Windows
	}
	if err := f.Unchanged(); !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), "t.gguf changed on disk since it was loaded (now 100 bytes, was ") {
		t.Errorf("Unchanged after truncation: %v", err)
	}
	_, err = sumTensor(f)
	if !errors.Is(err, ErrChanged) {
		t.Errorf("reading the truncated mapping: %v, want ErrChanged", err)
	}
	// A panic that is not a fault goes on.
	defer func() {
		if r := recover(); r != "boom" {
			t.Errorf("recovered %v, want the panic to go on", r)
		}
	}()
	func() (err error) {
		defer f.Guard(&err, PanicOnFault())
		panic("boom")
	}()
}
