// Package quant decodes rows of ggml tensors (as stored in GGUF files)
// to float32: the plain types, the 32-element block quants and the k-quants
// that llama.cpp's quantizer writes. It exists so that blip2chat can read
// rows of a language model's token embedding table, whatever type
// llama.cpp gave it (q4_k_m files keep token_embd.weight at Q4_K, or Q5_0
// when the row length is not a multiple of 256), with the values llama.cpp
// itself computes: each decoder follows the reference dequantize_row_*
// of ggml-quants.c (v0.4.0), operation for operation.
package quant

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/blip2chat/blip2chat/weights/dtype"
	"github.com/blip2chat/blip2chat/weights/gguf"
)

// Supported reports whether Dequantize decodes type t.
func Supported(t gguf.Type) bool {
	_, ok := decoders[t]
	return ok
}

// Types lists the supported types.
func Types() []gguf.Type {
	return []gguf.Type{gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16, gguf.TypeQ4_0, gguf.TypeQ4_1, gguf.TypeQ5_0,
		gguf.TypeQ5_1, gguf.TypeQ8_0, gguf.TypeQ2_K, gguf.TypeQ3_K, gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K}
}

// decoder decodes one block of b (BlockBytes bytes) into y (BlockSize values).
type decoder func(y []float32, b []byte)

var decoders = map[gguf.Type]decoder{
	gguf.TypeF32:  func(y []float32, b []byte) { y[0] = math.Float32frombits(le.Uint32(b)) },
	gguf.TypeF16:  func(y []float32, b []byte) { y[0] = dtype.F16ToF32(le.Uint16(b)) },
	gguf.TypeBF16: func(y []float32, b []byte) { y[0] = dtype.BF16ToF32(le.Uint16(b)) },
	gguf.TypeQ4_0: q4_0,
	gguf.TypeQ4_1: q4_1,
	gguf.TypeQ5_0: q5_0,
	gguf.TypeQ5_1: q5_1,
	gguf.TypeQ8_0: q8_0,
	gguf.TypeQ2_K: q2K,
	gguf.TypeQ3_K: q3K,
	gguf.TypeQ4_K: q4K,
	gguf.TypeQ5_K: q5K,
	gguf.TypeQ6_K: q6K,
}

var le = binary.LittleEndian

// Dequantize decodes len(dst) values of type t from src, which must hold
// exactly their bytes (len(dst) a multiple of t's block size).
func Dequantize(t gguf.Type, dst []float32, src []byte) error {
	dec, ok := decoders[t]
	if !ok {
		return fmt.Errorf("cannot decode tensor type %v", t)
	}
	bs, bb := t.BlockSize(), t.BlockBytes()
	if len(dst)%bs != 0 {
		return fmt.Errorf("%d values of type %v: not a whole number of %d-value blocks", len(dst), t, bs)
	}
	nb := len(dst) / bs
	if len(src) != nb*bb {
		return fmt.Errorf("%d values of type %v take %d bytes, have %d", len(dst), t, nb*bb, len(src))
	}
	for i := range nb {
		dec(dst[i*bs:(i+1)*bs], src[i*bb:(i+1)*bb])
	}
	return nil
}

func f16(b []byte) float32 { return dtype.F16ToF32(le.Uint16(b)) }

// block_q4_0: f16 d, 16 bytes of nibbles; low nibbles are values 0..15,
// high nibbles 16..31; x = (q-8)*d.
func q4_0(y []float32, b []byte) {
	d := f16(b)
	qs := b[2:18]
	for j := range 16 {
		y[j] = float32(int(qs[j]&0x0F)-8) * d
		y[j+16] = float32(int(qs[j]>>4)-8) * d
	}
}

// block_q4_1: f16 d, f16 m, nibbles; x = q*d + m.
func q4_1(y []float32, b []byte) {
	d, m := f16(b), f16(b[2:])
	qs := b[4:20]
	for j := range 16 {
		y[j] = float32(float32(qs[j]&0x0F)*d) + m
		y[j+16] = float32(float32(qs[j]>>4)*d) + m
	}
}

// block_q5_0: f16 d, 32 high bits, nibbles; x = (q-16)*d.
func q5_0(y []float32, b []byte) {
	d := f16(b)
	qh := le.Uint32(b[2:])
	qs := b[6:22]
	for j := range 16 {
		h0 := byte(qh>>j<<4) & 0x10
		h1 := byte(qh>>(j+12)) & 0x10
		y[j] = float32(int(qs[j]&0x0F|h0)-16) * d
		y[j+16] = float32(int(qs[j]>>4|h1)-16) * d
	}
}

// block_q5_1: f16 d, f16 m, 32 high bits, nibbles; x = q*d + m.
func q5_1(y []float32, b []byte) {
	d, m := f16(b), f16(b[2:])
	qh := le.Uint32(b[4:])
	qs := b[8:24]
	for j := range 16 {
		h0 := byte(qh>>j<<4) & 0x10
		h1 := byte(qh>>(j+12)) & 0x10
		y[j] = float32(float32(qs[j]&0x0F|h0)*d) + m
		y[j+16] = float32(float32(qs[j]>>4|h1)*d) + m
	}
}

func q8_0(y []float32, b []byte) { dtype.DequantizeQ8_0(y, b) }

