package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// Tolerances (stated bounds; see the report in kernels.go's doc):
//   - f32/f16 products (both paths, vs float64): |got-exact| <= tolDot * sum|x_p w_p|
//   - Q8_0 (GEMV m <= 8 and integer GEMM m > 8): SIMD and portable
//     bit-identical; vs the float64 product of the quantized operands:
//     tolDot * sum|x_p w_p| (the GEMM's bound is (k/32+1) * 2^-24 of it,
//     below tolDot for k <= 2048)
//   - attention (|V| <= 1, scaled scores up to ~10): |got-exact| <= 1e-5
//   - layer norm, softmax: SIMD vs portable 2e-6 relative to the row's scale
//   - GELU: SIMD vs math.Erf: |d| <= 3e-7*|x| + 2 ulp(result)
const tolDot = 4e-6

func randF32(r *rand.Rand, n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = (r.Float32()*2 - 1) * scale
	}
	return v
}

// randF16 returns n halves in about [-4, 4] (exponents 2^-6..2^1), LE bytes.
func randF16(r *rand.Rand, n int) []byte {
	b := make([]byte, 2*n)
	for i := 0; i < n; i++ {
		h := uint16(r.IntN(2))<<15 | uint16(9+r.IntN(8))<<10 | uint16(r.IntN(1024))
		binary.LittleEndian.PutUint16(b[2*i:], h)
	}
	return b
}

// randQ8 returns rows of block_q8_0 with all int8 values, -128 included.
func randQ8(r *rand.Rand, rows, cols int) []byte {
	nb := cols / 32
	b := make([]byte, rows*nb*34)
	for i := 0; i < rows*nb; i++ {
		blk := b[i*34:]
		h := uint16(5+r.IntN(4))<<10 | uint16(r.IntN(1024)) // 2^-10..2^-7
		binary.LittleEndian.PutUint16(blk, h)
		for j := 0; j < 32; j++ {
			blk[2+j] = byte(r.IntN(256))
		}
	}
	return b
}

func makeMatrix(r *rand.Rand, t DType, rows, cols int) *Matrix {
	m := &Matrix{Type: t, Rows: rows, Cols: cols}
	switch t {
	case F32:
		m.F32 = randF32(r, rows*cols, 1)
	case F16:
		m.Raw = randF16(r, rows*cols)
	case Q8_0:
		m.Raw = randQ8(r, rows, cols)
	}
	return m
}

// denseF64 returns w as float64 (exact widening).
func denseF64(w *Matrix) []float64 {
	out := make([]float64, w.Rows*w.Cols)
	buf := make([]float32, w.Cols)
	for r := 0; r < w.Rows; r++ {
		row := weightRowF32(w, r, buf, false)
		for c, v := range row {
			out[r*w.Cols+c] = float64(v)
		}
	}
	return out
}

// naiveMatMulT returns the float64 product and sum|x*w| per output.
func naiveMatMulT(x []float64, m int, w []float64, n, k int, bias []float32) (ref, mag []float64) {
	ref = make([]float64, m*n)
	mag = make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, a float64
			for p := 0; p < k; p++ {
				t := x[i*k+p] * w[j*k+p]
				s += t
				a += math.Abs(t)
			}
			if bias != nil {
				s += float64(bias[j])
				a += math.Abs(float64(bias[j]))
			}
			ref[i*n+j], mag[i*n+j] = s, a
		}
	}
	return
}

func toF64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// quantizedX returns the activations as the Q8_0 paths see them.
func quantizedX(x []float32, m, k int) []float64 {
	q := make([]int8, k)
	d := make([]float32, k/32)
	out := make([]float64, m*k)
	for i := 0; i < m; i++ {
		QuantizeRowQ8(q, d, x[i*k:i*k+k])
		for p := 0; p < k; p++ {
			out[i*k+p] = float64(q[p]) * float64(d[p/32])
		}
	}
	return out
}

