package kernels

// Integer GEMM for Q8_0 weights (MatMulT with m > 8 rows).
//
// The activations are quantized per 32-block exactly as QuantizeRowQ8 does
// (ggml's quantize_row_q8_0 with the scale kept in f32), once per call, into
// "A blocks" of 40 bytes: 32 int8 values q, the f32 scale dx, and the int32
// correction -128*sum(q). Output (i, c) is then
//
//	acc = 0; for each block b in k order:
//	    s   = sum_l q_x[i,b,l] * q_w[c,b,l]          (int32, exact)
//	    acc = fma(f32(s), f32(dx[i,b] * dw[c,b]), acc)  (f32: one rounded multiply, one fused multiply-add)
//	out = acc (+ bias)
//
// which q8DotRef spells out; the SIMD kernels compute the same operations
// per output in the same order, so every implementation gives bit-identical
// results, whatever the tiling, kc-chunking or thread count.
//
// The weight panel is packed per call (like the f32 panels) in the layout
// the kernel multiplies (q8Layout). The VNNI kernels (AVX-512 VNNI on zmm,
// AVX-VNNI on ymm) take blocks of 8 "quads" x nr columns x 4 bytes -- the
// layout of VPDPBUSD, whose 32-bit lanes each sum 4 byte products --
// followed by the nr f32 scales dw; they multiply unsigned weight bytes
// (q_w + 128, packed with the sign bit flipped) by signed activation bytes,
// and the int32 accumulator starts at the A block's correction
// -128*sum(q_x), so it ends at the exact signed sum s. The AVX2 kernel has
// no such instruction: VPMADDUBSW multiplies unsigned by signed bytes and
// adds pairs into saturating int16, so it takes |q_w| (<= 128) and
// q_x XOR m, where m is the sign mask of q_w (0xff where q_w < 0):
// q_x*q_w = |q_w| * (q_x XOR m) + |q_w|*[q_w < 0], the pair sums lie in
// [-32768, 32512] (never saturating, since |q_x| <= 127), and the int32
// accumulator starts at the panel's per-column correction
// sum(|q_w| where q_w < 0). ggml's sign trick (|q_w| times
// q_x*sign(q_w), VPSIGNB) gives the same sums, but VPSIGNB runs on the
// multiply pipes of Zen 2/3 and the XOR on any.

import (
	"encoding/binary"
	"math"
)

const (
	q8ABytes = 40 // an A block: 32 int8, f32 dx, int32 -128*sum(q)
	q8KB     = 32 // blocks of depth per packed weight panel (1024 of k)
)

// q8Kernel is an int8 GEMM micro-kernel: it computes an mr x nr tile of C
// over nb blocks of depth from mr A-block rows (stride lda bytes) and a packed
// panel b, starting from C when accum (else from zero). Unless pf is nil, it
// also prefetches nb cache lines from pf on, one per block. The driver packs
// panels of kb blocks in the kernel's layout.
type q8Kernel struct {
	name   string
	mr, nr int
	layout q8Layout
	kb     int // blocks of depth per packed panel
	fn     func(nb int, a *byte, lda int, b *byte, c *float32, ldc int, pf *byte, accum bool)
}

// q8Layout is how a packed weight panel holds a block of nr columns.
type q8Layout uint8

const (
	// q8Signed: 8 quads of nr columns x 4 weight bytes, then the nr f32
	// scales (36*nr bytes).
	q8Signed q8Layout = iota
	// q8Unsigned: q8Signed with the weight bytes xor 0x80 (q_w + 128).
	q8Unsigned
	// q8Split: per quad the nr x 4 bytes |q_w|, then their sign masks
	// (0xff where q_w < 0); then the nr f32 scales and the nr int32
	// corrections sum(|q_w| where q_w < 0) (72*nr bytes).
	q8Split
	// q8Pairs (SMMLA, a 2x2 tile of 8-byte products a row pair by a column
	// pair): per group g of 8 bytes of depth, per column pair, the 8 bytes
	// of each column (16 bytes); then per column pair its two f32 scales
	// twice, as the 2x2 tile holds them (40*nr bytes).
	q8Pairs
)

// blockBytes is the size of one packed block of nr columns.
func (l q8Layout) blockBytes(nr int) int {
	switch l {
	case q8Split:
		return 72 * nr
	case q8Pairs:
		return 40 * nr
	}
	return 36 * nr
}

