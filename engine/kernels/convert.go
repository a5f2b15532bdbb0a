package kernels

import (
	"encoding/binary"
	"math"
)

// f16ToF32 widens an IEEE half (exact; NaN payloads kept as with VCVTPH2PS).
func f16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // inf, NaN (quiet bit set like the hardware)
		if man != 0 {
			return math.Float32frombits(sign | 0x7fc00000 | man<<13)
		}
		return math.Float32frombits(sign | 0x7f800000)
	case exp == 0:
		if man == 0 {
			return math.Float32frombits(sign)
		}
		// subnormal: man * 2^-24
		f := float32(man) * (1.0 / (1 << 24))
		return math.Float32frombits(sign | math.Float32bits(f))
	}
	return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
}

// cvtF16 widens len(dst) little-endian halves from src.
func cvtF16(dst []float32, src []byte, simd bool) {
	n := len(dst)
	src = src[:2*n]
	i := 0
	if simd && hasF16C && n >= 8 {
		i = n &^ 7
		cvtF16Asm(&dst[0], &src[0], i)
	}
	for ; i < n; i++ {
		dst[i] = f16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

// dequantQ8 expands len(dst)/32 ggml block_q8_0 blocks: q * f16(d), exact in
// f32 (the product of an 8-bit and an 11-bit significand).
func dequantQ8(dst []float32, src []byte, simd bool) {
	nb := len(dst) / q8Block
	src = src[:nb*q8BlockBytes]
	if simd && hasF16C && nb > 0 {
		dequantQ8Asm(&dst[0], &src[0], nb)
		return
	}
	for b := 0; b < nb; b++ {
		blk := src[b*q8BlockBytes : (b+1)*q8BlockBytes]
		d := f16ToF32(binary.LittleEndian.Uint16(blk))
		out := dst[b*q8Block : (b+1)*q8Block]
		for i := range out {
			out[i] = float32(int8(blk[2+i])) * d
		}
	}
}

// QuantizeRowQ8 quantizes x (len%32 == 0) to int8 per 32-block the way ggml's
// quantize_row_q8_0_ref does: d = amax/127, q = round(x * (1/d)) half away
// from zero; the scale is kept in f32 (ggml rounds it to f16). |q| <= 127,
// which the integer dot product relies on.
func QuantizeRowQ8(q []int8, d []float32, x []float32) {
	nb := len(x) / q8Block
	q = q[:nb*q8Block]
	d = d[:nb]
	for b := 0; b < nb; b++ {
		d[b] = quantBlockQ8(q[b*q8Block:(b+1)*q8Block], x[b*q8Block:(b+1)*q8Block])
	}
}

// quantBlockQ8 quantizes one block of 32 values into q and returns its scale.
func quantBlockQ8(q []int8, xs []float32) float32 {
	q = q[:q8Block]
	xs = xs[:q8Block]
	var amax float32
	for _, v := range xs {
		amax = max(amax, abs32(v))
	}
	dd := amax / 127
	var id float32
	if dd != 0 {
		id = 1 / dd
	}
	for i, v := range xs {
		r := math.Round(float64(float32(v * id)))
		// Only a subnormal scale (1/dd overflows) or a NaN gets here out of
		// range; make those cases well defined (Go's conversion is not).
		switch {
		case r > 127:
			r = 127
		case r < -127:
			r = -127
		case r != r:
			r = 0
		}
		q[i] = int8(r)
	}
	return dd
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// dotF32 is the GEMV dot product. The SIMD version sums 8-lane partials
// (rel. difference to dotGo bounded by ~k*2^-24 of sum|x*w|).
func dotF32(x, w []float32, simd bool) float32 {
	k := len(x)
	w = w[:k]
	if simd && k >= 8 {
		p := k &^ 7
		s := sdotAsm(&x[0], &w[0], p)
		for ; p < k; p++ {
			s += x[p] * w[p]
		}
		return s
	}
	return dotGo(x, w)
}

// dotF16 is dotF32 with the weight row in f16.
func dotF16(x []float32, w []byte, simd bool) float32 {
	k := len(x)
	w = w[:2*k]
	if simd && hasF16C && k >= 8 {
		p := k &^ 7
		s := hdotAsm(&x[0], &w[0], p)
		for ; p < k; p++ {
			s += x[p] * f16ToF32(binary.LittleEndian.Uint16(w[2*p:]))
		}
		return s
	}
	var s float32
	for p, v := range x {
		s += v * f16ToF32(binary.LittleEndian.Uint16(w[2*p:]))
	}
	return s
}

// dotF16Tile sets dst[r*ldd+c] to dotF16 of row r of x (rows k apart) with
// f16 weight row c of w (rows k apart), for r < rows <= 8, c < cols; each
// result is bit-identical to dotF16's. The SIMD path multiplies tiles of
// rows x (16/(rows+1)) products, each weight widened once for all rows and
// each chunk of x read once for all columns of the tile.
func dotF16Tile(dst []float32, ldd int, x []float32, rows int, w []byte, cols int, simd bool) {
	k := len(w) / 2 / max(cols, 1)
	if simd && hasF16DotTile && hasF16C && k >= 8 && rows <= 8 {
		p := k &^ 7
		var out [64]float32
		_ = x[rows*k-1]
		for c0, cmax := 0, 16/(rows+1); c0 < cols; c0 += cmax {
			g := min(cmax, cols-c0)
			hdotTileAsm(&x[0], 4*k, &w[2*k*c0], 2*k, p, rows, g, &out[0])
			for r := 0; r < rows; r++ {
				xr := x[r*k : (r+1)*k]
				for c := 0; c < g; c++ {
					s := out[8*r+c]
					wc := w[2*k*(c0+c) : 2*k*(c0+c+1)]
					for q := p; q < k; q++ { // as dotF16
						s += xr[q] * f16ToF32(binary.LittleEndian.Uint16(wc[2*q:]))
					}
					dst[r*ldd+c0+c] = s
				}
			}
		}
		return
	}
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			dst[r*ldd+c] = dotF16(x[r*k:(r+1)*k], w[2*k*c:2*k*(c+1)], simd)
		}
	}
}

// dotQ8Rows sets dst[r*ldd] to dotQ8 of activation row r (rows of xq k
// apart, of xd nb apart, nb = len(w)/34) with the weight row w, for r <
// rows <= 8; each result is bit-identical to dotQ8's. The SIMD path
// multiplies all rows in one pass over w, with the scales interleaved in
// xdt (xdt[8b+r] = xd[r*nb+b], see interleaveQ8Scales).
func dotQ8Rows(dst []float32, ldd int, xq []int8, xd, xdt []float32, w []byte, rows int, simd bool) {
	nb := len(w) / q8BlockBytes
	k := nb * q8Block
	if simd && hasQ8DotRows && hasF16C && nb > 0 && rows > 1 {
		var out [8]float32
		_ = xq[rows*k-1]
		_ = xdt[8*nb-1]
		q8dotRowsAsm(&xq[0], k, &xdt[0], &w[0], nb, rows, &out[0])
		for i, v := range out[:rows] {
			dst[i*ldd] = v
		}
		return
	}
	for r := 0; r < rows; r++ {
		dst[r*ldd] = dotQ8(xq[r*k:(r+1)*k], xd[r*nb:(r+1)*nb], w, simd)
	}
}

// interleaveQ8Scales writes the block scales of rows <= 8 rows (xd, nb a
// row) to xdt[8b+r], zero beyond rows.
func interleaveQ8Scales(xdt, xd []float32, nb, rows int) {
	xdt = xdt[:8*nb]
	clear(xdt)
	for r := 0; r < rows; r++ {
		for b, d := range xd[r*nb : (r+1)*nb] {
			xdt[8*b+r] = d
		}
	}
}

// dotQ8 is the dot product of a quantized activation row (xq, per-block f32
// scales xd) with a block_q8_0 weight row. Per block b and lane l (bytes
// 4l..4l+3) the integer sum s is exact; acc[l] += f32(s) * (xd[b]*wd[b]) is
// done as a rounded multiply then add, and the 8 lanes are summed as
// ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)): exactly what the AVX2 kernel does,
// so both paths give bit-identical results.
func dotQ8(xq []int8, xd []float32, w []byte, simd bool) float32 {
	nb := len(xd)
	if simd && hasF16C && nb > 0 {
		_ = xq[nb*q8Block-1]
		_ = w[nb*q8BlockBytes-1]
		return q8dotAsm(&xq[0], &xd[0], &w[0], nb)
	}
	var acc [8]float32
	for b := 0; b < nb; b++ {
		blk := w[b*q8BlockBytes : (b+1)*q8BlockBytes]
		d := float32(xd[b] * f16ToF32(binary.LittleEndian.Uint16(blk)))
		qs := blk[2:34]
		xs := xq[b*q8Block : (b+1)*q8Block]
		for l := 0; l < 8; l++ {
			s := int32(xs[4*l])*int32(int8(qs[4*l])) + int32(xs[4*l+1])*int32(int8(qs[4*l+1])) +
				int32(xs[4*l+2])*int32(int8(qs[4*l+2])) + int32(xs[4*l+3])*int32(int8(qs[4*l+3]))
			acc[l] += float32(float32(s) * d)
		}
	}
	return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
}