// withSIMD runs f with tp a pool of the assembly (on, where the CPU has
// it) or of the portable code, with the machine's micro-kernels.
func withSIMD(t testing.TB, on bool, f func()) {
	t.Helper()
	variant{"", impl{simd: on && hasSIMD, kern: machine.kern, q8: machine.q8}}.do(f)
}

// variant is one implementation of the kernels: portable, or SIMD with
// a given micro-kernel.
type variant struct {
	name string
	impl
}

// q8only reports whether v differs from another variant only in its Q8_0
// kernel (so only Q8_0 products need it).
func (v variant) q8only() bool { return strings.HasPrefix(v.name, "q8-") }

// variants are the portable code, each f32 micro-kernel this CPU runs (with
// the default Q8_0 kernel) and each other Q8_0 kernel (with the default f32
// one).
func variants() []variant {
	v := []variant{{"portable", impl{false, machine.kern, machine.q8}}}
	f32, q8 := simdKernels()
	for _, k := range f32 {
		v = append(v, variant{k.name, impl{true, k, machine.q8}})
	}
	for _, q := range q8 {
		if q.name != machine.q8.name {
			v = append(v, variant{"q8-" + q.name, impl{true, machine.kern, q}})
		}
	}
	return v
}

// do runs f with tp a pool (of tp's threads) of v's implementation.
func (v variant) do(f func()) {
	prev := tp
	tp = newPoolImpl(prev.Threads(), v.impl)
	defer func() { tp.Close(); tp = prev }()
	f()
}

type mmCase struct {
	t       DType
	m, k, n int
}

// mmCases are the MatMulT shapes: every path and edge at small sizes, and
// real ones up to 12M multiply-adds (2M with -short, which the arm64 run
// under emulation uses).
func mmCases() []mmCase {
	limit := 12_000_000
	if testing.Short() {
		limit = 2_000_000
	}
	var cs []mmCase
	for _, t := range []DType{F32, F16, Q8_0} {
		for _, m := range []int{1, 2, 3, 5, 8, 9, 17, 32, 257} {
			for _, k := range []int{64, 88, 96, 1408, 1412} {
				if t == Q8_0 && k%32 != 0 {
					continue
				}
				for _, n := range []int{1, 5, 17, 88, 264, 6144} {
					if m*k*n > limit && !(m <= 3 && n == 6144 && m*k*n <= 6*limit) {
						continue
					}
					cs = append(cs, mmCase{t, m, k, n})
				}
			}
		}
	}
	return cs
}

func TestMatMulT(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range mmCases() {
		name := fmt.Sprintf("%v/m%d_k%d_n%d", c.t, c.m, c.k, c.n)
		t.Run(name, func(t *testing.T) {
			w := makeMatrix(r, c.t, c.n, c.k)
			x := randF32(r, c.m*c.k, 2)
			var bias []float32
			if c.n%2 == 1 {
				bias = randF32(r, c.n, 1)
			}
			xf := toF64(x)
			if c.t == Q8_0 {
				xf = quantizedX(x, c.m, c.k)
			}
			ref, mag := naiveMatMulT(xf, c.m, denseF64(w), c.n, c.k, bias)
			var got [][]float32
			for _, v := range variants() {
				if v.q8only() && c.t != Q8_0 {
					continue
				}
				dst := make([]float32, c.m*c.n+3)
				dst[c.m*c.n] = 42 // sentinel past the end
				v.do(func() { tp.MatMulT(dst[:c.m*c.n], x, c.m, w, bias) })
				if dst[c.m*c.n] != 42 {
					t.Fatalf("%s wrote past dst", v.name)
				}
				got = append(got, dst[:c.m*c.n])
				for i, g := range dst[:c.m*c.n] {
					if d := math.Abs(float64(g) - ref[i]); !(d <= tolDot*mag[i]+1e-30) {
						t.Fatalf("%s out[%d,%d] = %g, want %g (diff %.3g > %.3g)", v.name, i/c.n, i%c.n, g, ref[i], d, tolDot*mag[i])
					}
				}
			}
			if c.t == Q8_0 {
				for _, g := range got[1:] {
					for i := range got[0] {
						if math.Float32bits(got[0][i]) != math.Float32bits(g[i]) {
							t.Fatalf("q8_0: SIMD %g != portable %g at %d (must be bit-identical)", g[i], got[0][i], i)
						}
					}
				}
			}
		})
	}
}

