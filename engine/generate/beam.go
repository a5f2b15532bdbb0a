package generate

import (
	"container/heap"
	"context"
	"errors"
	"math"
	"slices"

	"github.com/blip2chat/blip2chat/engine/lm"
)

// Beam search as transformers 5's vectorized _beam_search does it (and, on
// every case in testdata/golden, as 4.47's BeamSearchScorer did):
//
//   - each running beam's logits become log_softmax, then the processors
//     (so the repetition penalty multiplies log-probabilities);
//   - the candidates are the (1 + number of stop tokens) * num_beams best
//     (running score + log-prob) over all beams and tokens; the first step
//     sees one beam with score 0 and num_beams-1 copies with -1e9;
//   - a candidate "finishes" when its token is a stop token or the step is
//     the last (max_new_tokens); finished candidates ranked below num_beams
//     are dropped, the others are scored sum / length^length_penalty with
//     length = new tokens including the stop token, and the best num_beams
//     finished hypotheses are kept;
//   - the best num_beams unfinished candidates run on;
//   - search ends at max_new_tokens, or once num_beams hypotheses are
//     finished and (early_stopping true) at once, (false) when the best
//     running score / current length^lp cannot beat the worst kept one,
//     ("never") the same with max_new_tokens as the length when lp > 0.
//
// Scores are float32 sums as in transformers.

// scoreNegInf is transformers' stand-in for an impossible beam.
const scoreNegInf = float32(-1e9)

type hyp struct {
	ids   []int32
	toks  []TokenProb // how sure the model was of each of ids
	end   int32
	sum   float32 // running sum of processed log-probs (end token included)
	score float32 // sum / length^lp (finished only)
}

// candidate is one (beam, token) continuation.
type candidate struct {
	score float32 // running score + log-prob
	beam  int
	token int32
	flat  int // beam*V + token: the tie order
}

// candHeap is a min-heap on (score, -flat): the worst candidate on top.
type candHeap []candidate