// block_q2_K: 16 scale bytes (low nibble scale, high nibble min), 64 bytes
// of 2-bit quants, f16 d, f16 dmin; x = d*sc*q - dmin*m per 16 values.
func q2K(y []float32, b []byte) {
	scales, q := b[:16], b[16:80]
	d, dmin := f16(b[80:]), f16(b[82:])
	is, o := 0, 0
	for n := 0; n < 256; n += 128 {
		for shift := 0; shift < 8; shift += 2 {
			for half := range 2 {
				sc := scales[is]
				is++
				dl, ml := d*float32(sc&0xF), dmin*float32(sc>>4)
				for l := range 16 {
					y[o] = float32(dl*float32((q[l+16*half]>>shift)&3)) - ml
					o++
				}
			}
		}
		q = q[32:]
	}
}

// block_q3_K: 32 bytes of high bits, 64 bytes of 2-bit quants, 12 bytes of
// 6-bit scales, f16 d; x = d*(sc-32)*(q - 4 unless the high bit is set).
func q3K(y []float32, b []byte) {
	hm, q, packed := b[:32], b[32:96], b[96:108]
	d := f16(b[108:])
	var sc [16]int8
	// 16 scales of 6 bits: low 4 bits from bytes 0..7 (two per byte),
	// high 2 bits from bytes 8..11.
	for j := range 16 {
		low := packed[j%8] >> (4 * (j / 8)) & 0xF
		high := packed[8+j%4] >> (2 * (j / 4)) & 3
		sc[j] = int8(low | high<<4)
	}
	is, o := 0, 0
	m := byte(1)
	for n := 0; n < 256; n += 128 {
		for shift := 0; shift < 8; shift += 2 {
			for half := range 2 {
				dl := d * float32(int(sc[is])-32)
				is++
				for l := range 16 {
					v := int((q[l+16*half] >> shift) & 3)
					if hm[l+16*half]&m == 0 {
						v -= 4
					}
					y[o] = dl * float32(v)
					o++
				}
			}
			m <<= 1
		}
		q = q[32:]
	}
}

// scaleMinK4 unpacks the j-th 6-bit scale and min of a Q4_K/Q5_K block
// (get_scale_min_k4).
func scaleMinK4(j int, q []byte) (sc, m byte) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0xF | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// block_q4_K: f16 d, f16 dmin, 12 scale bytes, 128 bytes of nibbles; per 32
// values x = d*sc*q - dmin*m.
func q4K(y []float32, b []byte) {
	d, dmin := f16(b), f16(b[2:])
	scales, q := b[4:16], b[16:144]
	o := 0
	for is := 0; is < 8; is += 2 {
		sc, m := scaleMinK4(is, scales)
		d1, m1 := d*float32(sc), dmin*float32(m)
		sc, m = scaleMinK4(is+1, scales)
		d2, m2 := d*float32(sc), dmin*float32(m)
		for l := range 32 {
			y[o+l] = float32(d1*float32(q[l]&0xF)) - m1
			y[o+32+l] = float32(d2*float32(q[l]>>4)) - m2
		}
		q, o = q[32:], o+64
	}
}

// block_q5_K: as Q4_K plus 32 bytes of fifth bits.
func q5K(y []float32, b []byte) {
	d, dmin := f16(b), f16(b[2:])
	scales, qh, ql := b[4:16], b[16:48], b[48:176]
	o := 0
	u1, u2 := byte(1), byte(2)
	for is := 0; is < 8; is += 2 {
		sc, m := scaleMinK4(is, scales)
		d1, m1 := d*float32(sc), dmin*float32(m)
		sc, m = scaleMinK4(is+1, scales)
		d2, m2 := d*float32(sc), dmin*float32(m)
		for l := range 32 {
			v1, v2 := ql[l]&0xF, ql[l]>>4
			if qh[l]&u1 != 0 {
				v1 += 16
			}
			if qh[l]&u2 != 0 {
				v2 += 16
			}
			y[o+l] = float32(d1*float32(v1)) - m1
			y[o+32+l] = float32(d2*float32(v2)) - m2
		}
		ql, o = ql[32:], o+64
		u1, u2 = u1<<2, u2<<2
	}
}

// block_q6_K: 128 bytes of low nibbles, 64 bytes of 2-bit highs, 16 int8
// scales, f16 d; x = d*sc*(q-32) per 16 values.
func q6K(y []float32, b []byte) {
	ql, qh, sc := b[:128], b[128:192], b[192:208]
	d := f16(b[208:])
	for n := 0; n < 2; n++ {
		yy := y[128*n:]
		s := sc[8*n:]
		for l := range 32 {
			is := l / 16
			q1 := int(ql[l]&0xF|(qh[l]>>0&3)<<4) - 32
			q2 := int(ql[l+32]&0xF|(qh[l]>>2&3)<<4) - 32
			q3 := int(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
			q4 := int(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
			yy[l] = d * float32(int8(s[is])) * float32(q1)
			yy[l+32] = d * float32(int8(s[is+2])) * float32(q2)
			yy[l+64] = d * float32(int8(s[is+4])) * float32(q3)
			yy[l+96] = d * float32(int8(s[is+6])) * float32(q4)
		}
		ql, qh = ql[64:], qh[32:]
	}
}
