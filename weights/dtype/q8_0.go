package dtype

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Q8_0 is ggml's block_q8_0: each block of Q8_0BlockSize consecutive values
// is stored as a little-endian F16 scale d followed by Q8_0BlockSize int8
// quants q, and decodes to q[j]*d.
const (
	Q8_0BlockSize  = 32 // elements per block
	Q8_0BlockBytes = 34 // f16 scale d + 32 int8, ggml block_q8_0 layout
)

// QuantizeQ8_0 encodes src into dst, which must hold
// len(src)/Q8_0BlockSize*Q8_0BlockBytes bytes. len(src) must be a multiple
// of Q8_0BlockSize. Wrong lengths are programming errors and panic.
//
// The result is bit-identical to ggml's quantize_row_q8_0_ref (the
// reference used to create model files): per block amax = max|x|,
// d = amax/127 in float32, id = 1/d (0 when d is 0), q = roundf(x*id) with
// ties away from zero, and d is stored as F16. Note that q is computed with
// the float32 d but decoded with the F16-rounded d.
//
// Inputs with NaN or infinity have no meaningful encoding; they follow the
// C code where it is defined (its MAX macro lets a NaN reset the running
// maximum, a NaN scale is stored as 0x7e00) and give q = 0 where C leaves the
// float -> int8 conversion undefined.
func QuantizeQ8_0(dst []byte, src []float32) {
	if len(src)%Q8_0BlockSize != 0 {
		panic(fmt.Sprintf("dtype.QuantizeQ8_0: %d values is not a multiple of %d", len(src), Q8_0BlockSize))
	}
	nb := len(src) / Q8_0BlockSize
	if len(dst) < nb*Q8_0BlockBytes {
		panic(fmt.Sprintf("dtype.QuantizeQ8_0: dst has %d bytes, need %d", len(dst), nb*Q8_0BlockBytes))
	}
	for i := range nb {
		x := src[i*Q8_0BlockSize : (i+1)*Q8_0BlockSize]
		y := dst[i*Q8_0BlockBytes : (i+1)*Q8_0BlockBytes]

		var amax float32
		for _, v := range x {
			// Same comparison as C's MAX(amax, fabsf(v)), NaN quirk included.
			if a := abs32(v); !(amax > a) {
				amax = a
			}
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		binary.LittleEndian.PutUint16(y, f32ToF16ggml(d))
		for j, v := range x {
			y[2+j] = byte(roundToInt8(v * id))
		}
	}
}

// DequantizeQ8_0 decodes Q8_0 blocks from src into dst:
// dst[k] = float32(q[k]) * F16ToF32(d) for each block, like ggml's
// dequantize_row_q8_0. len(src) must be a multiple of Q8_0BlockBytes and dst
// must hold len(src)/Q8_0BlockBytes*Q8_0BlockSize values; wrong lengths
// panic.
func DequantizeQ8_0(dst []float32, src []byte) {
	if len(src)%Q8_0BlockBytes != 0 {
		panic(fmt.Sprintf("dtype.DequantizeQ8_0: %d bytes is not a multiple of %d", len(src), Q8_0BlockBytes))
	}
	nb := len(src) / Q8_0BlockBytes
	if len(dst) < nb*Q8_0BlockSize {
		panic(fmt.Sprintf("dtype.DequantizeQ8_0: dst has %d values, need %d", len(dst), nb*Q8_0BlockSize))
	}
	for i := range nb {
		b := src[i*Q8_0BlockBytes : (i+1)*Q8_0BlockBytes]
		y := dst[i*Q8_0BlockSize : (i+1)*Q8_0BlockSize]
		d := F16ToF32(binary.LittleEndian.Uint16(b))
		for j := range y {
			y[j] = float32(int8(b[2+j])) * d
		}
	}
}

func abs32(v float32) float32 {
	return math.Float32frombits(math.Float32bits(v) &^ (1 << 31))
}

// roundToInt8 is C's roundf (half away from zero) followed by the float ->
// int8 conversion. For finite inputs of a Q8_0 block |v| <= 127.5 always
// holds; anything else (NaN, inf) is undefined in C and gives 0 here, which
// is what x86's scalar cvttss2si path produces after truncation to 8 bits.
func roundToInt8(v float32) int8 {
	r := math.Round(float64(v))
	if !(r >= -128 && r <= 127) {
		return 0
	}
	return int8(r)
}

// f32ToF16ggml is ggml's GGML_FP32_TO_FP16: identical to F32ToF16 (round to
// nearest even, overflow to inf) except that every NaN becomes 0x7e00 with
// the input's sign.
func f32ToF16ggml(f float32) uint16 {
	if f != f {
		return uint16(math.Float32bits(f)>>16)&0x8000 | 0x7e00
	}
	return F32ToF16(f)
}
