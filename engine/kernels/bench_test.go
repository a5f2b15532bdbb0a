package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// ViT-g/14 linear shapes at 224x224 (257 tokens).
var benchShapes = []struct {
	name    string
	m, k, n int
}{
	{"fc1", 257, 1408, 6144},
	{"fc2", 257, 6144, 1408},
	{"qkv", 257, 1408, 4224},
}

func BenchmarkMatMulT(b *testing.B) {
	prev := threads()
	defer setThreads(prev)
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range benchShapes {
		x := randF32(r, s.m*s.k, 1)
		dst := make([]float32, s.m*s.n)
		bias := randF32(r, s.n, 1)
		for _, t := range []DType{F32, F16, Q8_0} {
			w := makeMatrix(r, t, s.n, s.k)
			for _, th := range []int{1, 2} {
				b.Run(fmt.Sprintf("%s/%v/t%d", s.name, t, th), func(b *testing.B) {
					setThreads(th)
					tp.MatMulT(dst, x, s.m, w, bias)
					flop := 2 * float64(s.m) * float64(s.k) * float64(s.n)
					c0 := cpuTime()
					for b.Loop() {
						tp.MatMulT(dst, x, s.m, w, bias)
					}
					reportRate(b, flop, c0, "GFLOP/s")
				})
			}
		}
	}
}

// BenchmarkGEMV is a decode-time product, 1x2560 . (10240x2560)^T (an
// OPT-2.7b fc1): memory-bound, so it reports weight bytes read per second.
func BenchmarkGEMV(b *testing.B) {
	prev := threads()
	defer setThreads(prev)
	r := rand.New(rand.NewPCG(2, 2))
	const k, n = 2560, 10240
	x := randF32(r, k, 1)
	dst := make([]float32, n)
	for _, t := range []DType{Q8_0, F16, F32} {
		w := makeMatrix(r, t, n, k)
		bytes := map[DType]float64{F32: 4 * k * n, F16: 2 * k * n, Q8_0: 34.0 / 32 * k * n}[t]
		for _, th := range []int{1, 2} {
			b.Run(fmt.Sprintf("%v/t%d", t, th), func(b *testing.B) {
				setThreads(th)
				c0 := cpuTime()
				for b.Loop() {
					tp.MatMulT(dst, x, 1, w, nil)
				}
				reportRate(b, bytes, c0, "GB/s")
			})
		}
	}
}

func BenchmarkAttention(b *testing.B) {
	prev := threads()
	defer setThreads(prev)
	r := rand.New(rand.NewPCG(3, 3))
	for _, c := range []struct {
		name          string
		tq, tk, h, hd int
	}{{"vit", 257, 257, 16, 88}, {"qformer_cross", 32, 257, 12, 64}} {
		w := c.h * c.hd
		q, k, v := randF32(r, c.tq*w, 1), randF32(r, c.tk*w, 1), randF32(r, c.tk*w, 1)
		out := make([]float32, c.tq*w)
		args := AttentionArgs{Q: q, K: k, V: v, Out: out, Tq: c.tq, Tk: c.tk, Heads: c.h, HeadDim: c.hd, Scale: 0.1}
		flop := 4 * float64(c.tq) * float64(c.tk) * float64(w)
		for _, th := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/t%d", c.name, th), func(b *testing.B) {
				setThreads(th)
				c0 := cpuTime()
				for b.Loop() {
					tp.Attention(&args)
				}
				reportRate(b, flop, c0, "GFLOP/s")
			})
		}
	}
}

// BenchmarkRowOps times the row kernels at ViT-g sizes on one thread,
// reporting nanoseconds per element.
func BenchmarkRowOps(b *testing.B) {
	prev := threads()
	defer setThreads(prev)
	setThreads(1)
	r := rand.New(rand.NewPCG(4, 4))
	x := randF32(r, 257*6144, 3)
	g, be := randF32(r, 1408, 1), randF32(r, 1408, 1)
	b.Run("LayerNorm257x1408", func(b *testing.B) {
		c0 := cpuTime()
		for b.Loop() {
			tp.LayerNorm(x[:257*1408], x[:257*1408], 257, 1408, g, be, 1e-6)
		}
		reportNs(b, 257*1408, c0)
	})
	b.Run("GELU257x6144", func(b *testing.B) {
		y := make([]float32, len(x))
		c0 := cpuTime()
		for b.Loop() {
			copy(y, x)
			tp.GELU(y)
		}
		reportNs(b, len(x), c0)
	})
	b.Run("Softmax257", func(b *testing.B) {
		c0 := cpuTime()
		for b.Loop() {
			Softmax(x[:257])
		}
		reportNs(b, 257, c0)
	})
}