// TestGEMVRowsAlone: with up to 8 rows (3 for f32 weights: the GEMV path,
// which reads each weight row once for all of them), every row's result is
// bit-identical to that row alone, on every path: a beam's rows decode as
// one would.
func TestGEMVRowsAlone(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, typ := range []DType{F32, F16, Q8_0} {
		const k, n = 96, 37
		w := makeMatrix(r, typ, n, k)
		bias := randF32(r, n, 1)
		for _, m := range []int{2, 3, 5, 8} {
			if typ == F32 && m >= gemvMaxRowsF32 {
				continue
			}
			x := randF32(r, m*k, 2)
			for _, v := range variants() {
				if v.q8only() && typ != Q8_0 {
					continue
				}
				all := make([]float32, m*n)
				one := make([]float32, n)
				v.do(func() {
					tp.MatMulT(all, x, m, w, bias)
					for i := 0; i < m; i++ {
						tp.MatMulT(one, x[i*k:(i+1)*k], 1, w, bias)
						for c := range one {
							if math.Float32bits(one[c]) != math.Float32bits(all[i*n+c]) {
								t.Fatalf("%v %s m=%d: row %d col %d: %g in the batch, %g alone", typ, v.name, m, i, c, all[i*n+c], one[c])
							}
						}
					}
				})
			}
		}
	}
}

// TestAnyRows: a matrix marked AnyRows takes the GEMM from 2 rows on: each
// row's result is bit-identical to the same row in a call of 12 rows (the
// GEMM's), and within the GEMM's error of the row alone.
func TestAnyRows(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, typ := range []DType{F32, F16, Q8_0} {
		const k, n, big = 96, 37, 12
		w := makeMatrix(r, typ, n, k)
		w.AnyRows = true
		x := randF32(r, big*k, 2)
		for _, v := range variants() {
			if v.q8only() && typ != Q8_0 {
				continue
			}
			v.do(func() {
				ref := make([]float32, big*n)
				tp.MatMulT(ref, x, big, w, nil)
				for _, m := range []int{2, 3, 5, 8} {
					got := make([]float32, m*n)
					tp.MatMulT(got, x, m, w, nil)
					for i := range got {
						if math.Float32bits(got[i]) != math.Float32bits(ref[i]) {
							t.Fatalf("%v %s m=%d: out[%d,%d] = %g, %g in the 12-row GEMM", typ, v.name, m, i/n, i%n, got[i], ref[i])
						}
					}
				}
			})
		}
	}
}

// TestMatMulTPortableIsSequential pins the portable path to the plain
// in-order f32 dot product, bit for bit.
func TestMatMulTPortableIsSequential(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, c := range []mmCase{{F32, 7, 88, 17}, {F16, 5, 96, 9}, {F32, 1, 1412, 5}} {
		w := makeMatrix(r, c.t, c.n, c.k)
		x := randF32(r, c.m*c.k, 1)
		dst := make([]float32, c.m*c.n)
		withSIMD(t, false, func() { tp.MatMulT(dst, x, c.m, w, nil) })
		buf := make([]float32, c.k)
		for i := 0; i < c.m; i++ {
			for j := 0; j < c.n; j++ {
				var s float32
				row := weightRowF32(w, j, buf, false)
				for p := 0; p < c.k; p++ {
					s += x[i*c.k+p] * row[p]
				}
				if dst[i*c.n+j] != s {
					t.Fatalf("%v m%d: out[%d,%d] = %g, sequential dot %g", c.t, c.m, i, j, dst[i*c.n+j], s)
				}
			}
		}
	}
}

