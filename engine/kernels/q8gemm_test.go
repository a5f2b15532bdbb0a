package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// fma32Exact is a*b+c computed exactly and rounded once to float32.
func fma32Exact(a, b, c float32) float32 {
	x := new(big.Float).SetPrec(400).SetFloat64(float64(a))
	x.Mul(x, new(big.Float).SetPrec(400).SetFloat64(float64(b)))
	x.Add(x, new(big.Float).SetPrec(400).SetFloat64(float64(c)))
	f, _ := x.Float32()
	return f
}

func TestFMA32(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	f := func(a, b, c float32) {
		t.Helper()
		got := fma32(a, b, c)
		want := fma32Exact(a, b, c)
		if want == 0 {
			// big.Float has no signed-zero arithmetic; IEEE gives +0 for
			// x + (-x) and the product's sign when both are zero.
			want = float32(float64(a)*float64(b) + float64(c))
		}
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("fma32(%g, %g, %g) = %g (%#x), want %g (%#x)", a, b, c, got, math.Float32bits(got), want, math.Float32bits(want))
		}
	}
	// Products landing on float32 midpoints with a tiny addend: the cases
	// where rounding twice (to float64, then float32) goes wrong.
	f(3, 1+1.0/(1<<23), 1e-30)             // 3+3*2^-23: 25 bits
	f(1+1.0/(1<<23), 1+1.0/(1<<23), 1e-30) // 1+2^-22+2^-46
	f(1+1.0/(1<<23), 1+1.0/(1<<23), -1e-30)
	f(-3, 1+1.0/(1<<23), -1e-35)
	f(0, -1, 0)
	f(0, -1, float32(math.Copysign(0, -1)))
	f(1e30, 1e30, -1)
	n := 200000
	if testing.Short() {
		n = 20000 // under emulation
	}
	for i := 0; i < n; i++ {
		a := float32(r.IntN(1<<21) - 1<<20) // the integer block sums
		b := math.Float32frombits(uint32(r.IntN(1<<23)) | uint32(100+r.IntN(40))<<23)
		c := math.Float32frombits(uint32(r.Uint32()&^(0xff<<23)) | uint32(90+r.IntN(70))<<23)
		if r.IntN(4) == 0 {
			// c just below a midpoint-making product: exercise the ties
			c = math.Float32frombits(uint32(r.IntN(8)) | uint32(60+r.IntN(30))<<23)
		}
		f(a, b, c)
	}
}

// q8TestRows returns m x k activations with zero blocks, ties and extremes.
func q8TestRows(r *rand.Rand, m, k int) []float32 {
	x := randF32(r, m*k, 3)
	for b := 0; b < m*k/32; b++ {
		blk := x[b*32 : b*32+32]
		switch r.IntN(8) {
		case 0:
			clear(blk)
		case 1: // d = 1: x = n + 0.5 ties round away from zero
			for i := range blk {
				blk[i] = float32(r.IntN(254)-127) + 0.5
			}
			blk[0] = 127
		case 2: // a huge and a tiny scale
			blk[r.IntN(32)] = 1e25 * float32(1-2*r.IntN(2))
		case 3:
			for i := range blk {
				blk[i] *= 1e-40 // subnormal activations
			}
		case 4:
			for i := range blk {
				blk[i] = float32(r.IntN(3)-1) * 1e6
			}
		}
	}
	return x
}