// quantizeA writes x (len%32 == 0) as A blocks into dst.
func quantizeA(dst []byte, x []float32, simd bool) {
	nb := len(x) / q8Block
	dst = dst[:nb*q8ABytes]
	if simd && nb > 0 {
		quantQ8Asm(&dst[0], &x[0], nb)
		return
	}
	var q [q8Block]int8
	for b := 0; b < nb; b++ {
		d := quantBlockQ8(q[:], x[b*q8Block:(b+1)*q8Block])
		blk := dst[b*q8ABytes : (b+1)*q8ABytes]
		var sum int32
		for i, v := range q {
			blk[i] = byte(v)
			sum += int32(v)
		}
		binary.LittleEndian.PutUint32(blk[32:], math.Float32bits(d))
		binary.LittleEndian.PutUint32(blk[36:], uint32(-128*sum))
	}
}

// q8QuantJob quantizes the rows of one MatMulT call, a few rows a task.
type q8QuantJob struct {
	q8a     []byte
	x       []float32
	k, rows int // rows per task
	m       int
	simd    bool
}

func (j *q8QuantJob) run(worker, task int) {
	rb := j.k / q8Block * q8ABytes
	for i := task * j.rows; i < min((task+1)*j.rows, j.m); i++ {
		quantizeA(j.q8a[i*rb:(i+1)*rb], j.x[i*j.k:(i+1)*j.k], j.simd)
	}
}

// prepareQ8A quantizes j.x into the pool's q8a, on the pool when it is
// large.
func (j *matmulJob) prepareQ8A() {
	p := j.p
	rb := j.k / q8Block * q8ABytes
	if cap(p.q8a) < j.m*rb {
		p.q8a = make([]byte, j.m*rb)
	}
	p.q8a = p.q8a[:j.m*rb]
	qj := &p.q8q
	*qj = q8QuantJob{q8a: p.q8a, x: j.x, k: j.k, m: j.m, simd: j.simd}
	// ~64K elements a task: worth a wake-up, small enough to balance.
	qj.rows = max(1, (1<<16)/j.k)
	p.run(qj, ceilDiv(j.m, qj.rows))
	*qj = q8QuantJob{}
}

// packQ8 writes the panel of weight rows [c0, c0+ncol) over blocks
// [b0, b0+kb) into dst (kb*layout.blockBytes(nr) bytes), with the
// assembly when simd. Columns beyond ncol get zero weights, scales and
// corrections.
func packQ8(dst []byte, w *Matrix, c0, ncol, b0, kb, nr int, layout q8Layout, simd bool) {
	rb := w.Cols / q8Block * q8BlockBytes
	bb := layout.blockBytes(nr)
	dst = dst[:kb*bb]
	src := w.Raw[c0*rb+b0*q8BlockBytes:]
	if layout == q8Pairs {
		packQ8Pairs(dst, src, rb, ncol, kb, nr)
		return
	}
	if ncol == nr && simd && hasF16C {
		_ = src[(ncol-1)*rb+kb*q8BlockBytes-1]
		switch layout {
		case q8Split:
			packQ8SplitAsm(&dst[0], &src[0], rb, kb, nr)
		case q8Unsigned:
			packQ8Asm(&dst[0], &src[0], rb, kb, nr, 0x80808080)
		default:
			packQ8Asm(&dst[0], &src[0], rb, kb, nr, 0)
		}
		return
	}
	var flip byte
	if layout == q8Unsigned {
		flip = 0x80
	}
	for b := 0; b < kb; b++ {
		out := dst[b*bb : (b+1)*bb]
		clear(out)
		for c := 0; c < ncol; c++ {
			blk := src[c*rb+b*q8BlockBytes:]
			d := f16ToF32(binary.LittleEndian.Uint16(blk))
			if layout != q8Split {
				for q := 0; q < 8; q++ {
					for l := 0; l < 4; l++ {
						out[(q*nr+c)*4+l] = blk[2+4*q+l] ^ flip
					}
				}
				binary.LittleEndian.PutUint32(out[32*nr+4*c:], math.Float32bits(d))
				continue
			}
			var corr uint32
			for q := 0; q < 8; q++ {
				for l := 0; l < 4; l++ {
					v := int8(blk[2+4*q+l])
					a := byte(v)
					if v < 0 {
						a = byte(-int(v)) // 128 for -128
						out[q*8*nr+4*nr+4*c+l] = 0xff
						corr += uint32(a)
					}
					out[q*8*nr+4*c+l] = a
				}
			}
			binary.LittleEndian.PutUint32(out[64*nr+4*c:], math.Float32bits(d))
			binary.LittleEndian.PutUint32(out[68*nr+4*c:], corr)
		}
		if flip != 0 { // zero weights of the missing columns, flipped
			for q := 0; q < 8; q++ {
				for c := ncol; c < nr; c++ {
					for l := 0; l < 4; l++ {
						out[(q*nr+c)*4+l] = flip
					}
				}
			}
		}
	}
}

