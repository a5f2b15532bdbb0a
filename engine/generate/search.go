package generate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/blip2chat/blip2chat/engine/lm"
)

// Seqs is a language-model context as the decoders drive it: one or more
// sequences that continue the same prompt, each fed one token per step.
// FromContext adapts an lm.Context; tests use fakes.
type Seqs interface {
	// Logits returns the next-token logits of sequence i after the last
	// Step; before the first Step, Logits(0) is the prompt's.
	Logits(i int) []float32
	// Step appends ids[i] to sequence i, one id for each live sequence, in
	// one model call.
	Step(ids []int32) error
	// Reorder makes sequence i hold what sequence parents[i] held, for
	// every i < len(parents); len(parents) sequences are live afterwards.
	// Greedy decoding never calls it.
	Reorder(parents []int) error
}

// Input is what decoding needs to know besides the settings.
type Input struct {
	// Context holds the token ids the repetition penalty and the n-gram ban
	// see before the answer, as transformers' input_ids: decoder-only, the
	// prompt's token ids (BOS and text, never the soft tokens; in a chat,
	// the conversation's); T5, the decoder start token.
	Context []int32
	// EOS are the model's stop tokens; Params.EOS replaces them when set.
	EOS []int32
}

// Progress is reported after every step.
type Progress struct {
	Step int // new tokens so far
	// Best is the most likely hypothesis now: the tokens so far (greedy,
	// sampling) or the best running beam (beam search). Valid during the
	// call only.
	Best []int32
	// Token is the token just chosen by greedy decoding or sampling (-1 in
	// beam search); an end token is reported too.
	Token int32
}

// Sequence is one decoded answer.
type Sequence struct {
	IDs []int32 // new tokens, without the end token
	End int32   // the stop token that ended it; -1 when it did not end with one
	// LogProb is the sum of the chosen tokens' log-probabilities after the
	// processors (the end token included).
	LogProb float64
	// Score is beam search's score of the sequence, transformers'
	// sequences_scores: LogProb / length^length_penalty, length counting the
	// end token. Greedy decoding and sampling report LogProb.
	Score float64
}

// Decoded is a finished decoding.
type Decoded struct {
	// Sequences are best first: Params.NumReturnSequences of them with beam
	// search, else one.
	Sequences []Sequence
	Stop      lm.StopReason // why decoding ended
}

// Decode decodes an answer from m, which must hold the prompt (Logits(0)
// is the first step's), with p's settings: greedy (Temperature 0,
// NumBeams 1), sampling (Temperature > 0) or beam search (NumBeams > 1).
// It stops at a stop token, after p.MaxTokens new tokens, when the context
// is full (lm.ErrContextFull from m; Stop says so and the error is nil) or
// when ctx is cancelled (checked between steps; ctx.Err() is returned with
// the best answer so far).
//
// Afterwards, greedy decoding and sampling have fed every returned token to
// sequence 0 of m; after beam search the content of m is undefined (feed
// the chosen answer again).
func Decode(ctx context.Context, m Seqs, p Params, in Input, onStep func(Progress)) (Decoded, error) {
	return decode(ctx, m, p, in, onStep, tracer{})
}

// tracer sees each step's work; the golden tests compare it with
// transformers' records.
type tracer struct {
	greedy func(step int, scores []float32, id int32) // processed scores
	beam   func(step int, cands []candidate)
	kept   func(all []hyp) // beam search's hypotheses at the end, best first
}

func decode(ctx context.Context, m Seqs, p Params, in Input, onStep func(Progress), tr tracer) (Decoded, error) {
	if err := p.Validate(); err != nil {
		return Decoded{}, err
	}
	eos := p.StopTokens(in.EOS)
	if p.Beams() > 1 {
		return beamSearch(ctx, m, p, in.Context, eos, onStep, tr)
	}
	return sample(ctx, m, p, in.Context, eos, onStep, tr)
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

// errNoLogits is returned when a Seqs has no logits where a step needs them.
var errNoLogits = errors.New("generate: the model holds no logits to decode from")

// sample is transformers' _sample: greedy (argmax of the processed logits)
// or a draw from the warped distribution.
func sample(ctx context.Context, m Seqs, p Params, context []int32, eos []int32, onStep func(Progress), tr tracer) (Decoded, error) {
	pr := newProcessor(p, eos)
	var rng *rand.Rand
	if p.Sampling() {
		seed := uint64(p.Seed)
		if p.Seed < 0 {
			seed = rand.Uint64()
		}
		rng = rand.New(rand.NewPCG(seed, 0x626c69703263))
	}
	var seq Sequence
	seq.End = -1
	res := func(stop lm.StopReason) Decoded {
		return Decoded{Sequences: []Sequence{seq}, Stop: stop}
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
			id = draw(scores, p, rng)
		} else {
			id = argmax(scores)
		}
		if tr.greedy != nil {
			tr.greedy(step, scores, id)
		}
		seq.LogProb += logProbOf(scores, id)
		seq.Score = seq.LogProb
		if onStep != nil {
			onStep(Progress{Step: step, Best: seq.IDs, Token: id})
		}
		if isEOS(eos, id) {
			seq.End = id
			return res(lm.StopEOG), nil
		}
		if err := m.Step([]int32{id}); err != nil {
			if errors.Is(err, lm.ErrContextFull) {
				return res(lm.StopContextFull), nil
			}
			return res(lm.StopNone), err
		}
		seq.IDs = append(seq.IDs, id)
		if step >= p.MaxTokens {
			return res(lm.StopMaxTokens), nil
		}
	}
}

// draw applies the sampling warpers to scores and draws a token.
func draw(scores []float32, p Params, rng *rand.Rand) int32 {
	Temperature(scores, float32(p.Temperature))
	TopK(scores, p.TopK)
	TopP(scores, p.TopP)
	MinP(scores, p.MinP)
	probs := softmax64(scores)
	u := rng.Float64()
	var cum float64
	last := int32(-1)
	for i, q := range probs {
		if q == 0 {
			continue
		}
		last = int32(i)
		cum += q
		if u < cum {
			return int32(i)
		}
	}
	return last // rounding left u above the total
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

// FromContext adapts an lm.Context holding the prompt for Decode. Beam
// search needs a context made with ContextOptions.NSeq >= NumBeams (one
// implementing lm.MultiSeq).
func FromContext(c lm.Context) Seqs { return ctxSeqs{c} }

type ctxSeqs struct{ c lm.Context }

func (s ctxSeqs) Logits(i int) []float32 {
	if ms, ok := s.c.(lm.MultiSeq); ok && ms.Seqs() > 1 {
		return s.c.Logits(i)
	}
	if i != 0 {
		return nil
	}
	return s.c.Logits(-1)
}

func (s ctxSeqs) Step(ids []int32) error {
	if ms, ok := s.c.(lm.MultiSeq); ok && ms.Seqs() > 1 {
		return ms.AppendEach(ids)
	}
	if len(ids) != 1 {
		return fmt.Errorf("generate: %d tokens for a context with one sequence", len(ids))
	}
	return s.c.AppendTokens(ids, false)
}

func (s ctxSeqs) Reorder(parents []int) error {
	ms, ok := s.c.(lm.MultiSeq)
	if !ok {
		if len(parents) == 1 && parents[0] == 0 {
			return nil
		}
		return errors.New("generate: this backend's contexts hold one sequence: it cannot run beam search")
	}
	return ms.Reorder(parents)
}
