package opt

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/engine/bench"
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/weights/gguf"
)

// The decoding benchmarks run a synthetic model of a real OPT's shape (see
// cachedSynthetic: generated once into the user cache dir; opt-2.7b q8_0 is
// 2.9 GB) and report, besides ns/op (one token), tokens/s, the weight
// bytes read per token, the bandwidth that implies and its fraction of the
// machine's read bandwidth (bench.MeasureBandwidth over 1 GB, the best of
// runs before and after decoding). Run them alone:
//
//	go test -run '^$' -bench 'Decode/opt-2.7b' -benchtime 10x ./engine/lm/opt/

var (
	bwOnce sync.Once
	bw     float64
)

// machineBandwidth measures the read bandwidth once per process.
func machineBandwidth(threads int) float64 {
	bwOnce.Do(func() { bw = bench.MeasureBandwidth(1<<30, threads, 5) })
	return bw
}

func BenchmarkDecode(b *testing.B) {
	for _, c := range []struct {
		name string
		typ  gguf.Type
	}{
		{"opt-125m", gguf.TypeQ8_0},
		{"opt-2.7b", gguf.TypeQ8_0},
	} {
		b.Run(c.name+"/"+c.typ.String(), func(b *testing.B) { benchDecode(b, c.name, c.typ) })
	}
}

func openSynthetic(b *testing.B, name string, typ gguf.Type) *Model {
	start := time.Now()
	path := cachedSynthetic(b, name, typ)
	if d := time.Since(start); d > time.Second {
		b.Logf("wrote %s in %v", path, d.Round(time.Millisecond))
	}
	m, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

// benchDecode: 32 soft tokens and a 16-token prompt, then one token per
// iteration (greedy argmax fed back), as in a BLIP-2 answer.
func benchDecode(b *testing.B, name string, typ gguf.Type) {
	m := openSynthetic(b, name, typ)
	threads := lm.DefaultThreads()
	machine := machineBandwidth(threads)
	c, err := m.newContext(lm.ContextOptions{Threads: threads})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	E := m.Info().NEmbd
	r := rand.New(rand.NewPCG(1, 2))
	soft := make([]float32, 32*E)
	for i := range soft {
		soft[i] = float32(r.NormFloat64())
	}
	prompt := make([]int32, 16)
	for i := range prompt {
		prompt[i] = int32(4 + r.IntN(m.Info().NVocab-4))
	}
	prefill := func() {
		if err := c.Truncate(0); err != nil {
			b.Fatal(err)
		}
		if err := c.AppendEmbeddings(soft, 32, false); err != nil {
			b.Fatal(err)
		}
		if err := c.AppendTokens(prompt, false); err != nil {
			b.Fatal(err)
		}
	}
	perTokenBytes, err := bench.DecodeBytesPerToken(m.path)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	prefill()
	b.Logf("%s %s: prompt of 48 rows in %v; weights read per token %.3g GB; machine bandwidth %.3g GB/s (%d threads)",
		name, typ, time.Since(start).Round(time.Millisecond), float64(perTokenBytes)/1e9, machine/1e9, threads)

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if c.Pos() == c.NCtx() {
			b.StopTimer()
			prefill()
			b.StartTimer()
		}
		id := argmax(c.Logits(-1))
		if err := c.AppendTokens([]int32{id}, false); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	// The machine is shared: measure again after and keep the best.
	machine = max(machine, bench.MeasureBandwidth(1<<30, threads, 3))
	perToken := b.Elapsed().Seconds() / float64(b.N)
	achieved := float64(perTokenBytes) / perToken
	b.ReportMetric(1/perToken, "tok/s")
	b.ReportMetric(achieved/1e9, "GB/s")
	b.ReportMetric(achieved/machine, "bw-fraction")
}

func argmax(v []float32) int32 {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return int32(best)
}

// BenchmarkPrefill is a new image's prompt at OPT-2.7b's shape: 32 soft
// tokens and a 32-token prompt, as two Appends (the soft tokens, then the
// text) and as one AppendPrompt; it reports prompt rows per second and
// GFLOP/s (2 per multiply-add of the block matrices and the last row's
// head), to compare with the ViT's int8 GEMM.
//
//	go test -run '^$' -bench 'Prefill' -benchtime 5x ./engine/lm/opt/
func BenchmarkPrefill(b *testing.B) {
	m := openSynthetic(b, "opt-2.7b", gguf.TypeQ8_0)
	c, err := m.newContext(lm.ContextOptions{Threads: lm.DefaultThreads()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	hp := m.Hyper()
	const q, n = 32, 32
	r := rand.New(rand.NewPCG(3, 4))
	soft := make([]float32, q*hp.WordEmbed)
	for i := range soft {
		soft[i] = float32(r.NormFloat64())
	}
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(4 + r.IntN(hp.Vocab-4))
	}
	H, F := int64(hp.Hidden), int64(hp.FFN)
	flop := 2*int64(q+n)*int64(hp.Layers)*(4*H*H+2*H*F) + 2*H*int64(hp.Vocab)
	for _, tc := range []struct {
		name string
		run  func() error
	}{
		{"two-appends", func() error {
			if err := c.AppendEmbeddings(soft, q, false); err != nil {
				return err
			}
			return c.AppendTokens(ids, false)
		}},
		{"one-pass", func() error { return c.AppendPrompt(soft, q, ids, false) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if err := c.Truncate(0); err != nil {
					b.Fatal(err)
				}
				if err := tc.run(); err != nil {
					b.Fatal(err)
				}
			}
			s := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(float64(q+n)/s, "rows/s")
			b.ReportMetric(float64(flop)/s/1e9, "GFLOP/s")
		})
	}
}