// packQ8Pairs writes the q8Pairs panel of ncol <= nr (even) rows of src
// (stride rb) over kb blocks: 8-byte moves.
func packQ8Pairs(dst, src []byte, rb, ncol, kb, nr int) {
	bb := 40 * nr
	clear(dst[:kb*bb])
	for c := 0; c < ncol; c++ {
		row := src[c*rb : c*rb+kb*q8BlockBytes]
		p, h := c/2, c%2
		for b := 0; b < kb; b++ {
			blk := row[b*q8BlockBytes : (b+1)*q8BlockBytes]
			out := dst[b*bb : (b+1)*bb]
			for g := 0; g < 4; g++ {
				binary.LittleEndian.PutUint64(out[(g*nr/2+p)*16+8*h:], binary.LittleEndian.Uint64(blk[2+8*g:]))
			}
			d := math.Float32bits(f16ToF32(binary.LittleEndian.Uint16(blk)))
			binary.LittleEndian.PutUint32(out[32*nr+16*p+4*h:], d)
			binary.LittleEndian.PutUint32(out[32*nr+16*p+8+4*h:], d)
		}
	}
}

// gemmQ8 computes the tile rows [i0,i1) x columns [j0,j1) of dst = A . W^T
// (A: quantized rows in the pool's q8a, stride lda bytes; no bias) with kernel qk on
// one thread.
func gemmQ8(s *scratch, qk *q8Kernel, i0, i1, j0, j1 int, a []byte, lda int, w *Matrix, c []float32, ldc int) {
	mr, nr := qk.mr, qk.nr
	nbk := w.Cols / q8Block
	bb := qk.layout.blockBytes(nr)
	s.qpanel = growBytes(s.qpanel, qk.kb*bb)
	s.qpad = growBytes(s.qpad, maxMR*q8KB*q8ABytes)
	full := i0 + (i1-i0)/mr*mr // rows [full, i1) are a short group
	for b0 := 0; b0 < nbk; b0 += qk.kb {
		kb := min(qk.kb, nbk-b0)
		if full < i1 {
			ap := s.qpad[:mr*kb*q8ABytes]
			for r := 0; r < mr; r++ {
				row := ap[r*kb*q8ABytes : (r+1)*kb*q8ABytes]
				if full+r < i1 {
					copy(row, a[(full+r)*lda+b0*q8ABytes:])
				} else {
					clear(row)
				}
			}
		}
		accum := b0 > 0
		for jr := j0; jr < j1; jr += nr {
			ncol := min(nr, j1-jr)
			bp := s.qpanel[:kb*bb]
			packQ8(bp, w, jr, ncol, b0, kb, nr, qk.layout, true)
			// The weights stream from memory once per call: each kernel
			// call fetches a row of the next panel (and a little beyond)
			// into cache while it computes, so packing it does not wait.
			pf := nextQ8Panel(w, jr+nr, j1, b0, kb, nbk, j0, nr, qk.kb)
			for ir := i0; ir < i1; ir += mr {
				if ir < full && ncol == nr {
					_ = a[(ir+mr-1)*lda+(b0+kb)*q8ABytes-1]
					_ = c[(ir+mr-1)*ldc+jr+nr-1]
					qk.fn(kb, &a[ir*lda+b0*q8ABytes], lda, &bp[0], &c[ir*ldc+jr], ldc, pf.next(), accum)
					continue
				}
				// Edge tile: run on s.ctile, starting from C's corner when
				// accumulating, so the result stays bit-identical.
				mb := min(mr, i1-ir)
				ap, la := &s.qpad[0], kb*q8ABytes
				if ir < full {
					ap, la = &a[ir*lda+b0*q8ABytes], lda
				}
				t := s.ctile[:mr*nr]
				if accum {
					clear(t)
					for r := 0; r < mb; r++ {
						copy(t[r*nr:r*nr+ncol], c[(ir+r)*ldc+jr:])
					}
				}
				qk.fn(kb, ap, la, &bp[0], &t[0], nr, pf.next(), accum)
				for r := 0; r < mb; r++ {
					copy(c[(ir+r)*ldc+jr:(ir+r)*ldc+jr+ncol], t[r*nr:r*nr+ncol])
				}
			}
			pf.rest() // few rows: fewer kernel calls than rows to fetch
		}
	}
}

