package generate

import "github.com/blip2chat/blip2chat/engine/lm"

// SamplingParams converts p to the sampler chain's parameters (float32, as
// llama.cpp's sampler takes them): the one place the settings change type.
// nCtx is the window of a repetition penalty over the whole sequence
// (RepeatLastN 0).
func SamplingParams(p Params, nCtx int) lm.SamplingParams {
	sp := lm.SamplingParams{Greedy: !p.Sampling(), Temperature: float32(p.Temperature), TopK: p.TopK,
		TopP: float32(p.TopP), MinP: float32(p.MinP), Seed: lm.RandomSeed}
	if p.Seed >= 0 {
		sp.Seed = uint64(p.Seed)
	}
	if p.RepetitionPenalty != 0 && p.RepetitionPenalty != 1 {
		sp.RepeatPenalty, sp.RepeatLastN = float32(p.RepetitionPenalty), p.RepeatLastN
		if sp.RepeatLastN == 0 {
			sp.RepeatLastN = nCtx
		}
	}
	return sp
}