func TestQuantizeA(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	const k = 32 * 300
	x := q8TestRows(r, 1, k)
	x[5], x[70], x[100] = float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))
	for i := 192; i < 256; i++ {
		x[i] = 0
	}
	x[200] = 1e-38 // alone in a block: d is subnormal, 1/d overflows
	x[230] = -1e-38
	q := make([]int8, k)
	d := make([]float32, k/32)
	QuantizeRowQ8(q, d, x)
	var ab [2][]byte
	for s, simd := range []bool{false, true} {
		if simd && !hasSIMD {
			continue
		}
		ab[s] = make([]byte, k/32*q8ABytes)
		quantizeA(ab[s], x, simd && hasSIMD)
		for b := 0; b < k/32; b++ {
			blk := ab[s][b*q8ABytes:]
			var sum int32
			for i := 0; i < 32; i++ {
				if int8(blk[i]) != q[b*32+i] {
					t.Fatalf("simd=%v block %d: q[%d] = %d, QuantizeRowQ8 %d (x=%g)", simd, b, i, int8(blk[i]), q[b*32+i], x[b*32+i])
				}
				if q[b*32+i] < -127 {
					t.Fatalf("q = -128")
				}
				sum += int32(q[b*32+i])
			}
			gd := binary.LittleEndian.Uint32(blk[32:])
			if gd != math.Float32bits(d[b]) {
				t.Fatalf("simd=%v block %d: d = %#x, want %#x", simd, b, gd, math.Float32bits(d[b]))
			}
			if c := int32(binary.LittleEndian.Uint32(blk[36:])); c != -128*sum {
				t.Fatalf("simd=%v block %d: correction %d, want %d", simd, b, c, -128*sum)
			}
		}
	}
	if q[200] != 127 || q[230] != -127 || q[224] != 0 || q[5] != 0 || !math.IsNaN(float64(d[0])) || !math.IsInf(float64(d[2]), 1) {
		t.Fatalf("degenerate blocks: q=%d %d %d %d d=%g %g", q[200], q[230], q[224], q[5], d[0], d[2])
	}
}

func TestPackQ8(t *testing.T) {
	if !hasSIMD || !hasF16C {
		t.Skip("no SIMD")
	}
	r := rand.New(rand.NewPCG(35, 36))
	w := makeMatrix(r, Q8_0, 40, 32*9)
	layouts := map[q8Layout]bool{}
	_, q8 := simdKernels()
	for _, q := range q8 {
		layouts[q.layout] = true
	}
	for _, nr := range []int{8, 16, 24, 32} {
		for layout := range layouts {
			kb := 7
			bb := layout.blockBytes(nr)
			want := make([]byte, kb*bb)
			got := make([]byte, kb*bb)
			packQ8(want, w, 5, nr, 2, kb, nr, layout, false)
			packQ8(got, w, 5, nr, 2, kb, nr, layout, hasSIMD)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("nr=%d layout=%d: byte %d: asm %#x, Go %#x", nr, layout, i, got[i], want[i])
				}
			}
			// spot check the layout: column 3, block 1, quad 2, byte 1
			blk := w.Raw[(5+3)*(9*34)+(2+1)*34:]
			v := blk[2+9]
			switch layout {
			case q8Pairs:
				if want[bb+(1*nr/2+1)*16+8+1] != blk[2+9] { // group 1, pair 1, second column
					t.Fatal("packed pairs layout")
				}
			case q8Split:
				abs, mask := v, byte(0)
				if int8(v) < 0 {
					abs, mask = byte(-int(int8(v))), 0xff
				}
				if want[bb+2*8*nr+3*4+1] != abs || want[bb+2*8*nr+4*nr+3*4+1] != mask {
					t.Fatal("packed split layout")
				}
			default:
				flip := byte(0)
				if layout == q8Unsigned {
					flip = 0x80
				}
				if want[bb+(2*nr+3)*4+1] != v^flip {
					t.Fatal("packed layout")
				}
			}
		}
	}
}

// q8Variants are the Q8_0 GEMM kernels this CPU runs, with portable first.
func q8Variants() []variant {
	v := []variant{{"portable", impl{false, machine.kern, machine.q8}}}
	_, q8 := simdKernels()
	for _, q := range q8 {
		v = append(v, variant{q.name, impl{true, machine.kern, q}})
	}
	return v
}

