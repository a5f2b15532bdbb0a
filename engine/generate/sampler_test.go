package generate

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestMT19937(t *testing.T) {
	// The C++ standard ([rand.predef]) requires the 10000th output of a
	// default-constructed mt19937 (seed 5489) to be 4123659995.
	var m mt19937
	m.seed(5489)
	var v uint32
	for range 10000 {
		v = m.next()
	}
	if v != 4123659995 {
		t.Fatalf("10000th output %d, want 4123659995", v)
	}
	m.seed(5489)
	if first := m.next(); first != 3499211612 {
		t.Fatalf("first output %d, want 3499211612", first)
	}
	for range 1000 {
		if c := m.canonical(); c < 0 || c >= 1 {
			t.Fatalf("canonical %v outside [0,1)", c)
		}
	}
}

func randomLogits(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	l := make([]float32, n)
	for i := range l {
		l[i] = float32(r.NormFloat64() * 3)
	}
	return l
}

func argmax(l []float32) int32 {
	best := 0
	for i, v := range l {
		if v > l[best] {
			best = i
		}
	}
	return int32(best)
}

func softmax64(l []float32, temp float64) []float64 {
	m := math.Inf(-1)
	for _, v := range l {
		m = math.Max(m, float64(v))
	}
	p := make([]float64, len(l))
	var s float64
	for i, v := range l {
		p[i] = math.Exp((float64(v) - m) / temp)
		s += p[i]
	}
	for i := range p {
		p[i] /= s
	}
	return p
}

func TestSamplerGreedy(t *testing.T) {
	for seed := range uint64(20) {
		l := randomLogits(seed, 1000)
		for _, p := range []chain{{Greedy: true}, {Temperature: 0}, {Temperature: -1, TopK: 5}, {Temperature: 1, TopK: 1}} {
			s, err := newSampler(p, len(l))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := s.SampleLogits(l), argmax(l); got != want {
				t.Errorf("%+v: picked %d, want argmax %d", p, got, want)
			}
		}
	}
}

// The draw must follow the softmax of logits/temperature restricted to the
// kept set: check frequencies against it over many draws.
func TestSamplerDistribution(t *testing.T) {
	l := []float32{2, 1.5, 1, 0.5, 0, -1, -3, -8}
	cases := []struct {
		name string
		p    chain
		keep int // the kept candidates are the `keep` most likely
		temp float64
	}{
		{"plain", chain{Temperature: 1}, 8, 1},
		{"hot", chain{Temperature: 2}, 8, 2},
		{"top-k 3", chain{Temperature: 1, TopK: 3}, 3, 1},
		// probabilities at T=1: .419 .254 .154 .093 .057 .021 .003 .00002
		{"top-p 0.6", chain{Temperature: 1, TopP: 0.6}, 2, 1}, // .419 < .6 <= .419+.254
		{"top-p 0.7", chain{Temperature: 1, TopP: 0.7}, 3, 1},
		{"min-p 0.2", chain{Temperature: 1, MinP: 0.2}, 4, 1}, // e^-1.5=.22 kept, e^-2=.135 not
		{"all", chain{Temperature: 0.7, TopK: 6, TopP: 0.99, MinP: 0.01}, 6, 0.7},
	}
	const n = 40000
	for _, c := range cases {
		c.p.Seed = 1234
		s, err := newSampler(c.p, len(l))
		if err != nil {
			t.Fatal(err)
		}
		counts := make([]int, len(l))
		for range n {
			counts[s.SampleLogits(l)]++
		}
		want := softmax64(l[:c.keep], c.temp)
		for i := range l {
			var w float64
			if i < c.keep {
				w = want[i]
			}
			got := float64(counts[i]) / n
			if w == 0 && counts[i] != 0 {
				t.Errorf("%s: token %d drawn %d times, should have been filtered", c.name, i, counts[i])
			}
			if sd := math.Sqrt(w * (1 - w) / n); math.Abs(got-w) > 5*sd+1e-4 {
				t.Errorf("%s: token %d frequency %.4f, want %.4f", c.name, i, got, w)
			}
		}
	}
}