func TestQuantizeRowQ8(t *testing.T) {
	x := make([]float32, 64)
	for i := range x[:32] {
		x[i] = float32(i) - 15.5 // amax 16.5 at i=0 (-15.5) ... i=31 (15.5)
	}
	x[5] = 127
	x[6] = 2.5 // with d = 1: ties go away from zero
	x[7] = -2.5
	x[8] = 0.49
	q := make([]int8, 64)
	d := make([]float32, 2)
	QuantizeRowQ8(q, d, x)
	if d[0] != 1 || q[5] != 127 || q[6] != 3 || q[7] != -3 || q[8] != 0 || q[0] != -16 {
		t.Fatalf("block 0: d=%g q=%v", d[0], q[:32])
	}
	if d[1] != 0 || q[40] != 0 {
		t.Fatalf("zero block: d=%g q=%v", d[1], q[32:])
	}
}

func TestF16ToF32(t *testing.T) {
	for _, c := range []struct {
		h uint16
		f float32
	}{{0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, 1.0 / (1 << 24)}, {0x8000, float32(math.Copysign(0, -1))},
		{0x7c00, float32(math.Inf(1))}, {0x3555, 0.333251953125}, {0x0400, 1.0 / (1 << 14)}, {0x03ff, 1023.0 / (1 << 24)}} {
		if g := f16ToF32(c.h); math.Float32bits(g) != math.Float32bits(c.f) {
			t.Errorf("f16ToF32(%#x) = %g, want %g", c.h, g, c.f)
		}
	}
	if !hasF16C {
		t.Skip("no F16C")
	}
	src := make([]byte, 2*65536)
	for i := 0; i < 65536; i++ {
		binary.LittleEndian.PutUint16(src[2*i:], uint16(i))
	}
	a, b := make([]float32, 65536), make([]float32, 65536)
	cvtF16(a, src, false)
	cvtF16(b, src, true)
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("half %#x: Go %#x, F16C %#x", i, math.Float32bits(a[i]), math.Float32bits(b[i]))
		}
	}
}

func TestDequantQ8(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	raw := randQ8(r, 1, 32*37)
	a, b := make([]float32, 32*37), make([]float32, 32*37)
	dequantQ8(a, raw, false)
	dequantQ8(b, raw, true)
	for i := range a {
		want := float32(int8(raw[i/32*34+2+i%32])) * f16ToF32(binary.LittleEndian.Uint16(raw[i/32*34:]))
		if a[i] != want || math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("element %d: Go %g, SIMD %g, want %g", i, a[i], b[i], want)
		}
	}
}

type gemmCase struct{ m, n, k, pad int }

func TestGemm(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	cases := []gemmCase{{1, 1, 1, 0}, {3, 5, 7, 2}, {7, 17, 64, 3}, {257, 257, 88, 5}, {257, 88, 257, 1}, {32, 257, 64, 0}, {32, 64, 257, 7}, {13, 40, 1412, 4}}
	for _, c := range cases {
		for _, nt := range []bool{true, false} {
			name := fmt.Sprintf("NT=%v/m%d_n%d_k%d_pad%d", nt, c.m, c.n, c.k, c.pad)
			t.Run(name, func(t *testing.T) {
				lda, ldc := c.k+c.pad, c.n+2*c.pad
				a := randF32(r, c.m*lda, 1)
				var b []float32
				var ldb int
				if nt {
					ldb = c.k + c.pad
					b = randF32(r, c.n*ldb, 1)
				} else {
					ldb = c.n + c.pad
					b = randF32(r, c.k*ldb, 1)
				}
				alpha := float32(1)
				if nt {
					alpha = 0.125
				}
				for _, v := range variants() {
					if v.q8only() {
						continue
					}
					simd := v.name
					cm := make([]float32, c.m*ldc)
					for i := range cm {
						cm[i] = 7 // padding must survive
					}
					v.do(func() {
						if nt {
							tp.GemmNT(c.m, c.n, c.k, a, lda, b, ldb, cm, ldc, alpha)
						} else {
							tp.GemmNN(c.m, c.n, c.k, a, lda, b, ldb, cm, ldc)
						}
					})
					for i := 0; i < c.m; i++ {
						for j := 0; j < ldc; j++ {
							got := cm[i*ldc+j]
							if j >= c.n {
								if got != 7 {
									t.Fatalf("%s wrote padding C[%d,%d]", simd, i, j)
								}
								continue
							}
							var s, mag float64
							for p := 0; p < c.k; p++ {
								var bv float64
								if nt {
									bv = float64(b[j*ldb+p])
								} else {
									bv = float64(b[p*ldb+j])
								}
								s += float64(a[i*lda+p]) * bv
								mag += math.Abs(float64(a[i*lda+p]) * bv)
							}
							s *= float64(alpha)
							mag *= float64(alpha)
							if d := math.Abs(float64(got) - s); !(d <= tolDot*mag+1e-30) {
								t.Fatalf("%s C[%d,%d] = %g, want %g", simd, i, j, got, s)
							}
						}
					}
				}
			})
		}
	}
}

