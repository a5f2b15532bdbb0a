package gguf

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/blip2chat/blip2chat/weights/dtype"
)

// Encode converts row-major float32 values to the bytes of a tensor of type
// typ: F32, F16, BF16 (both rounded to nearest even) or Q8_0 (ggml's
// reference quantization; len(vals) must be a multiple of 32, which holds
// when the row length is).
func Encode(typ Type, vals []float32) ([]byte, error) {
	switch typ {
	case TypeF32:
		b := make([]byte, 4*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		return b, nil
	case TypeF16:
		b := make([]byte, 2*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint16(b[2*i:], dtype.F32ToF16(v))
		}
		return b, nil
	case TypeBF16:
		b := make([]byte, 2*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint16(b[2*i:], dtype.F32ToBF16(v))
		}
		return b, nil
	case TypeQ8_0:
		if len(vals)%dtype.Q8_0BlockSize != 0 {
			return nil, fmt.Errorf("q8_0 needs a multiple of %d values, have %d", dtype.Q8_0BlockSize, len(vals))
		}
		b := make([]byte, len(vals)/dtype.Q8_0BlockSize*dtype.Q8_0BlockBytes)
		dtype.QuantizeQ8_0(b, vals)
		return b, nil
	}
	return nil, fmt.Errorf("cannot encode type %v", typ)
}