func (h candHeap) Len() int { return len(h) }
func (h candHeap) Less(i, j int) bool {
	if h[i].score != h[j].score {
		return h[i].score < h[j].score
	}
	return h[i].flat > h[j].flat
}
func (h candHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *candHeap) Push(x any)   { *h = append(*h, x.(candidate)) }
func (h *candHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// better orders candidates best first: higher score, then lower flat index.
func better(a, b candidate) int {
	if a.score != b.score {
		return cmpDesc(a.score, b.score)
	}
	return a.flat - b.flat
}

// lengthNorm is transformers' `x / (length ** length_penalty)` on a float32
// tensor.
func lengthNorm(x float32, length int, lp float64) float32 {
	return x / float32(math.Pow(float64(length), lp))
}

// topCandidates returns the k best continuations of the beams whose
// log-probs are rows[b] and running scores sums[b].
func topCandidates(rows [][]float32, sums []float32, k int) []candidate {
	h := make(candHeap, 0, k+1)
	for b, row := range rows {
		V := len(row)
		s := sums[b]
		for t, lp := range row {
			c := candidate{score: s + lp, beam: b, token: int32(t), flat: b*V + t}
			if len(h) < k {
				heap.Push(&h, c)
			} else if better(c, h[0]) < 0 {
				h[0] = c
				heap.Fix(&h, 0)
			}
		}
	}
	out := []candidate(h)
	slices.SortFunc(out, better)
	return out
}

// addFinished merges hypothesis f into the kept list (best first, at most
// n): transformers keeps the top n of old and new by score.
func addFinished(kept []hyp, f hyp, n int) []hyp {
	i := len(kept)
	for i > 0 && kept[i-1].score < f.score {
		i--
	}
	if i >= n {
		return kept
	}
	kept = slices.Insert(kept, i, f)
	if len(kept) > n {
		kept = kept[:n]
	}
	return kept
}

func beamSearch(ctx context.Context, m seqs, p Params, context []int32, eos []int32, onStep func(progress), tr tracer) (decoded, error) {
	n := p.Beams()
	lp := p.LengthPenalty
	maxNew := p.MaxTokens
	pr := newProcessor(p, eos)
	keep := max(2, 1+len(eos)) * n

	running := []hyp{{end: -1}} // one live beam: the prompt
	var finished []hyp          // best first, at most n
	result := func(stop lm.StopReason) decoded {
		// Stopped early (cancelled, context full): the running beams
		// compete at their current length, as 4.47's finalize did.
		all := slices.Clone(finished)
		if stop != lm.StopEOG && stop != lm.StopMaxTokens {
			for _, r := range running {
				if len(r.ids) == 0 {
					continue
				}
				r.score = lengthNorm(r.sum, len(r.ids), lp)
				all = addFinished(all, r, n)
			}
		}
		if tr.kept != nil {
			tr.kept(all)
		}
		out := decoded{stop: stop}
		for i := range min(len(all), max(1, p.NumReturnSequences)) {
			h := all[i]
			out.seqs = append(out.seqs, Sequence{IDs: h.ids, Tokens: h.toks, End: h.end,
				LogProb: float64(h.sum), Score: float64(h.score)})
		}
		if len(out.seqs) == 0 {
			out.seqs = []Sequence{{End: -1}}
		}
		if stop == lm.StopMaxTokens && out.seqs[0].End >= 0 {
			out.stop = lm.StopEOG
		}
		return out
	}
	if maxNew == 0 {
		return result(lm.StopMaxTokens), nil
	}

	var rows, bufs [][]float32 // bufs: a log-prob row per running beam, reused
	for step := 1; ; step++ {
		if err := ctx.Err(); err != nil {
			return result(lm.StopCancelled), err
		}
		// b. processed log-probs of every running beam.
		rows = rows[:0]
		sums := make([]float32, 0, n)
		raw := make([][]float32, len(running)) // valid until Reorder/Step
		dists := make([]distribution, len(running))
		for b, r := range running {
			logits := m.Logits(b)
			if logits == nil {
				return result(lm.StopNone), errNoLogits
			}
			raw[b], dists[b] = logits, summarize(logits)
			if len(bufs) <= b {
				bufs = append(bufs, nil)
			}
			bufs[b] = slices.Grow(bufs[b][:0], len(logits))[:len(logits)]
			row := bufs[b]
			LogSoftmax(row, logits)
			pr.apply(row, history{context, r.ids})
			rows = append(rows, row)
			sums = append(sums, r.sum)
		}
		if step == 1 {
			// transformers starts num_beams identical beams, all but the
			// first at -1e9, so that the first step draws from one beam.
			for len(rows) < n {
				rows = append(rows, rows[0])
				sums = append(sums, scoreNegInf)
			}
		}
		// c. the best continuations over all beams.
		cands := topCandidates(rows, sums, keep)
		if tr.beam != nil {
			tr.beam(step, cands)
		}
		last := step >= maxNew
		beamOf := func(c candidate) hyp { // the hypothesis c extends
			if c.beam < len(running) {
				return running[c.beam]
			}
			return running[0] // a -1e9 copy of the first beam
		}
		probOf := func(c candidate) TokenProb {
			b := min(c.beam, len(running)-1)
			return dists[b].tokenProb(raw[b], c.token)
		}
		// d-f. finished candidates among the first n; the best n
		// unfinished ones run on.
		var next []hyp
		var parents []int
		var tokens []int32
		full := len(finished) == n
		for rank, c := range cands {
			stopTok := isEOS(eos, c.token)
			if stopTok || last {
				if rank < n && !(full && p.EarlyStopping == EarlyStopTrue) {
					b := beamOf(c)
					f := hyp{ids: slices.Clone(b.ids), toks: slices.Clone(b.toks), end: -1, sum: c.score}
					if stopTok {
						f.end = c.token
					} else {
						f.ids = append(f.ids, c.token)
						f.toks = append(f.toks, probOf(c))
					}
					f.score = lengthNorm(c.score, step, lp)
					finished = addFinished(finished, f, n)
				}
				continue
			}
			if len(next) < n {
				b := beamOf(c)
				next = append(next, hyp{ids: append(slices.Clone(b.ids), c.token),
					toks: append(slices.Clone(b.toks), probOf(c)), end: -1, sum: c.score})
				parents = append(parents, min(c.beam, len(running)-1))
				tokens = append(tokens, c.token)
			}
		}
		if last {
			return result(lm.StopMaxTokens), nil
		}
		running = next
		if onStep != nil && len(running) > 0 {
			best := running[0].ids
			if len(finished) > 0 && finished[0].score >= lengthNorm(running[0].sum, step, lp) {
				best = finished[0].ids
			}
			onStep(progress{step: step, best: best, token: -1})
		}
		// g. stop when no running beam can beat the worst kept hypothesis.
		if len(finished) == n {
			if p.EarlyStopping == EarlyStopTrue {
				return result(lm.StopEOG), nil
			}
			length := step
			if p.EarlyStopping == EarlyStopNever && lp > 0 {
				length = maxNew
			}
			if !(lengthNorm(running[0].sum, length, lp) > finished[n-1].score) {
				return result(lm.StopEOG), nil
			}
		}
		if len(running) < n {
			// Cannot happen with keep = (1 + stop tokens) * n candidates.
			return result(lm.StopNone), errors.New("generate: beam search ran out of candidates")
		}
		if err := m.Reorder(parents); err != nil {
			return result(lm.StopNone), err
		}
		if err := m.Step(tokens); err != nil {
			if errors.Is(err, lm.ErrContextFull) {
				return result(lm.StopContextFull), nil
			}
			return result(lm.StopNone), err
		}
	}
}
