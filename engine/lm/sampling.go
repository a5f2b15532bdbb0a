package lm

import (
	"fmt"
	"math"
)

// SamplingParams choose how the next token is picked. They mean exactly
// what llama.cpp's sampler chain does with them:
//
//	Greedy (or Temperature <= 0): penalties -> the most likely token
//	otherwise: penalties -> top-k -> top-p -> min-p -> temperature -> draw
//
// where top-p keeps the smallest set of most likely tokens whose
// probabilities (at temperature 1, over what top-k kept) reach TopP, min-p
// drops tokens less likely than MinP times the most likely one, and the
// draw uses a Mersenne Twister seeded with Seed.
type SamplingParams struct {
	Greedy      bool
	Temperature float32 // > 0; <= 0 is greedy
	TopK        int     // keep the TopK most likely tokens; 0: off
	TopP        float32 // 0 or 1: off
	MinP        float32 // 0: off
	// RepeatPenalty > 1 makes the tokens among the last RepeatLastN seen
	// (prompt tokens passed to Sampler.Accept, and sampled ones) less
	// likely: positive logits are divided by it, negative ones multiplied.
	// 0 or 1 (or RepeatLastN 0): off.
	RepeatPenalty float32
	RepeatLastN   int
	// Seed of the random draw, at most 2^32-1; RandomSeed picks one from
	// the system each time the sampler is made or Reset.
	Seed uint64
}

// RandomSeed asks for a new random seed (llama.cpp's LLAMA_DEFAULT_SEED).
const RandomSeed uint64 = 0xFFFFFFFF

// GreedyParams always pick the most likely token: reproducible answers.
func GreedyParams() SamplingParams { return SamplingParams{Greedy: true} }

// DefaultSamplingParams are llama.cpp's usual chat settings, with a random
// seed.
func DefaultSamplingParams() SamplingParams {
	return SamplingParams{Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05,
		RepeatPenalty: 1.1, RepeatLastN: 64, Seed: RandomSeed}
}

// IsGreedy reports whether p always picks the most likely token.
func (p SamplingParams) IsGreedy() bool { return p.Greedy || p.Temperature <= 0 }

// Penalized reports whether the repetition penalty is on.
func (p SamplingParams) Penalized() bool {
	return p.RepeatLastN > 0 && p.RepeatPenalty != 0 && p.RepeatPenalty != 1
}

// Validate checks the ranges; the error names the field.
func (p SamplingParams) Validate() error {
	for _, f := range []struct {
		name string
		v    float32
	}{{"temperature", p.Temperature}, {"top-p", p.TopP}, {"min-p", p.MinP}, {"repeat penalty", p.RepeatPenalty}} {
		if math.IsNaN(float64(f.v)) || math.IsInf(float64(f.v), 0) {
			return fmt.Errorf("sampling: %s is %v", f.name, f.v)
		}
	}
	switch {
	case p.TopK < 0:
		return fmt.Errorf("sampling: top-k %d is negative", p.TopK)
	case p.TopK > math.MaxInt32:
		return fmt.Errorf("sampling: top-k %d is too large", p.TopK)
	case p.TopP < 0 || p.TopP > 1:
		return fmt.Errorf("sampling: top-p %v is outside 0..1", p.TopP)
	case p.MinP < 0 || p.MinP > 1:
		return fmt.Errorf("sampling: min-p %v is outside 0..1", p.MinP)
	case p.RepeatPenalty < 0:
		return fmt.Errorf("sampling: repeat penalty %v is negative", p.RepeatPenalty)
	case p.RepeatLastN < 0:
		return fmt.Errorf("sampling: repeat window %d is negative", p.RepeatLastN)
	case p.RepeatLastN > math.MaxInt32:
		return fmt.Errorf("sampling: repeat window %d is too large", p.RepeatLastN)
	case p.Seed > math.MaxUint32:
		return fmt.Errorf("sampling: seed %d does not fit in 32 bits", p.Seed)
	}
	return nil
}

func (p SamplingParams) String() string {
	if p.IsGreedy() {
		s := "greedy"
		if p.Penalized() {
			s += fmt.Sprintf(" repeat-penalty=%g/%d", p.RepeatPenalty, p.RepeatLastN)
		}
		return s
	}
	seed := "random"
	if p.Seed != RandomSeed {
		seed = fmt.Sprint(p.Seed)
	}
	return fmt.Sprintf("temp=%g top-k=%d top-p=%g min-p=%g repeat-penalty=%g/%d seed=%s",
		p.Temperature, p.TopK, p.TopP, p.MinP, p.RepeatPenalty, p.RepeatLastN, seed)
}
