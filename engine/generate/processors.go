package generate

import (
	"container/heap"
	"math"
	"slices"
)

// The logits processors, each with the meaning of the transformers class it
// is named after, applied in the order generate() builds them
// (_get_logits_processor): repetition penalty, n-gram ban, min-new-tokens EOS
// mask, then, when sampling, temperature, top-k, top-p, min-p. Greedy and
// sampling process the raw logits; beam search processes log_softmax(logits)
// (transformers' _beam_search does), so the repetition penalty multiplies
// log-probabilities there. Everything is float32, as in transformers.

// negInf is what transformers writes for a banned token.
var negInf = float32(math.Inf(-1))

// history is what the processors see of one hypothesis: transformers'
// input_ids, that is the prompt's token ids (decoder-only: BOS + text, never
// the soft tokens; T5: the decoder start token) followed by the new tokens.
type history struct {
	context []int32 // before the first new token
	gen     []int32 // new tokens
}

func (h history) len() int { return len(h.context) + len(h.gen) }

func (h history) at(i int) int32 {
	if i < len(h.context) {
		return h.context[i]
	}
	return h.gen[i-len(h.context)]
}

// processor applies the processors that do not depend on sampling to
// scores for one hypothesis.
type processor struct {
	penalty    float32 // repetition_penalty; 1: off
	lastN      int     // 0: the whole history (transformers); > 0: its last lastN tokens (llama.cpp)
	ngram      int     // no_repeat_ngram_size; 0: off
	minNew     int     // min_new_tokens
	eos        []int32
	scratchIDs []int32
}

func newProcessor(p Params, eos []int32) *processor {
	pen := float32(p.RepetitionPenalty)
	if p.RepetitionPenalty == 0 {
		pen = 1
	}
	return &processor{penalty: pen, lastN: p.RepeatLastN, ngram: p.NoRepeatNgramSize,
		minNew: p.MinNewTokens, eos: eos}
}

// apply runs RepetitionPenalty, NoRepeatNGram and MinNewTokensLength on
// scores (one row of the vocabulary) in transformers' order.
func (pr *processor) apply(scores []float32, h history) {
	if pr.penalty != 1 {
		pr.repetition(scores, h)
	}
	if pr.ngram > 0 {
		NoRepeatNGram(scores, h, pr.ngram)
	}
	if len(h.gen) < pr.minNew {
		for _, id := range pr.eos {
			if int(id) < len(scores) {
				scores[id] = negInf
			}
		}
	}
}

func (pr *processor) repetition(scores []float32, h history) {
	from := 0
	if pr.lastN > 0 {
		from = max(0, h.len()-pr.lastN)
	}
	ids := pr.scratchIDs[:0]
	for i := from; i < h.len(); i++ {
		ids = append(ids, h.at(i))
	}
	pr.scratchIDs = ids
	RepetitionPenalty(scores, ids, pr.penalty)
}

// RepetitionPenalty is transformers' RepetitionPenaltyLogitsProcessor: the
// score of every distinct token in ids is multiplied by penalty when it is
// negative and divided by it otherwise. Ids outside scores are ignored.
func RepetitionPenalty(scores []float32, ids []int32, penalty float32) {
	if penalty == 1 {
		return
	}
	// transformers gathers every id's score, then scatters the penalised
	// values: a repeated id is penalised once.
	done := make(map[int32]struct{}, len(ids))
	for _, id := range ids {
		if id < 0 || int(id) >= len(scores) {
			continue
		}
		if _, ok := done[id]; ok {
			continue
		}
		done[id] = struct{}{}
		if s := scores[id]; s < 0 {
			scores[id] = s * penalty
		} else {
			scores[id] = s / penalty
		}
	}
}

// NoRepeatNGram is transformers' NoRepeatNGramLogitsProcessor: a token that
// would complete an n-gram already present in the hypothesis (prompt ids
// included) gets -Inf.
func NoRepeatNGram(scores []float32, h history, n int) {
	l := h.len()
	if n <= 0 || l+1 < n {
		return
	}
	// The n-1 tokens the next one would follow.
	start := l + 1 - n
	for i := 0; i+n <= l; i++ {
		match := true
		for k := 0; k < n-1; k++ {
			if h.at(i+k) != h.at(start+k) {
				match = false
				break
			}
		}
		if match {
			if id := h.at(i + n - 1); id >= 0 && int(id) < len(scores) {
				scores[id] = negInf
			}
		}
	}
}

// LogSoftmax writes log_softmax(logits) into dst (which may be logits), in
// float64 and rounded to float32 as torch's float32 kernel does to within a
// unit in the last place.
func LogSoftmax(dst, logits []float32) {
	m := math.Inf(-1)
	for _, v := range logits {
		m = max(m, float64(v))
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - m)
	}
	lse := m + math.Log(sum)
	for i, v := range logits {
		dst[i] = float32(float64(v) - lse)
	}
}