func TestAttention(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	type ac struct {
		tq, tk, heads, hd, pad int
		causal                 bool
	}
	cases := []ac{
		{257, 257, 16, 88, 0, false}, // ViT-g
		{32, 257, 12, 64, 8, false},  // Q-Former cross-attention
		{32, 32, 12, 64, 0, false},   // Q-Former self-attention
		{9, 9, 4, 16, 3, true},       // causal prompt
		{3, 11, 2, 24, 0, true},      // causal continuation (keys include a cache)
		{1, 40, 5, 8, 1, true},       // decode step
		{1, 1, 1, 1, 0, false},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("tq%d_tk%d_h%d_d%d_causal%v", c.tq, c.tk, c.heads, c.hd, c.causal), func(t *testing.T) {
			w := c.heads * c.hd
			ld := w + c.pad
			q, k, v := randF32(r, c.tq*ld, 3), randF32(r, c.tk*ld, 3), randF32(r, c.tk*ld, 1)
			args := AttentionArgs{Q: q, K: k, V: v, Tq: c.tq, Tk: c.tk, Heads: c.heads, HeadDim: c.hd,
				LdQ: ld, LdK: ld, LdV: ld, LdOut: ld, Scale: float32(1 / math.Sqrt(float64(c.hd))), Causal: c.causal}
			ref := attentionRef(&args)
			refProbs := attentionProbsRef(&args)
			for _, v := range variants() {
				if v.q8only() {
					continue
				}
				simd := v.name
				out := make([]float32, c.tq*ld)
				args.Out = out
				args.Probs = make([]float32, c.heads*c.tq*c.tk)
				for i := range args.Probs {
					args.Probs[i] = 7 // every element must be written
				}
				v.do(func() { tp.Attention(&args) })
				for i := 0; i < c.tq; i++ {
					for j := 0; j < w; j++ {
						if d := math.Abs(float64(out[i*ld+j]) - ref[i*w+j]); !(d <= 1e-5) {
							t.Fatalf("%s out[%d,%d] = %g, want %g", simd, i, j, out[i*ld+j], ref[i*w+j])
						}
					}
				}
				for i, p := range args.Probs {
					if d := math.Abs(float64(p) - refProbs[i]); !(d <= 1e-5) {
						t.Fatalf("%s probs[%d] = %g, want %g", simd, i, p, refProbs[i])
					}
				}
			}
		})
	}
}

// attentionProbsRef is softmax(Scale Q K^T) per head in float64, Heads x
// Tq x Tk, zero where a causal query does not see.
func attentionProbsRef(a *AttentionArgs) []float64 {
	out := make([]float64, a.Heads*a.Tq*a.Tk)
	for h := 0; h < a.Heads; h++ {
		for i := 0; i < a.Tq; i++ {
			vis := a.Tk
			if a.Causal {
				vis = min(max(a.Tk-a.Tq+i+1, 0), a.Tk)
			}
			row := out[(h*a.Tq+i)*a.Tk:][:vis]
			m := math.Inf(-1)
			for j := range row {
				var s float64
				for d := 0; d < a.HeadDim; d++ {
					s += float64(a.Q[i*a.LdQ+h*a.HeadDim+d]) * float64(a.K[j*a.LdK+h*a.HeadDim+d])
				}
				row[j] = s * float64(a.Scale)
				m = max(m, row[j])
			}
			var sum float64
			for j := range row {
				row[j] = math.Exp(row[j] - m)
				sum += row[j]
			}
			for j := range row {
				row[j] /= sum
			}
		}
	}
	return out
}