// TestMatMulTQ8 checks the integer GEMM on shapes around the tile and chunk
// edges, on extreme values (weights -128 and 127, activations quantized to
// +-127, zero blocks, ties), and with 1-3 threads: every kernel and thread
// count gives the reference bits, and the reference is within
// (k/32+1)*2^-24*sum|x_p w_p| of the exact product of the quantized operands.
func TestMatMulTQ8(t *testing.T) {
	prevT := threads()
	defer setThreads(prevT)
	r := rand.New(rand.NewPCG(37, 38))
	type c8 struct{ m, k, n int }
	cases := []c8{{9, 32, 1}, {10, 64, 33}, {11, 32, 32}, {15, 96, 16}, {12, 1024, 64}, {13, 1056, 47},
		{30, 2080, 100}, {64, 6144, 40}, {100, 32 * 65, 97}}
	for _, c := range cases {
		if testing.Short() && c.m*c.k*c.n > 8_000_000 {
			continue // under emulation; {30, 2080, 100} still spans several panels of depth
		}
		for _, extreme := range []bool{false, true} {
			name := fmt.Sprintf("m%d_k%d_n%d_extreme%v", c.m, c.k, c.n, extreme)
			t.Run(name, func(t *testing.T) {
				w := makeMatrix(r, Q8_0, c.n, c.k)
				x := q8TestRows(r, c.m, c.k)
				if extreme {
					for i := 0; i < len(w.Raw); i += 34 {
						v := byte(0x80) // -128
						if r.IntN(2) == 0 {
							v = 127
						}
						for j := 2; j < 34; j++ {
							w.Raw[i+j] = v
						}
					}
					for i := range x {
						x[i] = float32(1 - 2*r.IntN(2)) // q = +-127
					}
				}
				bias := randF32(r, c.n, 1)
				ref, mag := naiveMatMulT(quantizedX(x, c.m, c.k), c.m, denseF64(w), c.n, c.k, bias)
				var want []float32
				for _, v := range q8Variants() {
					for th := 1; th <= 3; th++ {
						if !v.simd && th > 1 {
							continue
						}
						setThreads(th)
						got := make([]float32, c.m*c.n)
						v.do(func() { tp.MatMulT(got, x, c.m, w, bias) })
						if want == nil {
							want = got
							bound := float64(c.k/32+1) * 0x1p-24
							for i, g := range got {
								if d := math.Abs(float64(g) - ref[i]); !(d <= bound*mag[i]+1e-30) {
									t.Fatalf("out[%d,%d] = %g, want %g (diff %.3g > %.3g)", i/c.n, i%c.n, g, ref[i], d, bound*mag[i])
								}
							}
							continue
						}
						for i := range got {
							if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
								t.Fatalf("%s threads=%d: out[%d,%d] = %g, portable %g (must be bit-identical)", v.name, th, i/c.n, i%c.n, got[i], want[i])
							}
						}
					}
				}
			})
		}
	}
}

// TestMatMulTQ8Accuracy reports how far the Q8_0 GEMM (activations
// quantized) is from the f32 product with the same (dequantized) weights:
// Gaussian activations, and the same with a few channels 20x larger (as
// transformers have), which coarsens the scale of the blocks holding them.
func TestMatMulTQ8Accuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(39, 40))
	const m, k, n = 64, 1408, 256
	w := makeMatrix(r, Q8_0, n, k)
	for _, c := range []struct {
		name    string
		outlier float32
		bound   float64
	}{{"gaussian", 1, 1e-2}, {"outliers", 20, 3e-2}} {
		x := make([]float32, m*k)
		for i := range x {
			x[i] = float32(r.NormFloat64())
			if i%k%97 == 0 {
				x[i] *= c.outlier
			}
		}
		ref, _ := naiveMatMulT(toF64(x), m, denseF64(w), n, k, nil)
		got := make([]float32, m*n)
		tp.MatMulT(got, x, m, w, nil)
		var num, den float64
		for i := range got {
			num += (float64(got[i]) - ref[i]) * (float64(got[i]) - ref[i])
			den += ref[i] * ref[i]
		}
		rel := math.Sqrt(num / den)
		t.Logf("%s: q8_0 GEMM vs f32 activations: relative RMS error %.3g", c.name, rel)
		if rel > c.bound {
			t.Errorf("%s: relative RMS error %.3g > %.3g", c.name, rel, c.bound)
		}
	}
}