// reportRate reports work/1e9 per wall second as unit, and per CPU-second
// of the process as unit+"/cpu" (times threads() gives what the threads
// would do on idle cores).
func reportRate(b *testing.B, work float64, cpu0 time.Duration, unit string) {
	total := work * float64(b.N) / 1e9
	b.ReportMetric(total/b.Elapsed().Seconds(), unit)
	if c := cpuTime() - cpu0; c > 0 {
		b.ReportMetric(total/c.Seconds(), unit+"/cpu")
	}
}

// BenchmarkMicroKernel runs one micro-kernel on L1-resident operands: the
// ceiling for the packed GEMM on this core.
func BenchmarkMicroKernel(b *testing.B) {
	if !hasSIMD {
		b.Skip("no SIMD")
	}
	r := rand.New(rand.NewPCG(5, 5))
	const kc = kcBlock
	a := randF32(r, maxMR*kc, 1)
	bp := randF32(r, kc*maxNR, 1)
	c := make([]float32, maxMR*maxNR)
	f32, _ := simdKernels()
	for _, k := range f32 {
		b.Run(k.name, func(b *testing.B) {
			const calls = 1000
			c0 := cpuTime()
			for b.Loop() {
				for i := 0; i < calls; i++ {
					k.fn(kc, &a[0], kc, &bp[0], &c[0], k.nr, nil, 0, 0, true)
				}
			}
			reportRate(b, calls*2*float64(k.mr*k.nr*kc), c0, "GFLOP/s")
		})
	}
}

// reportNs reports CPU nanoseconds per element.
func reportNs(b *testing.B, n int, cpu0 time.Duration) {
	if c := cpuTime() - cpu0; c > 0 {
		b.ReportMetric(float64(c.Nanoseconds())/float64(n)/float64(b.N), "cpu-ns/elem")
	}
}

// BenchmarkQ8MicroKernel runs each Q8_0 GEMM micro-kernel on L1-resident
// operands (one packed panel of q8KB blocks): the ceiling of the integer
// GEMM on this core, in GFLOP/s-equivalent (2 per multiply-add).
func BenchmarkQ8MicroKernel(b *testing.B) {
	r := rand.New(rand.NewPCG(6, 6))
	const kb = q8KB // the largest panel; each kernel runs over its own kb
	x := randF32(r, maxMR*kb*q8Block, 1)
	a := make([]byte, maxMR*kb*q8ABytes)
	for i := 0; i < maxMR; i++ {
		quantizeA(a[i*kb*q8ABytes:(i+1)*kb*q8ABytes], x[i*kb*q8Block:(i+1)*kb*q8Block], false)
	}
	w := makeMatrix(r, Q8_0, maxNR, kb*q8Block)
	c := make([]float32, maxMR*maxNR)
	for _, v := range q8Variants()[1:] {
		qb := v.q8.kb
		bp := make([]byte, qb*v.q8.layout.blockBytes(v.q8.nr))
		packQ8(bp, w, 0, v.q8.nr, 0, qb, v.q8.nr, v.q8.layout, v.simd)
		b.Run(v.name, func(b *testing.B) {
			const calls = 1000
			c0 := cpuTime()
			for b.Loop() {
				for i := 0; i < calls; i++ {
					v.q8.fn(qb, &a[0], kb*q8ABytes, &bp[0], &c[0], v.q8.nr, nil, true)
				}
			}
			reportRate(b, calls*2*float64(v.q8.mr*v.q8.nr*qb*q8Block), c0, "GFLOP/s")
		})
	}
}

