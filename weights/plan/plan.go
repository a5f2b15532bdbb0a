// Package plan describes the tensors of a GGUF file that a conversion will
// write, before anything is written: each output tensor names its type, its
// shape and the checkpoint tensors it is made from, and computes its values
// only when the file is streamed. Both converters (weights/convert for the
// vision side, weights/lmconv for the language model) plan with it, so that a
// whole checkpoint is validated before a byte is written.
package plan

import (
	"fmt"
	"slices"

	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/safetensors"
)

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
func (t Tensor) Encode() ([]byte, error) {
	vals, err := t.Values()
	if err != nil {
		return nil, err
	}
	if len(vals) != t.NumElements() {
		return nil, fmt.Errorf("%d values for shape %v", len(vals), t.Shape)
	}
	return gguf.Encode(t.Type, vals)
}

// NewWriter returns a GGUF writer holding the metadata kv and the
// descriptions of ts, in order; the data callback then writes ts[i].Encode().
func NewWriter(kv []gguf.KV, ts []Tensor) (*gguf.Writer, error) {
	w := gguf.NewWriter()
	for _, e := range kv {
		w.Add(e.Key, e.Value)
	}
	for _, t := range ts {
		if err := w.AddTensor(t.Name, t.Type, t.Dims()); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// Tensors looks up checkpoint tensors by their full name; a
// *safetensors.Checkpoint is one.
type Tensors interface {
	Tensor(name string) (safetensors.Tensor, bool)
}

// Expect returns the tensor called name from the checkpoint in folder dir
// after checking that it exists, is a floating-point tensor and has exactly
// the given shape. The error names the checkpoint, the tensor, what was
// expected and what was found.
func Expect(ck Tensors, dir, name string, shape ...int) (safetensors.Tensor, error) {
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
