package opt

import (
	"sync"
	"time"

	"github.com/blip2chat/blip2chat/engine/kernels"
)

// WeightBytesPerToken is the number of weight bytes one decoding step (one
// new token, only its logits) reads: every matrix of every block, the
// projections, the LM head, the norms and biases, one position row and one
// embedding row. Token generation is bound by memory bandwidth, so this
// divided by the time per token is the bandwidth achieved.
func (m *Model) WeightBytesPerToken() int64 {
	var n int64
	mat := func(w *kernels.Matrix) {
		if w == nil {
			return
		}
		if w.Type == kernels.F32 {
			n += 4 * int64(w.Rows) * int64(w.Cols)
		} else {
			n += int64(len(w.Raw))
		}
	}
	vec := func(v []float32) { n += 4 * int64(len(v)) }
	for i := range m.layers {
		L := &m.layers[i]
		for _, li := range []*linear{&L.q, &L.k, &L.v, &L.o, &L.up, &L.down} {
			mat(li.w)
			vec(li.b)
		}
		vec(L.attnNorm.w)
		vec(L.attnNorm.b)
		vec(L.ffnNorm.w)
		vec(L.ffnNorm.b)
	}
	mat(m.projIn)
	mat(m.projOut)
	mat(m.output)
	vec(m.outNorm.w)
	vec(m.outNorm.b)
	n += 4 * int64(m.hp.Hidden) // a position row
	if m.tokEmbd.Rows > 0 {
		n += matrixBytes(m.tokEmbd) / int64(m.tokEmbd.Rows) // an embedding row
	}
	return n
}

func matrixBytes(w *kernels.Matrix) int64 {
	if w.Type == kernels.F32 {
		return 4 * int64(w.Rows) * int64(w.Cols)
	}
	return int64(len(w.Raw))
}

// MeasureBandwidth estimates the memory read bandwidth, in bytes per
// second, that a streaming workload like token generation can reach: the
// best of passes passes summing a buffer of size bytes (well beyond the
// caches: use >= 256 MB) with threads goroutines over disjoint parts.
func MeasureBandwidth(size int64, threads, passes int) float64 {
	threads = max(threads, 1)
	passes = max(passes, 1)
	words := int(size / 8)
	buf := make([]uint64, words)
	for i := range buf {
		buf[i] = uint64(i) // touch every page so the reads hit memory
	}
	best := time.Duration(1<<63 - 1)
	var sink uint64
	for p := 0; p < passes; p++ {
		var wg sync.WaitGroup
		sums := make([]uint64, threads)
		start := time.Now()
		for t := 0; t < threads; t++ {
			lo, hi := t*words/threads, (t+1)*words/threads
			wg.Add(1)
			go func(t int) {
				defer wg.Done()
				sums[t] = sumWords(buf[lo:hi])
			}(t)
		}
		wg.Wait()
		best = min(best, time.Since(start))
		for _, s := range sums {
			sink += s
		}
	}
	if sink == 42 { // keep the sums alive
		println()
	}
	return float64(words*8) / best.Seconds()
}

// sumWords adds the words with eight independent accumulators, so that the
// loop is bound by loads, not by the add latency.
func sumWords(b []uint64) uint64 {
	var s0, s1, s2, s3, s4, s5, s6, s7 uint64
	i := 0
	for ; i+8 <= len(b); i += 8 {
		c := b[i : i+8 : i+8]
		s0 += c[0]
		s1 += c[1]
		s2 += c[2]
		s3 += c[3]
		s4 += c[4]
		s5 += c[5]
		s6 += c[6]
		s7 += c[7]
	}
	for ; i < len(b); i++ {
		s0 += b[i]
	}
	return s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7
}