var rowLens = []int{1, 7, 8, 9, 88, 257, 1408, 1411}

func TestLayerNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, n := range rowLens {
		for _, affine := range []int{0, 1, 2, 3} {
			rows := 3
			x := randF32(r, rows*n, 4)
			for i := range x {
				x[i] += 10 // a mean far from zero
			}
			var g, b []float32
			if affine&1 != 0 {
				g = randF32(r, n, 2)
			}
			if affine&2 != 0 {
				b = randF32(r, n, 2)
			}
			var out [2][]float32
			for s, simd := range []bool{false, true} {
				out[s] = append([]float32(nil), x...)
				withSIMD(t, simd, func() { tp.LayerNorm(out[s], out[s], rows, n, g, b, 1e-6) }) // in place
			}
			for i := range x {
				scale := 1.0
				if g != nil {
					scale = math.Abs(float64(g[i%n])) + 1
				}
				if b != nil {
					scale += math.Abs(float64(b[i%n]))
				}
				if d := math.Abs(float64(out[0][i] - out[1][i])); d > 2e-6*scale {
					t.Fatalf("n=%d affine=%d: [%d] portable %g simd %g", n, affine, i, out[0][i], out[1][i])
				}
			}
		}
	}
}

func TestSoftmax(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, n := range rowLens {
		x := randF32(r, n, 30)
		var out [2][]float32
		for s, simd := range []bool{false, true} {
			out[s] = append([]float32(nil), x...)
			softmaxRow(out[s], simd && hasSIMD)
		}
		var sum float64
		for i := range x {
			sum += float64(out[1][i])
			if d := math.Abs(float64(out[0][i] - out[1][i])); d > 2e-6*float64(out[0][i])+1e-30 {
				t.Fatalf("n=%d [%d]: portable %g simd %g", n, i, out[0][i], out[1][i])
			}
		}
		if math.Abs(sum-1) > 1e-5 {
			t.Fatalf("n=%d: sum %g", n, sum)
		}
	}
}

func TestGELU(t *testing.T) {
	var x []float32
	for v := -12.0; v <= 12; v += 0.0137 {
		x = append(x, float32(v))
	}
	x = append(x, 0, float32(math.Copysign(0, -1)), 1e-30, -1e-30, 50, -50, 1e4, -1e4)
	var out [2][]float32
	for s, simd := range []bool{false, true} {
		out[s] = append([]float32(nil), x...)
		withSIMD(t, simd, func() { tp.GELU(out[s]) })
	}
	for i, v := range x {
		want := 0.5 * float64(v) * (1 + math.Erf(float64(v)/math.Sqrt2))
		if float64(out[0][i]) != float64(float32(want)) {
			t.Fatalf("portable gelu(%g) = %g, want %g", v, out[0][i], want)
		}
		ulp := math.Abs(float64(math.Nextafter32(float32(want), float32(math.Inf(1))) - float32(want)))
		if d := math.Abs(float64(out[1][i]) - want); d > 3e-7*math.Abs(float64(v))+2*ulp {
			t.Fatalf("simd gelu(%g) = %g, want %g (diff %g)", v, out[1][i], want, d)
		}
	}
}

func TestElementwise(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, n := range rowLens {
		a, b := randF32(r, n, 3), randF32(r, n, 3)
		a[0] = float32(math.NaN())
		for _, simd := range []bool{false, true} {
			withSIMD(t, simd, func() {
				d := make([]float32, n)
				addRange(d, a, b, simd && hasSIMD)
				c := append([]float32(nil), a...)
				scale(c, 0.5, simd && hasSIMD)
				rl := append([]float32(nil), a...)
				relu(rl, simd && hasSIMD)
				ab := append([]float32(nil), a...)
				addBias(ab, 1, b, simd && hasSIMD)
				for i := range a {
					if i > 0 && (d[i] != a[i]+b[i] || c[i] != a[i]*0.5 || rl[i] != max(a[i], 0) || ab[i] != d[i]) {
						t.Fatalf("n=%d simd=%v [%d]", n, simd, i)
					}
				}
				if rl[0] != 0 {
					t.Fatalf("ReLU(NaN) = %g, want 0", rl[0])
				}
			})
		}
	}
}

