//go:build unix

package index

import (
	"encoding/binary"
	"syscall"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/engine/kernels"
	"github.com/blip2chat/blip2chat/weights/dtype"
)

// cpuTime is the process's user+system CPU time: the benchmarks report
// CPU-ms per query too, which stays meaningful on a shared machine.
func cpuTime() time.Duration {
	var r syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &r) != nil {
		return 0
	}
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}

// benchRank times Rank's work over 10,000 images of the real model's 32 x
// 256 embeddings (what `bench --index` calls query/rank): scan runs the
// first pass alone on a matrix of the given type (F16: the previous
// version's scan), else the whole Rank.
func benchRank(b *testing.B, scan kernels.DType) {
	const n, q, e = 10000, 32, 256
	emb := randomEmbeddings(n, q, e, 3)
	text := randomEmbeddings(1, 1, e, 4).Data
	pool := kernels.NewPool(1)
	defer pool.Close()
	score := func(scores, text []float32, w *kernels.Matrix) { pool.MatMulT(scores, text, 1, w, nil) }
	var w *kernels.Matrix
	switch scan {
	case kernels.F16:
		raw := make([]byte, 2*len(emb.Data))
		for i, x := range emb.Data {
			binary.LittleEndian.PutUint16(raw[2*i:], dtype.F32ToF16(x))
		}
		w = &kernels.Matrix{Type: kernels.F16, Rows: n * q, Cols: e, Raw: raw}
	case kernels.Q8_0:
		w = emb.scanMatrix().m
	default:
		emb.Rank(text, 10, score) // builds the int8 copy
	}
	dots := make([]float32, n*q)
	b.ResetTimer()
	cpu := cpuTime()
	for range b.N {
		if w != nil {
			score(dots, text, w)
		} else if len(emb.Rank(text, 10, score)) != 10 {
			b.Fatal("not 10 hits")
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu)/1e6/float64(b.N), "cpu-ms/op")
}

func BenchmarkRank10k(b *testing.B)     { benchRank(b, kernels.F32) }
func BenchmarkScanF16_10k(b *testing.B) { benchRank(b, kernels.F16) }
func BenchmarkScanQ8_10k(b *testing.B)  { benchRank(b, kernels.Q8_0) }