func TestSamplerSeed(t *testing.T) {
	l := randomLogits(3, 500)
	draw := func(p chain, s *Sampler) []int32 {
		var out []int32
		for range 50 {
			out = append(out, s.SampleLogits(l))
		}
		return out
	}
	p := chain{Temperature: 1.5, Seed: 99}
	a, _ := newSampler(p, len(l))
	b, _ := newSampler(p, len(l))
	x, y := draw(p, a), draw(p, b)
	if !equalIDs(x, y) {
		t.Fatal("same seed gave different draws")
	}
	a.Reset()
	if z := draw(p, a); !equalIDs(x, z) {
		t.Fatal("Reset did not restart the draw")
	}
	p.Seed = 100
	c, _ := newSampler(p, len(l))
	if equalIDs(x, draw(p, c)) {
		t.Fatal("another seed gave the same 50 draws")
	}
	p.Seed = randomSeed
	r1, _ := newSampler(p, len(l))
	r2, _ := newSampler(p, len(l))
	if r1.Seed() == r2.Seed() && equalIDs(draw(p, r1), draw(p, r2)) {
		t.Fatal("two random seeds gave the same draws")
	}
}

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSamplerRepeatPenalty(t *testing.T) {
	// Token 0 leads; once seen, a penalty of 2 halves its logit (positive)
	// and doubles a negative one, so token 1 wins.
	l := []float32{4, 3, -1, -0.5}
	p := chain{Greedy: true, RepeatPenalty: 2, RepeatLastN: 2}
	s, _ := newSampler(p, len(l))
	if got := s.SampleLogits(l); got != 0 {
		t.Fatalf("first pick %d, want 0", got)
	}
	// The pick was recorded: 0 is now penalized (4/2 = 2 < 3).
	if got := s.SampleLogits(l); got != 1 {
		t.Fatalf("second pick %d, want 1", got)
	}
	// History [0 1]: both penalized: 2 vs 1.5 -> 0.
	if got := s.SampleLogits(l); got != 0 {
		t.Fatalf("third pick %d, want 0", got)
	}
	// History window 2 = [1 0]; accepting 3 and 3 pushes 0 and 1 out.
	s.Accept(3)
	s.Accept(3)
	if got := s.SampleLogits(l); got != 0 {
		t.Fatalf("after the window moved on, pick %d, want 0", got)
	}
	// Negative logits are multiplied: token 3's -0.6 becomes -1.2, below
	// token 2's -1.
	neg := []float32{-5, -5, -1, -0.6}
	s2, _ := newSampler(chain{Greedy: true, RepeatPenalty: 2, RepeatLastN: 4}, 4)
	s2.Accept(3)
	if got := s2.SampleLogits(neg); got != 2 {
		t.Fatalf("penalized negative logit: pick %d, want 2 (-1 > -1.2)", got)
	}
	s2.Reset()
	if got := s2.SampleLogits(neg); got != 3 {
		t.Fatalf("after Reset pick %d, want 3", got)
	}
}

func TestSamplerBadInput(t *testing.T) {
	s, _ := newSampler(chain{Greedy: true}, 4)
	if got := s.SampleLogits([]float32{1, 2}); got != -1 {
		t.Errorf("wrong-size logits gave %d, want -1", got)
	}
	if _, err := newSampler(chain{Greedy: true}, 0); err == nil {
		t.Error("empty vocabulary accepted")
	}
	// NaN logits must not crash or pick outside the vocabulary.
	nan := float32(math.NaN())
	s2, _ := newSampler(chain{Temperature: 1, MinP: 0.1, Seed: 1}, 3)
	if got := s2.SampleLogits([]float32{nan, nan, nan}); got < 0 || got > 2 {
		t.Errorf("NaN logits gave %d", got)
	}
}

// NewSampler takes Params: it refuses bad ones, and -1 is a random seed.
func TestNewSampler(t *testing.T) {
	p := DefaultParams()
	p.TopP = 2
	if _, err := NewSampler(p, 10); err == nil || !strings.Contains(err.Error(), "top_p") {
		t.Errorf("top_p 2: %v", err)
	}
	p = DefaultParams()
	p.Temperature, p.Seed = 1, -1
	a, _ := NewSampler(p, 10)
	b, _ := NewSampler(p, 10)
	p.Seed = 7
	c, _ := NewSampler(p, 10)
	if a.Seed() == b.Seed() || c.Seed() != 7 {
		t.Errorf("seeds %d %d (random), %d (7)", a.Seed(), b.Seed(), c.Seed())
	}
}

// A repetition penalty over the whole sequence (RepeatLastN 0) forgets
// nothing.
func TestSamplerWholeSequencePenalty(t *testing.T) {
	l := []float32{4, 3, -1, -0.5}
	s, _ := newSampler(chain{Greedy: true, RepeatPenalty: 2}, len(l))
	s.Accept(0)
	for range 100 {
		s.Accept(3)
	}
	if got := s.SampleLogits(l); got != 1 {
		t.Errorf("pick %d, want 1 (token 0 seen 101 tokens ago is still penalised)", got)
	}
}

func BenchmarkSampler(b *testing.B) {
	l := randomLogits(1, 50272)
	s, _ := newSampler(chain{Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1.1, RepeatLastN: 64, Seed: randomSeed}, len(l))
	for b.Loop() {
		s.SampleLogits(l)
	}
}

// Any logits and in-range parameters give a token of the vocabulary.
func FuzzSampler(f *testing.F) {
	f.Add([]byte{1, 2, 3, 200, 7}, float32(0.8), 40, float32(0.9), float32(0.05), float32(1.1), 8, uint32(1))
	f.Fuzz(func(t *testing.T, raw []byte, temp float32, topK int, topP, minP, pen float32, lastN int, seed uint32) {
		if len(raw) == 0 {
			return
		}
		logits := make([]float32, len(raw))
		for i, b := range raw {
			logits[i] = float32(int8(b)) / 8
		}
		if b := raw[0]; b%7 == 0 {
			logits[int(b)%len(logits)] = float32(math.Inf(-1))
		}
		p := Params{Temperature: float64(temp), TopK: topK, TopP: float64(topP), MinP: float64(minP),
			RepetitionPenalty: float64(pen), RepeatLastN: lastN, Seed: int64(seed)}
		if p.Validate() != nil || p.TopK > 1<<20 || p.RepeatLastN > 1<<16 {
			return
		}
		s, err := NewSampler(p, len(logits))
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if id := s.SampleLogits(logits); id < 0 || int(id) >= len(logits) {
				t.Fatalf("%+v: token %d of %d", p, id, len(logits))
			}
		}
	})
}
