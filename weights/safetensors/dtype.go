package safetensors

import (
	"math"

	"github.com/blip2chat/blip2chat/weights/dtype"
)

// DType is a safetensors element type, spelled as in the file header.
type DType string

// The element types of the safetensors format.
const (
	BOOL   DType = "BOOL"
	U8     DType = "U8"
	I8     DType = "I8"
	F8E5M2 DType = "F8_E5M2"
	F8E4M3 DType = "F8_E4M3"
	I16    DType = "I16"
	U16    DType = "U16"
	F16    DType = "F16"
	BF16   DType = "BF16"
	I32    DType = "I32"
	U32    DType = "U32"
	F32    DType = "F32"
	F64    DType = "F64"
	I64    DType = "I64"
	U64    DType = "U64"
)

// dtypeRank is the position of each dtype in the reference implementation's
// Dtype enum, which orders by alignment; the writer sorts by it (largest
// first) so every tensor is naturally aligned, exactly as the reference does.
var dtypeRank = map[DType]int{
	BOOL: 0, U8: 1, I8: 2, F8E5M2: 3, F8E4M3: 4, I16: 5, U16: 6, F16: 7,
	BF16: 8, I32: 9, U32: 10, F32: 11, F64: 12, I64: 13, U64: 14,
}

// Size is the size of one element in bytes, or 0 for an unknown dtype.
func (d DType) Size() int {
	switch d {
	case BOOL, U8, I8, F8E5M2, F8E4M3:
		return 1
	case I16, U16, F16, BF16:
		return 2
	case I32, U32, F32:
		return 4
	case F64, I64, U64:
		return 8
	}
	return 0
}

func (d DType) isInteger() bool {
	switch d {
	case BOOL, U8, I8, I16, U16, I32, U32, I64, U64:
		return true
	}
	return false
}

// f8e5m2ToF32: E5M2 is the top byte of an IEEE binary16.
func f8e5m2ToF32(b uint8) float32 {
	return dtype.F16ToF32(uint16(b) << 8)
}

// f8e4m3ToF32 decodes the "fn" variant used by torch.float8_e4m3fn: bias 7,
// no infinities, S.1111.111 is NaN.
func f8e4m3ToF32(b uint8) float32 {
	exp := int(b>>3) & 0xf
	mant := int(b & 7)
	var v float64
	switch {
	case exp == 0xf && mant == 7:
		v = math.NaN()
	case exp == 0:
		v = math.Ldexp(float64(mant), -9) // subnormal: mant/8 * 2^-6
	default:
		v = math.Ldexp(float64(8+mant), exp-10) // (1 + mant/8) * 2^(exp-7)
	}
	if b&0x80 != 0 {
		v = -v
	}
	return float32(v)
}
