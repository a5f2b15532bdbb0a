// Package plan is what a conversion writes, described before anything is
// written: a File is one GGUF file's metadata and tensors, and each Tensor
// names its type, its shape and the checkpoint tensors it is made from, and
// computes its values only when the file is streamed. Both converters
// (weights/convert for the vision side, weights/lmconv for the language
// model) and the synthetic models (weights/synth) make Files, so that a
// whole checkpoint is validated before a byte is written; WriteFiles then
// streams them, atomically, into a model folder.
package plan

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/safetensors"
)

// File is one planned file of a model folder, fully validated: a GGUF
// file's metadata and its tensors in file order, or a file copied as it is
// (Data, the checkpoint's generation_config.json), or one that must not be
// there (Absent). Planning writes nothing; WriteFiles calls each tensor's
// Values once, in order.
type File struct {
	Name    string // file name inside the model folder, e.g. "llm.gguf"
	KV      []gguf.KV
	Tensors []Tensor
	// Data, when not nil, is the whole file, written verbatim (KV and
	// Tensors are then empty).
	Data []byte
	// Absent says the folder must not hold a file of this name (a stale
	// copy from an earlier conversion): WriteFiles removes it when it
	// renames the others into place.
	Absent bool
	// Skipped lists checkpoint tensors deliberately not written because
	// they duplicate another (tied embedding copies) or are buffers the
	// runtime recomputes (rotary inv_freq); they count as used.
	Skipped []string
	// Warnings are things to tell the user, one line each.
	Warnings []string
}

// Value returns the metadata value of key.
func (f *File) Value(key string) (any, bool) {
	for _, kv := range f.KV {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// Used lists, sorted, every checkpoint tensor the file reads or knowingly
// skips.
func (f *File) Used() []string {
	seen := map[string]bool{}
	for _, t := range f.Tensors {
		for _, s := range t.Sources {
			seen[s] = true
		}
	}
	for _, s := range f.Skipped {
		seen[s] = true
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Bytes is the size of the file's tensors (the header adds a few kB, or a
// few MB with a vocabulary).
func (f *File) Bytes() (int64, error) {
	var n int64
	for _, t := range f.Tensors {
		b, err := t.Bytes()
		if err != nil {
			return 0, fmt.Errorf("%s: %v", f.Name, err)
		}
		n += b
	}
	return n, nil
}

// Tensor is one output tensor.
type Tensor struct {
	Name string // GGUF name, e.g. "blk.0.attn_q.weight"
	// Type is the GGUF type: gguf.TypeF32, TypeF16, TypeBF16 or TypeQ8_0
	// (encoded from Values by gguf.Encode when written).
	Type gguf.Type
	// Shape is in PyTorch order, outermost first ([out, in] for a linear
	// weight); the GGUF dims are its reverse.
	Shape []int
	// Sources are the checkpoint tensors it is made from.
	Sources []string
	// Values returns the tensor's values in row-major order (a new slice).
	// It is called once, when the tensor is written.
	Values func() ([]float32, error)
}

// NumElements is the product of the shape.
func (t Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Dims is the shape in ggml order (fastest dimension first).
func (t Tensor) Dims() []uint64 {
	d := make([]uint64, len(t.Shape))
	for i, s := range t.Shape {
		d[len(t.Shape)-1-i] = uint64(s)
	}
	return d
}

// Bytes is the size of the encoded tensor in the file.
func (t Tensor) Bytes() (int64, error) {
	if len(t.Shape) == 0 {
		return 0, fmt.Errorf("tensor %s: no shape", t.Name)
	}
	rb, err := t.Type.RowBytes(t.Shape[len(t.Shape)-1])
	if err != nil {
		return 0, fmt.Errorf("tensor %s: %v", t.Name, err)
	}
	return int64(rb) * int64(t.NumElements()/t.Shape[len(t.Shape)-1]), nil
}

// Encode calls Values and encodes the result to the tensor's type. Errors
// do not repeat the tensor's name: callers add it with their own context.
// A value that is not finite, or that the type cannot hold (above 65504 in
// F16), is an error: a checkpoint's NaN would otherwise pass convert and
// only show later, as an empty or garbled answer.
func (t Tensor) Encode() ([]byte, error) {
	vals, err := t.Values()
	if err != nil {
		return nil, err
	}
	if len(vals) != t.NumElements() {
		return nil, fmt.Errorf("%d values for shape %v", len(vals), t.Shape)
	}
	return t.encodeRows(vals, 0)
}

// encodeRows encodes whole rows of the tensor's values, the first being
// value number first of the tensor (for messages): the writer encodes a
// large tensor a piece at a time.
func (t Tensor) encodeRows(vals []float32, first int) ([]byte, error) {
	if err := checkFinite(vals, t.Type, first); err != nil {
		return nil, err
	}
	return gguf.Encode(t.Type, vals)
}

// checkFinite checks that every value is finite and fits typ: F16 holds at
// most 65504, and Q8_0 stores each block's scale, max|v|/127, as F16.
// first numbers the values in messages.
func checkFinite(vals []float32, typ gguf.Type, first int) error {
	limit := float32(math.MaxFloat32)
	switch typ {
	case gguf.TypeF16:
		limit = 65504
	case gguf.TypeQ8_0:
		limit = 65504 * 127
	}
	for i, v := range vals {
		// NaN fails both comparisons' negation; ±Inf is beyond any limit.
		if !(v <= limit && v >= -limit) {
			if v-v != 0 {
				return fmt.Errorf("value %d is %v: the checkpoint's weights are damaged", first+i, v)
			}
			return fmt.Errorf("value %d, %v, does not fit %s (at most %g); convert with a wider type (f32)", first+i, v, typ, limit)
		}
	}
	return nil
}

// newWriter returns a GGUF writer holding the file's metadata and the
// descriptions of its tensors, in order; the data callback then writes
// Tensors[i].Encode().
func (f *File) newWriter() (*gguf.Writer, error) {
	w := gguf.NewWriter()
	for _, e := range f.KV {
		w.Add(e.Key, e.Value)
	}
	for _, t := range f.Tensors {
		if err := w.AddTensor(t.Name, t.Type, t.Dims()); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// Checkpoint is the tensors of a checkpoint, looked up by their full name:
// a *safetensors.Checkpoint, or a stand-in holding only names and shapes
// (weights/synth).
type Checkpoint interface {
	Tensor(name string) (safetensors.Tensor, bool)
	Names() []string
}

// Expect returns the tensor called name from the checkpoint in folder dir
// after checking that it exists, is a floating-point tensor and has exactly
// the given shape. The error names the checkpoint, the tensor, what was
// expected and what was found.
func Expect(ck Checkpoint, dir, name string, shape ...int) (safetensors.Tensor, error) {
	t, ok := ck.Tensor(name)
	if !ok {
		return t, fmt.Errorf("checkpoint %s: tensor %s is missing (expected shape %v)", dir, name, shape)
	}
	switch t.DType {
	case safetensors.F32, safetensors.F16, safetensors.BF16:
	default:
		return t, fmt.Errorf("checkpoint %s: tensor %s has dtype %s, expected F32, F16 or BF16", dir, name, t.DType)
	}
	if !slices.Equal(t.Shape, shape) {
		return t, fmt.Errorf("checkpoint %s: tensor %s has shape %v, expected %v from config.json", dir, name, t.Shape, shape)
	}
	return t, nil
}
