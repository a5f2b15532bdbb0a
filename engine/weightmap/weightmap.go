// Package weightmap reads the weights of the native engines (engine/vision,
// engine/lm/opt) from a memory-mapped GGUF file: metadata values, and tensors
// checked against the shapes the metadata implies and handed out without a
// copy, as kernel matrices (F32, F16 or Q8_0) or float32 views (F32).
//
// A Loader keeps the first error, naming the file, so that a model's loader
// can read every value and tensor in a row and check once at the end.
//
//	m, err := weightmap.Load(path, "vision", func(f *gguf.File, name string) (*Model, error) {
//		l := weightmap.NewLoader(f, name, "vision")
//		d := l.Positive("blip2.vision.hidden_size")
//		w := l.Matrix("v.blk.0.attn_out.weight", d, d)
//		b := l.F32Tensor("v.blk.0.attn_out.bias", d)
//		...
//		return m, l.Err()
//	})
package weightmap

import (
	"fmt"
	"unsafe"

	"github.com/blip2chat/blip2chat/engine/kernels"
	"github.com/blip2chat/blip2chat/weights/dtype"
	"github.com/blip2chat/blip2chat/weights/gguf"
)

// Load memory-maps the GGUF file at path and builds a model from it with
// build (name is path, for errors); the file is closed if build fails. kind
// names the weights in errors ("vision", "OPT"): F32 tensors are used in
// place, which needs a little-endian CPU.
func Load[M any](path, kind string, build func(f *gguf.File, name string) (M, error)) (M, error) {
	var zero M
	if !littleEndian() {
		return zero, fmt.Errorf("%s: %s weights need a little-endian CPU", path, kind)
	}
	f, err := gguf.Open(path)
	if err != nil {
		return zero, err
	}
	m, err := build(f, path)
	if err != nil {
		f.Close()
		return zero, err
	}
	return m, nil
}

func littleEndian() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}

// Loader reads metadata and tensors of one file, keeping the first error.
type Loader struct {
	f    *gguf.File
	name string // the file, in errors
	kind string // the weights, in errors: "vision", "OPT"
	err  error
}

// NewLoader returns a Loader of f; name (the file's path) starts every
// error, kind names the weights in type errors.
func NewLoader(f *gguf.File, name, kind string) *Loader {
	return &Loader{f: f, name: name, kind: kind}
}

// File is the file being read, for optional values the Loader has no
// accessor for.
func (l *Loader) File() *gguf.File { return l.f }

// Name is the file name errors start with.
func (l *Loader) Name() string { return l.name }

// Err is the first error, nil if none.
func (l *Loader) Err() error { return l.err }

// Failf records an error, "name: " followed by the formatted message, unless
// one is already recorded.
func (l *Loader) Failf(format string, args ...any) {
	if l.err == nil {
		l.err = fmt.Errorf("%s: "+format, append([]any{l.name}, args...)...)
	}
}

// required reads key with get, recording an error when it is absent.
func required[T any](l *Loader, key string, get func(string) (T, bool)) T {
	v, ok := get(key)
	if !ok {
		l.Failf("metadata %s is missing", key)
	}
	return v
}

// String returns a required string value.
func (l *Loader) String(key string) string { return required(l, key, l.f.String) }

// Float32 returns a required float value.
func (l *Loader) Float32(key string) float32 { return required(l, key, l.f.Float32) }

// Bool returns a required bool value.
func (l *Loader) Bool(key string) bool { return required(l, key, l.f.Bool) }

// Int returns a required integer value, which must lie in 0..2^30 (a
// larger one is a corrupt header, refused before it sizes an allocation).
func (l *Loader) Int(key string) int {
	n := required(l, key, l.f.Int)
	if n < 0 || n > 1<<30 {
		l.Failf("metadata %s = %d is out of range", key, n)
		return 0
	}
	return n
}

// Positive is Int for a value that must be at least 1.
func (l *Loader) Positive(key string) int {
	n := l.Int(key)
	if n <= 0 {
		l.Failf("metadata %s = %d must be positive", key, n)
	}
	return n
}

// Tensor returns a tensor's description and bytes after checking its
// PyTorch-order (row-major) shape (GGUF dims are the reverse). It returns nil bytes
// when the tensor is absent or misshapen, or once an error is recorded.
func (l *Loader) Tensor(name string, shape ...int) (gguf.TensorInfo, []byte) {
	if l.err != nil {
		return gguf.TensorInfo{}, nil
	}
	info, data, ok := l.f.Tensor(name)
	if !ok {
		l.Failf("tensor %s is missing", name)
		return info, nil
	}
	// Both shapes are printed row-major (TensorInfo.Shape), never one in
	// GGUF's dims order.
	if len(info.Dims) != len(shape) {
		l.Failf("tensor %s has shape %v, expected %v", name, info.Shape(), shape)
		return info, nil
	}
	for i, s := range shape {
		if info.Dims[len(shape)-1-i] != uint64(s) {
			l.Failf("tensor %s has shape %v, expected %v", name, info.Shape(), shape)
			return info, nil
		}
	}
	return info, data
}

// F32Tensor views an F32 tensor of the given shape in place.
func (l *Loader) F32Tensor(name string, shape ...int) []float32 {
	info, data := l.Tensor(name, shape...)
	if data == nil {
		return nil
	}
	if info.Type != gguf.TypeF32 {
		l.Failf("tensor %s is %s, expected F32", name, info.Type)
		return nil
	}
	v, err := viewF32(data)
	if err != nil {
		l.Failf("tensor %s: %v", name, err)
	}
	return v
}

// Matrix wraps an [out, in] weight of type F32, F16 or Q8_0 without
// copying.
func (l *Loader) Matrix(name string, out, in int) *kernels.Matrix {
	info, data := l.Tensor(name, out, in)
	if data == nil {
		return nil
	}
	m := &kernels.Matrix{Rows: out, Cols: in}
	switch info.Type {
	case gguf.TypeF32:
		v, err := viewF32(data)
		if err != nil {
			l.Failf("tensor %s: %v", name, err)
			return nil
		}
		m.Type, m.F32 = kernels.F32, v
	case gguf.TypeF16:
		m.Type, m.Raw = kernels.F16, data
	case gguf.TypeQ8_0:
		if in%dtype.Q8_0BlockSize != 0 {
			l.Failf("tensor %s: q8_0 with %d columns", name, in)
			return nil
		}
		m.Type, m.Raw = kernels.Q8_0, data
	default:
		l.Failf("tensor %s has type %s; %s weights must be F32, F16 or Q8_0", name, info.Type, l.kind)
		return nil
	}
	return m
}

// viewF32 reinterprets little-endian float32 bytes in place. GGUF aligns
// tensor data (32 bytes by default) in a page-aligned map, so the view is
// aligned; anything else is refused rather than copied.
func viewF32(b []byte) ([]float32, error) {
	if len(b) == 0 {
		return []float32{}, nil
	}
	if len(b)%4 != 0 || uintptr(unsafe.Pointer(&b[0]))%4 != 0 {
		return nil, fmt.Errorf("f32 data is not 4-byte aligned")
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4), nil
}