func TestThreads(t *testing.T) {
	prev := threads()
	defer setThreads(prev)
	r := rand.New(rand.NewPCG(17, 18))
	w := makeMatrix(r, F32, 300, 96)
	x := randF32(r, 50*96, 1)
	want := make([]float32, 50*300)
	setThreads(1)
	tp.MatMulT(want, x, 50, w, nil)
	for _, n := range []int{3, 2, 0} {
		setThreads(n)
		got := make([]float32, 50*300)
		tp.MatMulT(got, x, 50, w, nil)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("threads=%d: result depends on the thread count at %d", n, i)
			}
		}
	}
}

func TestNoAllocs(t *testing.T) {
	prev := threads()
	defer setThreads(prev)
	setThreads(2)
	r := rand.New(rand.NewPCG(19, 20))
	x := randF32(r, 257*256, 1)
	dst := make([]float32, 257*384)
	ws := []*Matrix{makeMatrix(r, F32, 384, 256), makeMatrix(r, F16, 384, 256), makeMatrix(r, Q8_0, 384, 256)}
	bias := randF32(r, 384, 1)
	qkv := randF32(r, 257*3*256, 1)
	out := make([]float32, 257*256)
	args := AttentionArgs{Q: qkv, K: qkv[256:], V: qkv[512:], Out: out, Tq: 257, Tk: 257, Heads: 4, HeadDim: 64, LdQ: 768, LdK: 768, LdV: 768, LdOut: 256, Scale: 0.125}
	big := randF32(r, 257*384, 1)
	for _, v := range variants() {
		simd := v.name
		v.do(func() {
			for _, w := range ws {
				for _, m := range []int{257, 1} {
					if a := testing.AllocsPerRun(5, func() { tp.MatMulT(dst[:m*384], x[:m*256], m, w, bias) }); a != 0 {
						t.Errorf("%s MatMulT %v m=%d: %v allocs", simd, w.Type, m, a)
					}
				}
			}
			if a := testing.AllocsPerRun(5, func() { tp.Attention(&args) }); a != 0 {
				t.Errorf("%s Attention: %v allocs", simd, a)
			}
			if a := testing.AllocsPerRun(5, func() { tp.LayerNorm(big, big, 257, 384, bias, bias, 1e-6) }); a != 0 {
				t.Errorf("%s LayerNorm: %v allocs", simd, a)
			}
			if a := testing.AllocsPerRun(5, func() { tp.GELU(big) }); a != 0 {
				t.Errorf("%s GELU: %v allocs", simd, a)
			}
			if a := testing.AllocsPerRun(5, func() { tp.GemmNT(64, 64, 64, x, 64, x, 64, dst, 64, 1) }); a != 0 {
				t.Errorf("%s GemmNT: %v allocs", simd, a)
			}
		})
	}
}