// BenchmarkQ8GEMM runs MatMulT at the ViT-g shapes with each f32
// micro-kernel (f32 weights) and each Q8_0 integer-GEMM kernel (Q8_0
// weights) this CPU has, so a run compares them under the same load.
func BenchmarkQ8GEMM(b *testing.B) {
	if !hasSIMD {
		b.Skip("no SIMD")
	}
	prev := threads()
	defer setThreads(prev)
	r := rand.New(rand.NewPCG(7, 7))
	type kv struct {
		name string
		t    DType
		v    variant
	}
	var ks []kv
	f32, _ := simdKernels()
	for _, k := range f32 {
		ks = append(ks, kv{"f32-" + k.name, F32, variant{k.name, impl{simd: true, kern: k, q8: machine.q8}}})
	}
	for _, v := range q8Variants()[1:] {
		ks = append(ks, kv{"q8_0-" + v.name, Q8_0, v})
	}
	for _, s := range benchShapes {
		x := randF32(r, s.m*s.k, 1)
		dst := make([]float32, s.m*s.n)
		bias := randF32(r, s.n, 1)
		ws := map[DType]*Matrix{F32: makeMatrix(r, F32, s.n, s.k), Q8_0: makeMatrix(r, Q8_0, s.n, s.k)}
		for _, k := range ks {
			for _, th := range []int{1, 2} {
				b.Run(fmt.Sprintf("%s/%s/t%d", s.name, k.name, th), func(b *testing.B) {
					setThreads(th)
					k.v.do(func() {
						tp.MatMulT(dst, x, s.m, ws[k.t], bias)
						flop := 2 * float64(s.m) * float64(s.k) * float64(s.n)
						c0 := cpuTime()
						for b.Loop() {
							tp.MatMulT(dst, x, s.m, ws[k.t], bias)
						}
						reportRate(b, flop, c0, "GFLOP/s")
					})
				})
			}
		}
	}
}

// BenchmarkSmallM is MatMulT with 1 to 8 rows at the OPT-2.7b shapes (a
// beam of 5 decodes 5 rows a step): q8_0 and f16 weights read from memory,
// so more rows should cost little more than one.
func BenchmarkSmallM(b *testing.B) {
	prev := threads()
	defer setThreads(prev)
	r := rand.New(rand.NewPCG(8, 8))
	for _, s := range []struct {
		name string
		n, k int
	}{{"2560x2560", 2560, 2560}, {"10240x2560", 10240, 2560}, {"50272x2560", 50272, 2560}} {
		for _, t := range []DType{Q8_0, F16} {
			w := makeMatrix(r, t, s.n, s.k)
			x := randF32(r, 8*s.k, 1)
			dst := make([]float32, 8*s.n)
			for _, m := range []int{1, 2, 4, 5, 8} {
				for _, th := range []int{1, 2} {
					b.Run(fmt.Sprintf("%s/%v/m%d/t%d", s.name, t, m, th), func(b *testing.B) {
						setThreads(th)
						tp.MatMulT(dst, x, m, w, nil)
						c0 := cpuTime()
						for b.Loop() {
							tp.MatMulT(dst, x, m, w, nil)
						}
						reportRate(b, float64(len(w.Raw)), c0, "GB/s") // weight bytes
					})
				}
			}
		}
	}
}

// BenchmarkPrefill is MatMulT with Q8_0 weights at OPT-2.7b's fc1 shape
// (10240x2560) for a prompt's row counts: 32 soft tokens, a short prompt,
// soft tokens and prompt in one pass, and the ViT's 257 rows for
// comparison; it should reach the ViT's GFLOP/s from a few dozen rows on.
func BenchmarkPrefill(b *testing.B) {
	prev := threads()
	defer setThreads(prev)
	r := rand.New(rand.NewPCG(9, 9))
	const n, k = 10240, 2560
	w := makeMatrix(r, Q8_0, n, k)
	x := randF32(r, 257*k, 1)
	dst := make([]float32, 257*n)
	for _, m := range []int{16, 32, 48, 64, 257} {
		for _, th := range []int{1, 2} {
			b.Run(fmt.Sprintf("m%d/t%d", m, th), func(b *testing.B) {
				setThreads(th)
				tp.MatMulT(dst, x, m, w, nil)
				c0 := cpuTime()
				for b.Loop() {
					tp.MatMulT(dst, x, m, w, nil)
				}
				reportRate(b, 2*float64(m)*k*n, c0, "GFLOP/s")
			})
		}
	}
}
