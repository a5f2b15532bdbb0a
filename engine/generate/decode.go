package generate

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"

	"github.com/blip2chat/blip2chat/engine/lm"
)

// seqs is a language-model context as the decoders drive it: one or more
// sequences that continue the same prompt, each fed one token per step.
// The Driver adapts its lm.Context; tests use fakes.
type seqs interface {
	// Logits returns the next-token logits of sequence i after the last
	// Step; before the first Step, Logits(0) is the prompt's.
	Logits(i int) []float32
	// Step appends ids[i] to sequence i, one id for each live sequence, in
	// one model call.
	Step(ids []int32) error
	// Reorder makes sequence i hold what sequence parents[i] held, for
	// every i < len(parents); len(parents) sequences are live afterwards.
	// Greedy decoding and sampling never call it.
	Reorder(parents []int) error
}

// progress is what a decoder reports after every step.
type progress struct {
	step int // new tokens so far
	// best is the most likely hypothesis now: the tokens so far (greedy,
	// sampling) or beam search's best running or finished hypothesis.
	// Valid during the call only.
	best []int32
	// token is the token greedy decoding or sampling just chose (an end
	// token too), logits the step's raw logits; -1 and nil in beam search.
	token  int32
	logits []float32
}

// Sequence is one decoded answer.
type Sequence struct {
	IDs  []int32 // new tokens, without the end token
	Text string  // their text (without the leading space SentencePiece puts on the first token)
	End  int32   // the stop token that ended it; -1 when it did not end with one
	// LogProb is the sum of the chosen tokens' log-probabilities after the
	// processors (the end token included).
	LogProb float64
	// Score is beam search's score of the sequence, transformers'
	// sequences_scores: LogProb / length^length_penalty, length counting the
	// end token. Greedy decoding and sampling report LogProb.
	Score float64
	// Tokens say how sure the model was of each of IDs (one each, in
	// order): see TokenProb.
	Tokens []TokenProb
}

// decoded is a finished decoding: the sequences best first (NumReturnSequences
// of them with beam search, else one) and why it ended.
type decoded struct {
	seqs []Sequence
	stop lm.StopReason
}

// tracer sees each step's work; the golden tests compare it with
// transformers' records.
type tracer struct {
	greedy func(step int, scores []float32, id int32) // processed scores
	beam   func(step int, cands []candidate)
	kept   func(all []hyp) // beam search's hypotheses at the end, best first
}

// decode decodes an answer from m, which holds the prompt (Logits(0) is the
// first step's), with p's settings: greedy (Temperature 0, NumBeams 1),
// sampling (Temperature > 0) or beam search (NumBeams > 1). context is
// what the processors see before the new tokens (transformers'
// input_ids: the prompt's text ids, never the soft tokens; T5 the decoder
// start token), eos the stop tokens. It stops at a stop token, after
// p.MaxTokens new tokens, when the context is full (lm.ErrContextFull from
// m: the stop reason says so and the error is nil) or when ctx is
// cancelled (checked between steps; ctx.Err() is returned with the best
// answer so far).
//
// Afterwards, greedy decoding and sampling have fed every returned token to
// sequence 0 of m; after beam search m holds the beams of the last step.
func decode(ctx context.Context, m seqs, p Params, context, eos []int32, onStep func(progress), tr tracer) (decoded, error) {
	if err := p.Validate(); err != nil {
		return decoded{stop: lm.StopNone}, err
	}
	if p.Beams() > 1 {
		return beamSearch(ctx, m, p, context, eos, onStep, tr)
	}
	return sample(ctx, m, p, context, eos, onStep, tr)
}

// StopTokens are the tokens that end an answer: p.EOS when set, else the
// model's.
func (p Params) StopTokens(model []int32) []int32 {
	if len(p.EOS) > 0 {
		return p.EOS
	}
	return model
}

func isEOS(eos []int32, id int32) bool {
	for _, e := range eos {
		if e == id {
			return true
		}
	}
	return false
}

// errNoLogits is returned when the model has no logits where a step needs them.
var errNoLogits = errors.New("generate: the model holds no logits to decode from")

// sample is transformers' _sample: each step the processors, then the
// argmax (greedy) or the warpers and a draw (sampling).
func sample(ctx context.Context, m seqs, p Params, context, eos []int32, onStep func(progress), tr tracer) (decoded, error) {
	pr := newProcessor(p, eos)
	var rng *rand.Rand
	if p.Sampling() {
		seed := uint64(p.Seed)
		if p.Seed < 0 {
			seed = rand.Uint64()
		}
		rng = rand.New(rand.NewPCG(seed, 0x626c69703263))
	}
	seq := Sequence{End: -1}
	res := func(stop lm.StopReason) decoded {
		return decoded{seqs: []Sequence{seq}, stop: stop}
	}
	if p.MaxTokens == 0 {
		return res(lm.StopMaxTokens), nil
	}
	var scores []float32
	for step := 1; ; step++ {
		if err := ctx.Err(); err != nil {
			return res(lm.StopCancelled), err
		}
		logits := m.Logits(0)
		if logits == nil {
			return res(lm.StopNone), errNoLogits
		}
		scores = append(scores[:0], logits...)
		pr.apply(scores, history{context, seq.IDs})
		var id int32
		if rng != nil {
			warp(scores, p)
			id = draw(scores, rng.Float64())
		} else {
			id = argmax(scores)
		}
		if tr.greedy != nil {
			tr.greedy(step, scores, id)
		}
		seq.LogProb += logProbOf(scores, id)
		seq.Score = seq.LogProb
		if onStep != nil {
			onStep(progress{step: step, best: seq.IDs, token: id, logits: logits})
		}
		if isEOS(eos, id) {
			seq.End = id
			return res(lm.StopEOG), nil
		}
		tok := summarize(logits).tokenProb(logits, id) // before Step, which may reuse the logits' memory
		if err := m.Step([]int32{id}); err != nil {
			if errors.Is(err, lm.ErrContextFull) {
				return res(lm.StopContextFull), nil
			}
			return res(lm.StopNone), err
		}
		seq.IDs = append(seq.IDs, id)
		seq.Tokens = append(seq.Tokens, tok)
		if step >= p.MaxTokens {
			return res(lm.StopMaxTokens), nil
		}
	}
}

// logProbOf is log_softmax(scores)[id].
func logProbOf(scores []float32, id int32) float64 {
	m := math.Inf(-1)
	for _, v := range scores {
		m = max(m, float64(v))
	}
	var sum float64
	for _, v := range scores {
		sum += math.Exp(float64(v) - m)
	}
	return float64(scores[id]) - m - math.Log(sum)
}