// TestMatMulTQ8Concurrent: callers on several goroutines share the quantized
// activation buffer through the pool lock, and get the results they get alone.
func TestMatMulTQ8Concurrent(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	const m, k, n = 40, 96, 200
	w := makeMatrix(r, Q8_0, n, k)
	xs := [][]float32{randF32(r, m*k, 1), randF32(r, m*k, 2)}
	want := [][]float32{make([]float32, m*n), make([]float32, m*n)}
	for i := range xs {
		tp.MatMulT(want[i], xs[i], m, w, nil)
	}
	errc := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			got := make([]float32, m*n)
			for it := 0; it < 20; it++ {
				i := (g + it) % 2
				tp.MatMulT(got, xs[i], m, w, nil)
				for j := range got {
					if got[j] != want[i][j] {
						errc <- fmt.Errorf("goroutine %d: result differs at %d", g, j)
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

// TestDotQ8Rows: the multi-row Q8_0 GEMV kernel gives, for 1 to 8 rows,
// each row's dotQ8 bits, on ordinary and
// extreme values (weights -128 and 127, activations +-127).
func TestDotQ8Rows(t *testing.T) {
	r := rand.New(rand.NewPCG(39, 40))
	for _, nb := range []int{1, 3, 80} {
		k := nb * q8Block
		for _, extreme := range []bool{false, true} {
			w := makeMatrix(r, Q8_0, 1, k)
			x := q8TestRows(r, 8, k)
			if extreme {
				for i := 0; i < len(w.Raw); i += 34 {
					for j := 2; j < 34; j++ {
						w.Raw[i+j] = []byte{0x80, 127}[r.IntN(2)]
					}
				}
				for i := range x {
					x[i] = float32(1 - 2*r.IntN(2))
				}
			}
			xq := make([]int8, 8*k)
			xd := make([]float32, 8*nb)
			QuantizeRowQ8(xq, xd, x)
			for rows := 1; rows <= 8; rows++ {
				xdt := make([]float32, 8*nb)
				interleaveQ8Scales(xdt, xd, nb, rows)
				for _, simd := range []bool{false, true} {
					const ld = 3
					dst := make([]float32, rows*ld)
					dotQ8Rows(dst, ld, xq, xd, xdt, w.Raw, rows, simd && hasSIMD)
					for i := 0; i < rows; i++ {
						want := dotQ8(xq[i*k:(i+1)*k], xd[i*nb:(i+1)*nb], w.Raw, false)
						if math.Float32bits(dst[i*ld]) != math.Float32bits(want) {
							t.Fatalf("nb=%d extreme=%v rows=%d simd=%v: row %d = %g, dotQ8 %g", nb, extreme, rows, simd, i, dst[i*ld], want)
						}
					}
				}
			}
		}
	}
}

// TestDotF16Tile: the f16 GEMV kernel gives, for 1 to 8 rows by 1 to 9
// columns (tiles of every shape and the rest) and depths with and without
// a tail of fewer than 8, each product's dotF16 bits.
func TestDotF16Tile(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for _, k := range []int{5, 8, 16, 24, 203, 2568} {
		w := makeMatrix(r, F16, 9, k)
		x := randF32(r, 8*k, 2)
		for rows := 1; rows <= 8; rows++ {
			for cols := 1; cols <= 9; cols++ {
				for _, simd := range []bool{false, true} {
					const ld = 11
					dst := make([]float32, rows*ld)
					dotF16Tile(dst, ld, x, rows, w.Raw[:2*k*cols], cols, simd && hasSIMD)
					for i := 0; i < rows; i++ {
						for c := 0; c < cols; c++ {
							want := dotF16(x[i*k:(i+1)*k], w.Raw[2*k*c:2*k*(c+1)], simd && hasSIMD)
							if math.Float32bits(dst[i*ld+c]) != math.Float32bits(want) {
								t.Fatalf("k=%d %dx%d simd=%v: [%d,%d] = %g, dotF16 %g", k, rows, cols, simd, i, c, dst[i*ld+c], want)
							}
						}
					}
				}
			}
		}
	}
}