// TestConcurrentCallers checks that kernels called from several goroutines
// at once (serialised on the pool) give the same results as alone.
func TestConcurrentCallers(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	w := makeMatrix(r, F16, 200, 96)
	x := randF32(r, 40*96, 1)
	want := make([]float32, 40*200)
	tp.MatMulT(want, x, 40, w, nil)
	errc := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			got := make([]float32, 40*200)
			ln := make([]float32, 40*96)
			for it := 0; it < 20; it++ {
				tp.MatMulT(got, x, 40, w, nil)
				tp.LayerNorm(ln, x, 40, 96, nil, nil, 1e-5)
				for i := range got {
					if got[i] != want[i] {
						errc <- fmt.Errorf("goroutine result differs at %d", i)
						return
					}
				}
			}
			errc <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

// TestMicroKernels checks each f32 micro-kernel (and its half-height
// variant) directly: strided A and C, depths with and without a tail of the
// 4x unrolled loop, accumulate or overwrite, with and without prefetching,
// and that nothing outside the tile is written.
func TestMicroKernels(t *testing.T) {
	if !hasSIMD {
		t.Skip("no SIMD")
	}
	type mk struct {
		name   string
		mr, nr int
		fn     func(kc int, a *float32, lda int, b *float32, c *float32, ldc int, pf *byte, pfld, pfn int, accum bool)
	}
	var ks []mk
	f32, _ := simdKernels()
	for _, k := range f32 {
		ks = append(ks, mk{k.name, k.mr, k.nr, k.fn})
		if k.half != nil {
			ks = append(ks, mk{k.name + "-half", k.mr / 2, k.nr, k.half})
		}
	}
	r := rand.New(rand.NewPCG(23, 24))
	pfbuf := make([]byte, 1<<16)
	for _, k := range ks {
		for _, kc := range []int{1, 3, 4, 7, 64, 255, 256} {
			for _, accum := range []bool{false, true} {
				for _, pf := range []bool{false, true} {
					lda, ldc := kc+5, k.nr+3
					a := randF32(r, k.mr*lda, 1)
					b := randF32(r, kc*k.nr, 1)
					c0 := randF32(r, (k.mr+1)*ldc, 1) // one spare row
					c := append([]float32(nil), c0...)
					var p *byte
					if pf {
						p = &pfbuf[0]
					}
					k.fn(kc, &a[0], lda, &b[0], &c[0], ldc, p, 4096, 17, accum)
					for i := 0; i < k.mr+1; i++ {
						for j := 0; j < ldc; j++ {
							got := c[i*ldc+j]
							if i >= k.mr || j >= k.nr {
								if got != c0[i*ldc+j] {
									t.Fatalf("%s kc=%d: wrote C[%d,%d] outside the tile", k.name, kc, i, j)
								}
								continue
							}
							var s, mag float64
							if accum {
								s, mag = float64(c0[i*ldc+j]), math.Abs(float64(c0[i*ldc+j]))
							}
							for q := 0; q < kc; q++ {
								v := float64(a[i*lda+q]) * float64(b[q*k.nr+j])
								s += v
								mag += math.Abs(v)
							}
							if d := math.Abs(float64(got) - s); !(d <= tolDot*mag+1e-30) {
								t.Fatalf("%s kc=%d accum=%v pf=%v: C[%d,%d] = %g, want %g", k.name, kc, accum, pf, i, j, got, s)
							}
						}
					}
				}
			}
		}
	}
}

// TestBalancedChunks checks the column split: no count of chunks (1 to 8 a
// thread) finishes sooner in turns of equal chunks, and 44 panels (n = 1408)
// on 2 threads is not split into an odd number of tasks.
func TestBalancedChunks(t *testing.T) {
	span := func(panels, threads, c int) int { return ceilDiv(c, threads) * ceilDiv(panels, c) }
	for _, tc := range []struct{ panels, threads int }{{44, 2}, {192, 2}, {132, 2}, {3, 2}, {44, 3}, {7, 4}, {1000, 2}} {
		c := balancedChunks(tc.panels, tc.threads)
		if c < 1 || c > tc.panels {
			t.Fatalf("%d panels, %d threads: %d chunks", tc.panels, tc.threads, c)
		}
		for o := 1; o <= min(tc.panels, 8*tc.threads); o++ {
			if span(tc.panels, tc.threads, o) < span(tc.panels, tc.threads, c) {
				t.Errorf("%d panels, %d threads: %d chunks take %d rounds, %d chunks %d", tc.panels, tc.threads, c, span(tc.panels, tc.threads, c), o, span(tc.panels, tc.threads, o))
			}
		}
	}
	if c := balancedChunks(44, 2); c%2 != 0 {
		t.Errorf("44 panels on 2 threads: %d chunks", c)
	}
}
