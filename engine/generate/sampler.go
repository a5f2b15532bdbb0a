package generate

import (
	"cmp"
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Sampler picks one token from a sequence's logits: llama.cpp's sampler
// chain written in Go, for every backend,
//
//	greedy (Temperature 0): penalty -> the most likely token
//	sampling: penalty -> top-k -> top-p -> min-p -> temperature -> draw
//
// where top-p keeps the smallest set of most likely tokens whose
// probabilities (at temperature 1, over what top-k kept) reach TopP, min-p
// drops tokens less likely than MinP times the most likely one, and the
// draw uses a Mersenne Twister seeded with Seed. The repetition penalty
// divides the positive logits (multiplies the negative ones) of the tokens
// in its history: the prompt's text tokens (Accept) and the tokens picked,
// the last RepeatLastN of them (0: all).
//
// Every step mirrors llama-sampler.cpp v0.4.0, including float32
// arithmetic, the order in which candidates are visited and the Mersenne
// Twister draw, so the same logits and seed pick the same tokens as
// llama.cpp's chain; only exact ties between logits may be ordered
// differently. It is not safe for concurrent use.
type Sampler struct {
	p      chain
	nVocab int
	seed   uint32 // the seed in use (drawn when p.Seed is randomSeed)
	rng    mt19937

	// repetition penalty history: a ring of the last RepeatLastN tokens
	// (every token when RepeatLastN is 0) and how often each occurs in it
	prev   []int32
	first  int
	counts map[int32]int

	cur    []tokenData
	sorted bool
	buf    []tokenData
}

// chain is Params as the sampler chain reads them: float32, as llama.cpp
// computes; the one place the settings change type.
type chain struct {
	Greedy        bool
	Temperature   float32 // <= 0: greedy
	TopK          int     // 0: off
	TopP          float32 // 0 or 1: off
	MinP          float32 // 0: off
	RepeatPenalty float32 // 0 or 1: off
	RepeatLastN   int     // 0: the whole sequence
	Seed          uint64  // randomSeed: drawn from the system at each Reset
}

// randomSeed asks for a new random seed (llama.cpp's LLAMA_DEFAULT_SEED).
const randomSeed uint64 = 0xFFFFFFFF

func chainOf(p Params) chain {
	c := chain{Greedy: !p.Sampling(), Temperature: float32(p.Temperature), TopK: p.TopK, TopP: float32(p.TopP),
		MinP: float32(p.MinP), RepeatPenalty: float32(p.RepetitionPenalty), RepeatLastN: p.RepeatLastN, Seed: randomSeed}
	if p.Seed >= 0 {
		c.Seed = uint64(p.Seed)
	}
	return c
}

// IsGreedy reports whether c always picks the most likely token.
func (c chain) IsGreedy() bool { return c.Greedy || c.Temperature <= 0 }

// Penalized reports whether the repetition penalty is on.
func (c chain) Penalized() bool { return c.RepeatPenalty != 0 && c.RepeatPenalty != 1 }

// NewSampler makes a sampler with p's temperature, top-k, top-p, min-p,
// repetition penalty and seed for a vocabulary of nVocab tokens.
func NewSampler(p Params, nVocab int) (*Sampler, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return newSampler(chainOf(p), nVocab)
}

func newSampler(c chain, nVocab int) (*Sampler, error) {
	if nVocab <= 0 {
		return nil, fmt.Errorf("sampling: vocabulary of %d tokens", nVocab)
	}
	s := &Sampler{p: c, nVocab: nVocab, counts: map[int32]int{}}
	s.Reset()
	return s, nil
}

// Seed is the seed of the random draw in use.
func (s *Sampler) Seed() uint32 { return s.seed }

// Step picks the next token of the one running sequence (Decoder).
func (s *Sampler) Step(logits [][]float32) ([]Next, error) {
	if len(logits) != 1 {
		return nil, fmt.Errorf("sampling: %d sequences, the sampler decodes one", len(logits))
	}
	id := s.SampleLogits(logits[0])
	if id < 0 {
		return nil, fmt.Errorf("sampling: %d logits for a vocabulary of %d (no logits to sample from?)", len(logits[0]), s.nVocab)
	}
	return []Next{{Parent: 0, ID: id}}, nil
}

type tokenData struct {
	id       int32
	logit, p float32
}

// SampleLogits picks a token from logits (NVocab values, not modified) and
// records it in the penalty history; -1 when logits are not NVocab values.
func (s *Sampler) SampleLogits(logits []float32) int32 {
	if len(logits) != s.nVocab {
		return -1
	}
	s.cur = s.cur[:0]
	for i, v := range logits {
		s.cur = append(s.cur, tokenData{id: int32(i), logit: v})
	}
	s.sorted = false
	s.penalties()
	var id int32
	if s.p.IsGreedy() {
		id = s.greedy()
	} else {
		if s.p.TopK > 0 {
			s.topK(s.p.TopK)
		}
		if s.p.TopP > 0 && s.p.TopP < 1 {
			s.topP(s.p.TopP)
		}
		if s.p.MinP > 0 {
			s.minP(s.p.MinP)
		}
		for i := range s.cur {
			s.cur[i].logit /= s.p.Temperature
		}
		id = s.dist()
	}
	s.Accept(id)
	return id
}

// Accept records id in the repetition penalty history (a prompt token).
func (s *Sampler) Accept(id int32) {
	n := s.p.RepeatLastN
	if !s.p.Penalized() || id < 0 || int(id) >= s.nVocab {
		return
	}
	s.counts[id]++
	if n <= 0 {
		return // the whole sequence: nothing leaves the history
	}
	if len(s.prev) < n {
		s.prev = append(s.prev, id)
		return
	}
	old := s.prev[s.first]
	if s.counts[old]--; s.counts[old] == 0 {
		delete(s.counts, old)
	}
	s.prev[s.first] = id
	s.first = (s.first + 1) % n
}

// Reset forgets the history and restarts the draw from the seed (a new
// random one for seed -1).
func (s *Sampler) Reset() {
	s.prev, s.first = s.prev[:0], 0
	clear(s.counts)
	s.seed = uint32(s.p.Seed)
	if s.p.Seed == randomSeed {
		s.seed = rand.Uint32()
	}
	s.rng.seed(s.seed)
}

func (s *Sampler) penalties() {
	if !s.p.Penalized() || len(s.counts) == 0 {
		return
	}
	pen := s.p.RepeatPenalty
	for i := range s.cur {
		if s.counts[s.cur[i].id] == 0 {
			continue
		}
		if s.cur[i].logit <= 0 {
			s.cur[i].logit *= pen
		} else {
			s.cur[i].logit /= pen
		}
	}
	s.sorted = false
}

func (s *Sampler) greedy() int32 {
	best := 0
	for i := 1; i < len(s.cur); i++ {
		if s.cur[i].logit > s.cur[best].logit {
			best = i
		}
	}
	return s.cur[best].id
}

// before orders candidates by descending logit (ties: lower id first).
func before(a, b tokenData) int {
	if c := cmp.Compare(b.logit, a.logit); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

// topSorted returns the k best of cur, sorted, in buf (cur is unchanged).
func (s *Sampler) topSorted(k int) []tokenData {
	k = min(k, len(s.cur))
	s.buf = s.buf[:0]
	if k*8 >= len(s.cur) {
		s.buf = append(s.buf, s.cur...)
		slices.SortFunc(s.buf, before)
		return s.buf[:k]
	}
	h := minHeap(s.buf)
	for _, t := range s.cur {
		if len(h) < k {
			heap.Push(&h, t)
		} else if before(t, h[0]) < 0 {
			h[0] = t
			heap.Fix(&h, 0)
		}
	}
	s.buf = h
	slices.SortFunc(s.buf, before)
	return s.buf
}

// minHeap keeps the worst of the best k at the top.
type minHeap []tokenData

func (h minHeap) Len() int           { return len(h) }
func (h minHeap) Less(i, j int) bool { return before(h[i], h[j]) > 0 }
func (h minHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *minHeap) Push(x any)        { *h = append(*h, x.(tokenData)) }
func (h *minHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (s *Sampler) topK(k int) {
	k = min(k, len(s.cur))
	if !s.sorted {
		top := s.topSorted(k)
		copy(s.cur, top)
	}
	s.cur = s.cur[:k]
	s.sorted = true
}

// maxLogit is the largest candidate logit: the first once sorted.
func (s *Sampler) maxLogit() float32 {
	m := s.cur[0].logit
	if !s.sorted {
		for _, t := range s.cur[1:] {
			m = max(m, t.logit)
		}
	}
	return m
}

// softmax sets p as llama_sampler_softmax_impl without sorting: float32
// sums in candidate order.
func (s *Sampler) softmax() {
	maxL := s.maxLogit()
	var sum float32
	for i := range s.cur {
		p := expf(s.cur[i].logit - maxL)
		s.cur[i].p = p
		sum += p
	}
	for i := range s.cur {
		s.cur[i].p /= sum
	}
}

func (s *Sampler) topP(p float32) {
	s.softmax()
	sorted := s.cur
	if !s.sorted {
		sorted = s.topSorted(len(s.cur))
	}
	last := len(sorted)
	var cum float32
	for i, t := range sorted {
		cum += t.p
		if cum >= p {
			last = i + 1
			break
		}
	}
	if !s.sorted {
		copy(s.cur, sorted[:last])
	}
	s.cur = s.cur[:last]
	s.sorted = true
}

func (s *Sampler) minP(p float32) {
	if len(s.cur) == 0 {
		return
	}
	if !s.sorted {
		maxL := float32(-math.MaxFloat32)
		for _, t := range s.cur {
			maxL = max(maxL, t.logit)
		}
		minL := maxL + logf(p)
		kept := s.cur[:0]
		for _, t := range s.cur {
			if t.logit >= minL {
				kept = append(kept, t)
			}
		}
		if len(kept) > 0 {
			s.cur = kept
			return
		}
		// Nothing kept (NaN logits; nothing was overwritten): the sorted
		// rule below, as llama.cpp falls back to.
		copy(s.cur, s.topSorted(len(s.cur)))
		s.sorted = true
	}
	minL := s.cur[0].logit + logf(p)
	i := 1
	for ; i < len(s.cur); i++ {
		if s.cur[i].logit < minL {
			break
		}
	}
	s.cur = s.cur[:i]
}

func (s *Sampler) dist() int32 {
	if len(s.cur) == 1 {
		s.rng.canonical() // llama.cpp draws even then
		return s.cur[0].id
	}
	maxL := s.maxLogit()
	var sum float64
	for i := range s.cur {
		p := expf(s.cur[i].logit - maxL)
		s.cur[i].p = p
		sum += float64(p)
	}
	target := sum * s.rng.canonical()
	var run float64
	for _, t := range s.cur {
		run += float64(t.p)
		if run >= target {
			return t.id
		}
	}
	return s.cur[len(s.cur)-1].id
}

func expf(x float32) float32 { return float32(math.Exp(float64(x))) }
func logf(x float32) float32 { return float32(math.Log(float64(x))) }
