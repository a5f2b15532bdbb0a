package bench

import (
	"strings"
	"sync"
	"time"

	"github.com/blip2chat/blip2chat/weights/gguf"
)

// DecodeBytesPerToken estimates the weight bytes one decoded token reads from
// the language model file at path: every matrix of the decoder and the
// output head. It leaves out an input embedding table that is not also the
// head (a token reads one row of it) and a T5 encoder's tensors (run once
// per prompt). Decoding is bound by this traffic, so bytes per token times
// tokens per second, against the machine's bandwidth, says how close to
// the limit decoding runs.
func DecodeBytesPerToken(path string) (int64, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	_, _, hasHead := f.Tensor("output.weight")
	var n int64
	for _, t := range f.Tensors {
		switch {
		case strings.HasPrefix(t.Name, "enc."):
			continue
		case hasHead && t.Name == "token_embd.weight":
			continue
		}
		n += int64(t.Size())
	}
	return n, nil
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
