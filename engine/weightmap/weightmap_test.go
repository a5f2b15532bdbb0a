package weightmap

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/engine/kernels"
	"github.com/blip2chat/blip2chat/weights/gguf"
)

// testFile writes a small GGUF with one tensor of each kind and opens it.
func testFile(t *testing.T) (*gguf.File, string) {
	t.Helper()
	w := gguf.NewWriter()
	w.Add("s", "text")
	w.Add("n", uint32(7))
	w.Add("zero", uint32(0))
	w.Add("big", uint64(1<<31))
	w.Add("neg", int32(-1))
	w.Add("eps", float32(1e-6))
	w.Add("flag", true)
	tensors := []struct {
		name string
		typ  gguf.Type
		dims []uint64
	}{
		{"f32", gguf.TypeF32, []uint64{3, 2}}, // PyTorch shape [2, 3]
		{"f16", gguf.TypeF16, []uint64{4, 2}},
		{"q8", gguf.TypeQ8_0, []uint64{32, 2}},
		{"q4", gguf.TypeQ4_0, []uint64{32, 2}},
		{"vec", gguf.TypeF32, []uint64{5}},
	}
	for _, tt := range tensors {
		if err := w.AddTensor(tt.name, tt.typ, tt.dims); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "w.gguf")
	err := gguf.WriteFile(path, w, func(i int, info gguf.TensorInfo, out io.Writer) error {
		b := make([]byte, info.Size())
		for j := range b {
			b[j] = byte(i + 1)
		}
		_, err := out.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := Load(path, "test", func(f *gguf.File, name string) (*gguf.File, error) { return f, nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, path
}

func TestMetadata(t *testing.T) {
	f, path := testFile(t)
	tests := []struct {
		name string
		read func(l *Loader) any
		want any
		err  string // "" for no error
	}{
		{"string", func(l *Loader) any { return l.String("s") }, "text", ""},
		{"string missing", func(l *Loader) any { return l.String("nope") }, "", "metadata nope is missing"},
		{"int", func(l *Loader) any { return l.Int("n") }, 7, ""},
		{"int zero", func(l *Loader) any { return l.Int("zero") }, 0, ""},
		{"int missing", func(l *Loader) any { return l.Int("nope") }, 0, "metadata nope is missing"},
		{"int too big", func(l *Loader) any { return l.Int("big") }, 0, "metadata big = 2147483648 is out of range"},
		{"int negative", func(l *Loader) any { return l.Int("neg") }, 0, "metadata neg = -1 is out of range"},
		{"int of a string", func(l *Loader) any { return l.Int("s") }, 0, "metadata s is missing"},
		{"positive", func(l *Loader) any { return l.Positive("n") }, 7, ""},
		{"positive zero", func(l *Loader) any { return l.Positive("zero") }, 0, "metadata zero = 0 must be positive"},
		{"float", func(l *Loader) any { return l.Float32("eps") }, float32(1e-6), ""},
		{"float missing", func(l *Loader) any { return l.Float32("nope") }, float32(0), "metadata nope is missing"},
		{"bool", func(l *Loader) any { return l.Bool("flag") }, true, ""},
		{"bool missing", func(l *Loader) any { return l.Bool("nope") }, false, "metadata nope is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLoader(f, path, "test")
			got := tt.read(l)
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			checkErr(t, l.Err(), path, tt.err)
		})
	}
}

func checkErr(t *testing.T, err error, path, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("unexpected error %v", err)
	case want != "" && (err == nil || err.Error() != path+": "+want):
		t.Errorf("error %v, want %q", err, path+": "+want)
	}
}

func TestTensors(t *testing.T) {
	f, path := testFile(t)
	tests := []struct {
		name  string
		read  func(l *Loader) (ok bool)
		check func(t *testing.T, l *Loader)
		err   string
	}{
		{"f32 matrix in place", func(l *Loader) bool {
			m := l.Matrix("f32", 2, 3)
			return m != nil && m.Type == kernels.F32 && len(m.F32) == 6 && m.Rows == 2 && m.Cols == 3
		}, nil, ""},
		{"f16 matrix", func(l *Loader) bool {
			m := l.Matrix("f16", 2, 4)
			return m != nil && m.Type == kernels.F16 && len(m.Raw) == 16 && m.Raw[0] == 2
		}, nil, ""},
		{"q8_0 matrix", func(l *Loader) bool {
			m := l.Matrix("q8", 2, 32)
			return m != nil && m.Type == kernels.Q8_0 && len(m.Raw) == 68
		}, nil, ""},
		{"unsupported type", func(l *Loader) bool { return l.Matrix("q4", 2, 32) == nil }, nil,
			"tensor q4 has type Q4_0; test weights must be F32, F16 or Q8_0"},
		{"wrong shape", func(l *Loader) bool { return l.Matrix("f32", 3, 2) == nil }, nil,
			"tensor f32 has shape [2 3], expected [3 2]"},
		{"wrong rank", func(l *Loader) bool { return l.F32Tensor("f32", 6) == nil }, nil,
			"tensor f32 has shape [2 3], expected [6]"},
		{"missing", func(l *Loader) bool { return l.Matrix("nope", 1, 1) == nil }, nil, "tensor nope is missing"},
		{"f32 view", func(l *Loader) bool { v := l.F32Tensor("vec", 5); return len(v) == 5 }, nil, ""},
		{"f32 view of f16", func(l *Loader) bool { return l.F32Tensor("f16", 2, 4) == nil }, nil,
			"tensor f16 is F16, expected F32"},
		{"first error kept, later reads refused", func(l *Loader) bool {
			l.Int("nope")
			return l.Matrix("f32", 2, 3) == nil && l.F32Tensor("vec", 5) == nil
		}, nil, "metadata nope is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLoader(f, path, "test")
			if !tt.read(l) {
				t.Error("unexpected result")
			}
			checkErr(t, l.Err(), path, tt.err)
		})
	}
	// Failf records only the first error and names the file.
	l := NewLoader(f, path, "test")
	l.Failf("first %d", 1)
	l.Failf("second")
	checkErr(t, l.Err(), path, "first 1")
	if l.Name() != path || l.File() != f {
		t.Error("Name or File wrong")
	}
}

func TestLoad(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing.gguf"), "test", func(f *gguf.File, name string) (int, error) {
		t.Error("build called without a file")
		return 0, nil
	})
	if err == nil || !strings.Contains(err.Error(), "missing.gguf") {
		t.Errorf("Load of a missing file: %v", err)
	}
	// A failing build closes the file: its bytes are unmapped.
	_, path := testFile(t)
	var kept *gguf.File
	_, err = Load(path, "test", func(f *gguf.File, name string) (int, error) {
		kept = f
		if name != path {
			t.Errorf("build got name %q, want %q", name, path)
		}
		return 0, errors.New("bad model")
	})
	if err == nil || err.Error() != "bad model" {
		t.Errorf("Load with a failing build: %v", err)
	}
	if kept == nil {
		t.Fatal("build not called")
	}
	if _, _, ok := kept.Tensor("vec"); ok {
		t.Error("the file is still mapped after a failing build")
	}
}

// TestU2ShapeOrder (U2): a misshapen tensor's message prints both shapes
// in one order, row-major (PyTorch's, outermost first): a tensor stored
// transposed shows two different lists, not "has dims [3 2], expected
// shape [3 2]".
func TestU2ShapeOrder(t *testing.T) {
	f, path := testFile(t)
	l := NewLoader(f, path, "test")
	if l.Matrix("f32", 3, 2) != nil { // stored [2, 3]: transposed
		t.Fatal("a transposed matrix was accepted")
	}
	checkErr(t, l.Err(), path, "tensor f32 has shape [2 3], expected [3 2]")
	info, _, _ := f.Tensor("f32")
	if got := fmt.Sprint(info.Shape()); got != "[2 3]" {
		t.Errorf("Shape() = %s, want [2 3] (dims %v reversed)", got, info.Dims)
	}
}