// q8Prefetch is a range of weight rows to bring into cache: left rows, each
// n bytes from raw[i*rb].
type q8Prefetch struct {
	raw         []byte
	left, rb, n int
}

// nextQ8Panel returns the weight rows the tile's next panel packs: columns
// [jn, jn+nr) over the same blocks, or, after the last panel, the first
// panel over the next blocks.
func nextQ8Panel(w *Matrix, jn, j1, b0, kb, nbk, j0, nr, kbMax int) q8Prefetch {
	if jn >= j1 {
		jn, b0 = j0, b0+kb
		kb = min(kbMax, nbk-b0)
		if kb <= 0 {
			return q8Prefetch{}
		}
	}
	rb := w.Cols / q8Block * q8BlockBytes
	return q8Prefetch{raw: w.Raw[jn*rb+b0*q8BlockBytes:], left: min(nr, j1-jn), rb: rb, n: kb * q8BlockBytes}
}

// next returns the start of the next row to fetch (nil when none is left).
func (p *q8Prefetch) next() *byte {
	if p.left <= 0 {
		return nil
	}
	r := &p.raw[0]
	if p.left--; p.left > 0 {
		p.raw = p.raw[p.rb:]
	}
	return r
}

// rest prefetches the rows left.
func (p *q8Prefetch) rest() {
	for p.left > 0 {
		prefetchAsm(p.next(), p.n)
	}
}

// runQ8Portable computes a tile with the reference arithmetic: each output
// equals q8DotRef of its A row and weight row, plus bias. Two rows by four
// columns share their loads (q8Dot2x4).
func (j *matmulJob) runQ8Portable(i0, i1, j0, j1 int) {
	k, n, w := j.k, j.n, j.w
	ra := k / q8Block * q8ABytes
	rw := k / q8Block * q8BlockBytes
	row := func(i int) []byte { return j.p.q8a[i*ra : (i+1)*ra] }
	wrow := func(c int) []byte { return w.Raw[c*rw : (c+1)*rw] }
	out := func(i, c int, v float32) {
		if j.bias != nil {
			v += j.bias[c]
		}
		j.dst[i*n+c] = v
	}
	for c := j0; c < j1; c += 4 {
		if c+4 > j1 {
			for ; c < j1; c++ {
				for i := i0; i < i1; i++ {
					out(i, c, q8DotRef(row(i), wrow(c)))
				}
			}
			break
		}
		i := i0
		for ; i+2 <= i1; i += 2 {
			v := q8Dot2x4(row(i), row(i+1), wrow(c), wrow(c+1), wrow(c+2), wrow(c+3))
			for r := 0; r < 8; r++ {
				out(i+r/4, c+r%4, v[r])
			}
		}
		if i < i1 {
			for r := 0; r < 4; r++ {
				out(i, c+r, q8DotRef(row(i), wrow(c+r)))
			}
		}
	}
}