// argmax is the first index of the largest value (torch.argmax).
func argmax(s []float32) int32 {
	best := 0
	for i, v := range s {
		if v > s[best] {
			best = i
		}
	}
	return int32(best)
}

// The sampling warpers, applied after the processors when Temperature > 0,
// in generate()'s order: TemperatureLogitsWarper, TopKLogitsWarper,
// TopPLogitsWarper, MinPLogitsWarper (min_tokens_to_keep 1); then softmax
// and a draw (torch.multinomial). Masked tokens hold -Inf, so each warper
// after top-k works on the few finite scores left.

// Temperature divides scores by t.
func Temperature(scores []float32, t float32) {
	if t == 1 {
		return
	}
	for i := range scores {
		scores[i] /= t
	}
}

// TopK keeps the k highest scores (every token tied with the k-th too, as
// transformers' `scores < topk(...)[-1]` test does) and sets the rest to -Inf.
func TopK(scores []float32, k int) {
	if k <= 0 || k >= len(scores) {
		return
	}
	// The k-th largest: a min-heap of the k largest seen.
	h := make(minHeap32, 0, k)
	for _, v := range scores {
		switch {
		case len(h) < k:
			heap.Push(&h, v)
		case v > h[0]:
			h[0] = v
			heap.Fix(&h, 0)
		}
	}
	kth := h[0]
	for i, v := range scores {
		if v < kth {
			scores[i] = negInf
		}
	}
}

type minHeap32 []float32

func (h minHeap32) Len() int           { return len(h) }
func (h minHeap32) Less(i, j int) bool { return h[i] < h[j] }
func (h minHeap32) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *minHeap32) Push(x any)        { *h = append(*h, x.(float32)) }
func (h *minHeap32) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// finite returns the indices of the scores above -Inf.
func finite(scores []float32) []int {
	idx := make([]int, 0, 64)
	for i, v := range scores {
		if v > negInf {
			idx = append(idx, i)
		}
	}
	return idx
}

// TopP keeps the smallest set of most likely tokens whose probability
// reaches p: transformers sorts ascending and drops the tokens whose
// cumulative probability is at most 1-p, always keeping the most likely.
// Masked tokens (probability 0) are dropped by that rule anyway: only the
// finite scores are sorted.
func TopP(scores []float32, p float64) {
	if p >= 1 {
		return
	}
	idx := finite(scores)
	if len(idx) == 0 {
		return
	}
	// Ascending by score; stable so ties keep index order, like torch.sort.
	slices.SortStableFunc(idx, func(a, b int) int { return -cmpDesc(scores[a], scores[b]) })
	m := float64(scores[idx[len(idx)-1]])
	var sum float64
	for _, i := range idx {
		sum += math.Exp(float64(scores[i]) - m)
	}
	var cum float64
	for _, i := range idx[:len(idx)-1] { // min_tokens_to_keep = 1
		cum += math.Exp(float64(scores[i])-m) / sum
		if float32(cum) > float32(1-p) {
			break
		}
		scores[i] = negInf
	}
}

// MinP drops the tokens whose probability is below p times the largest
// one's (p_i < p * p_max, that is s_i < s_max + log p), keeping at least
// the most likely.
func MinP(scores []float32, p float64) {
	if p <= 0 {
		return
	}
	best := argmax(scores)
	limit := float64(scores[best]) + math.Log(p)
	for i, v := range scores {
		if float64(v) < limit && int32(i) != best {
			scores[i] = negInf
		}
	}
}

// warp applies the sampling warpers of p to scores.
func warp(scores []float32, p Params) {
	Temperature(scores, float32(p.Temperature))
	TopK(scores, p.TopK)
	TopP(scores, p.TopP)
	MinP(scores, p.MinP)
}

// draw picks a token from softmax(scores) with u, uniform in [0, 1).
func draw(scores []float32, u float64) int32 {
	idx := finite(scores)
	if len(idx) == 0 {
		return argmax(scores) // NaN logits: nothing to draw from
	}
	m := math.Inf(-1)
	for _, i := range idx {
		m = max(m, float64(scores[i]))
	}
	var sum float64
	for _, i := range idx {
		sum += math.Exp(float64(scores[i]) - m)
	}
	target := u * sum
	var cum float64
	for _, i := range idx {
		cum += math.Exp(float64(scores[i]) - m)
		if target < cum {
			return int32(i)
		}
	}
	return int32(idx[len(idx)-1]) // rounding left target above the total
}

// cmpDesc orders larger values first.
func cmpDesc(a, b float32) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}
