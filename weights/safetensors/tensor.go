package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/blip2chat/blip2chat/weights/dtype"
)

// Tensor is one tensor of a file. Data holds its little-endian bytes in C
// (row-major) order and aliases the file's memory map: it is valid until the
// File or Checkpoint is closed and must not be modified.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
	// mapped says Data is a read-only file mapping (Open), which Release
	// may give back; never memory the process owns (Parse's), whose
	// contents madvise would discard.
	mapped bool
}

// NumElements is the product of the shape (1 for a scalar).
func (t Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// check verifies that Data holds exactly the elements the shape asks for, so
// the conversions below never index out of range even for hand-built tensors.
func (t Tensor) check() (int, error) {
	size := t.DType.Size()
	if size == 0 {
		return 0, fmt.Errorf("tensor %q: unknown dtype %q", t.Name, t.DType)
	}
	n, ok := numElements(t.Shape)
	if !ok || len(t.Data)/size != n || len(t.Data)%size != 0 {
		return 0, fmt.Errorf("tensor %q: %d bytes of data do not match shape %v of %s", t.Name, len(t.Data), t.Shape, t.DType)
	}
	return n, nil
}

// Float32 converts the tensor to a new float32 slice. F16, BF16 and F8 widen
// exactly; F64 and integers round to the nearest float32.
func (t Tensor) Float32() ([]float32, error) {
	n, err := t.check()
	if err != nil {
		return nil, err
	}
	out := make([]float32, n)
	b := t.Data
	le := binary.LittleEndian
	switch t.DType {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = dtype.F16ToF32(le.Uint16(b[2*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = dtype.BF16ToF32(le.Uint16(b[2*i:]))
		}
	case F64:
		for i := range out {
			out[i] = float32(math.Float64frombits(le.Uint64(b[8*i:])))
		}
	case F8E5M2:
		for i := range out {
			out[i] = f8e5m2ToF32(b[i])
		}
	case F8E4M3:
		for i := range out {
			out[i] = f8e4m3ToF32(b[i])
		}
	case U8:
		for i := range out {
			out[i] = float32(b[i])
		}
	case I8:
		for i := range out {
			out[i] = float32(int8(b[i]))
		}
	case BOOL:
		for i := range out {
			if b[i] != 0 {
				out[i] = 1
			}
		}
	case I16:
		for i := range out {
			out[i] = float32(int16(le.Uint16(b[2*i:])))
		}
	case U16:
		for i := range out {
			out[i] = float32(le.Uint16(b[2*i:]))
		}
	case I32:
		for i := range out {
			out[i] = float32(int32(le.Uint32(b[4*i:])))
		}
	case U32:
		for i := range out {
			out[i] = float32(le.Uint32(b[4*i:]))
		}
	case I64:
		for i := range out {
			out[i] = float32(int64(le.Uint64(b[8*i:])))
		}
	case U64:
		for i := range out {
			out[i] = float32(le.Uint64(b[8*i:]))
		}
	default:
		return nil, fmt.Errorf("tensor %q: cannot convert %s to float32", t.Name, t.DType)
	}
	return out, nil
}

// Int64 converts an integer (or BOOL) tensor to a new int64 slice. Float
// tensors and U64 values above math.MaxInt64 give an error.
func (t Tensor) Int64() ([]int64, error) {
	n, err := t.check()
	if err != nil {
		return nil, err
	}
	if !t.DType.isInteger() {
		return nil, fmt.Errorf("tensor %q: %s is not an integer dtype", t.Name, t.DType)
	}
	out := make([]int64, n)
	b := t.Data
	le := binary.LittleEndian
	switch t.DType {
	case BOOL:
		for i := range out {
			if b[i] != 0 {
				out[i] = 1
			}
		}
	case U8:
		for i := range out {
			out[i] = int64(b[i])
		}
	case I8:
		for i := range out {
			out[i] = int64(int8(b[i]))
		}
	case I16:
		for i := range out {
			out[i] = int64(int16(le.Uint16(b[2*i:])))
		}
	case U16:
		for i := range out {
			out[i] = int64(le.Uint16(b[2*i:]))
		}
	case I32:
		for i := range out {
			out[i] = int64(int32(le.Uint32(b[4*i:])))
		}
	case U32:
		for i := range out {
			out[i] = int64(le.Uint32(b[4*i:]))
		}
	case I64:
		for i := range out {
			out[i] = int64(le.Uint64(b[8*i:]))
		}
	case U64:
		for i := range out {
			v := le.Uint64(b[8*i:])
			if v > math.MaxInt64 {
				return nil, fmt.Errorf("tensor %q: element %d = %d does not fit in int64", t.Name, i, v)
			}
			out[i] = int64(v)
		}
	}
	return out, nil
}

// numElements multiplies the dims, reporting false on a negative dim or
// when the product overflows int.
func numElements(shape []int) (int, bool) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d != 0 && n > math.MaxInt/d {
			return 0, false
		}
		n *= d
	}
	return n, true
}

// Release lets the kernel take back the memory-mapped pages of the
// tensor's data from this process once it has been read (they stay in the
// page cache): a converter that reads a checkpoint tensor by tensor calls
// it after each, so that its resident memory stays near one tensor instead
// of growing to the whole checkpoint. Data stays valid and is paged in
// again if read. It does nothing for data that is not a file mapping.
func (t Tensor) Release() {
	if t.mapped {
		release(t.Data)
	}
}

// Rows returns the tensor's first n rows (along its first dimension): a
// tensor of shape [n, ...] over the start of the same data, released with
// it by Release. n must be between 0 and Shape[0].
func (t Tensor) Rows(n int) (Tensor, error) {
	if len(t.Shape) == 0 || n < 0 || n > t.Shape[0] {
		return Tensor{}, fmt.Errorf("tensor %q: cannot take %d rows of shape %v", t.Name, n, t.Shape)
	}
	if _, err := t.check(); err != nil {
		return Tensor{}, err
	}
	r := t
	r.Shape = append([]int{n}, t.Shape[1:]...)
	if t.Shape[0] > 0 {
		r.Data = t.Data[:len(t.Data)/t.Shape[0]*n]
	}
	return r, nil
}