// q8Dot2x4 is q8DotRef for A rows a0, a1 and weight rows w0..w3 (results
// a0.w0, a0.w1, a0.w2, a0.w3, a1.w0, ...), bit-identical to it.
func q8Dot2x4(a0, a1, w0, w1, w2, w3 []byte) [8]float32 {
	nb := len(a0) / q8ABytes
	a1 = a1[:len(a0)]
	rw := nb * q8BlockBytes
	w0, w1, w2, w3 = w0[:rw], w1[:rw], w2[:rw], w3[:rw]
	var acc [8]float32
	for b := 0; b < nb; b++ {
		x0 := a0[b*q8ABytes : b*q8ABytes+q8ABytes]
		x1 := a1[b*q8ABytes : b*q8ABytes+q8ABytes]
		o := b * q8BlockBytes
		q0 := w0[o : o+q8BlockBytes]
		q1 := w1[o : o+q8BlockBytes]
		q2 := w2[o : o+q8BlockBytes]
		q3 := w3[o : o+q8BlockBytes]
		// Both rows in one int64, x0 + x1<<32, so one multiply does two
		// products: s = sum(x0*c) + sum(x1*c)<<32, exact (|sums| < 2^20).
		var p0, p1, p2, p3 int64
		for l := 2; l < q8BlockBytes; l++ {
			u := int64(int8(x0[l-2])) + int64(int8(x1[l-2]))<<32
			p0 += u * int64(int8(q0[l]))
			p1 += u * int64(int8(q1[l]))
			p2 += u * int64(int8(q2[l]))
			p3 += u * int64(int8(q3[l]))
		}
		s00, s01, s02, s03 := int32(p0), int32(p1), int32(p2), int32(p3)
		s10, s11, s12, s13 := int32((p0-int64(s00))>>32), int32((p1-int64(s01))>>32), int32((p2-int64(s02))>>32), int32((p3-int64(s03))>>32)
		dx0 := math.Float32frombits(binary.LittleEndian.Uint32(x0[32:]))
		dx1 := math.Float32frombits(binary.LittleEndian.Uint32(x1[32:]))
		d0 := f16ToF32(binary.LittleEndian.Uint16(q0))
		d1 := f16ToF32(binary.LittleEndian.Uint16(q1))
		d2 := f16ToF32(binary.LittleEndian.Uint16(q2))
		d3 := f16ToF32(binary.LittleEndian.Uint16(q3))
		acc[0] = fma32(float32(s00), float32(dx0*d0), acc[0])
		acc[1] = fma32(float32(s01), float32(dx0*d1), acc[1])
		acc[2] = fma32(float32(s02), float32(dx0*d2), acc[2])
		acc[3] = fma32(float32(s03), float32(dx0*d3), acc[3])
		acc[4] = fma32(float32(s10), float32(dx1*d0), acc[4])
		acc[5] = fma32(float32(s11), float32(dx1*d1), acc[5])
		acc[6] = fma32(float32(s12), float32(dx1*d2), acc[6])
		acc[7] = fma32(float32(s13), float32(dx1*d3), acc[7])
	}
	return acc
}

// q8DotRef is the Q8_0 GEMM arithmetic for one output: a is a row of A
// blocks, w a row of block_q8_0.
func q8DotRef(a, w []byte) float32 {
	nb := len(a) / q8ABytes
	w = w[:nb*q8BlockBytes]
	var acc float32
	for b := 0; b < nb; b++ {
		ab := a[b*q8ABytes : (b+1)*q8ABytes]
		wb := w[b*q8BlockBytes : (b+1)*q8BlockBytes]
		qs := wb[2:34]
		var s int32
		for l := 0; l < q8Block; l++ {
			s += int32(int8(ab[l])) * int32(int8(qs[l]))
		}
		dx := math.Float32frombits(binary.LittleEndian.Uint32(ab[32:]))
		d := float32(dx * f16ToF32(binary.LittleEndian.Uint16(wb)))
		acc = fma32(float32(s), d, acc)
	}
	return acc
}

// fma32 is the float32 fused multiply-add a*b+c with one rounding, as
// VFMADD does. a*b is exact in float64; the float64 sum is rounded to odd
// (so that the final rounding to float32 is not a double rounding).
func fma32(a, b, c float32) float32 {
	p := float64(a) * float64(b)
	cc := float64(c)
	s := p + cc
	if math.IsInf(s, 0) || math.IsNaN(s) {
		return float32(s)
	}
	// TwoSum: the exact error of s (p and cc are exact doubles).
	bv := s - p
	e := (p - (s - bv)) + (cc - bv)
	if e != 0 {
		bits := math.Float64bits(s)
		if bits&1 == 0 {
			if (e > 0) == (s > 0) {
				bits++
			} else {
				bits--
			}
			s = math.Float64frombits(bits)
		}
	}
	return float32(s)
}

func growBytes(s []byte, n int) []byte {
	if cap(s) < n {
		return make([]byte, n)
	}
	return s[:n]
}
