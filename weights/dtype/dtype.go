// Package dtype converts between float32 and the narrow number formats found
// in model files: IEEE half precision (F16), bfloat16 (BF16) and ggml's Q8_0
// block quantization.
//
// The conversions are bit-exact with the reference implementations that
// produce and consume checkpoints: numpy's float16 cast (which equals
// torch's .half() for every non-NaN value), round-to-nearest-even for BF16,
// and ggml's quantize_row_q8_0_ref / dequantize_row_q8_0.
package dtype

import "math"

// F16ToF32 returns the float32 whose value equals the IEEE 754 binary16 value
// with bits h. Every half is exactly representable, so this is lossless;
// NaN payloads are kept (shifted into the high bits of the float32
// significand) so F32ToF16(F16ToF32(h)) == h for all h.
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp != 0: // normal: rebias 15 -> 127
		return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
	case man == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal half: man * 2^-24 is a normal float32. Shift the leading one
	// up to the implicit position, lowering the exponent once per shift.
	e := uint32(113) // biased float32 exponent of 2^-14
	for man&0x400 == 0 {
		man <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (man&0x3ff)<<13)
}

// F32ToF16 rounds f to the nearest IEEE 754 binary16 value, ties to even,
// exactly like numpy's float32 -> float16 cast: results below half the
// smallest subnormal become signed zero, results beyond the largest finite
// half (65504, with ties going up) become signed infinity, and a NaN stays a
// NaN with its sign and the top 10 bits of its payload (a payload that would
// become zero is set to 1 so it cannot turn into infinity).
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	man := b & 0x7fffff

	if exp == 0xff {
		if man == 0 {
			return sign | 0x7c00
		}
		p := uint16(man >> 13)
		if p == 0 {
			p = 1
		}
		return sign | 0x7c00 | p
	}

	// Unbiased exponent; half's normal range is -14..15.
	e := exp - 127
	if e > 15 {
		return sign | 0x7c00
	}
	if e >= -14 {
		// Normal half: keep 10 of 23 significand bits, round the 13 dropped.
		h := uint32(e+15)<<10 | man>>13
		h += roundBit(man, 13)
		// A carry out of the significand correctly bumps the exponent, and
		// out of exponent 30 it correctly produces infinity (0x7c00).
		return sign | uint16(h)
	}
	if e < -25 {
		// Below 2^-25 (half of the smallest subnormal): always rounds to 0.
		// Also covers float32 zeros and subnormals.
		return sign
	}
	// Subnormal half: the value is m * 2^(e-23) with m = 2^23|man, and the
	// half's unit is 2^-24, so the half significand is m >> (-e-1) rounded.
	m := man | 0x800000
	s := uint(-e - 1) // 14..24 for e in -25..-15
	h := m >> s
	h += roundBit(m, s)
	// If rounding carries into bit 10 the result is the smallest normal,
	// which is exactly the right encoding.
	return sign | uint16(h)
}

// roundBit returns 1 when dropping the low s bits of m must round up under
// round-to-nearest-even, else 0.
func roundBit(m uint32, s uint) uint32 {
	half := uint32(1) << (s - 1)
	rest := m & (half<<1 - 1)
	if rest > half || (rest == half && (m>>s)&1 == 1) {
		return 1
	}
	return 0
}

// BF16ToF32 returns the float32 with the bfloat16 bits b (the high half of a
// float32); it is exact.
func BF16ToF32(b uint16) float32 {
	return math.Float32frombits(uint32(b) << 16)
}

// F32ToBF16 rounds f to the nearest bfloat16, ties to even; overflow becomes
// infinity. A NaN stays a NaN: its sign and top payload bits are kept and the
// quiet bit is set (as ggml does), so rounding can never turn it into
// infinity or zero.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}
