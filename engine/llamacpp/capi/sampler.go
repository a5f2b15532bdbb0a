package capi

import (
	"fmt"
	"math"
)

// SamplerOptions configures a sampler chain. The zero value is greedy
// decoding with no penalties.
type SamplerOptions struct {
	Temperature float32 // <= 0: greedy (always the most likely token)
	TopK        int32   // keep the k most likely tokens; 0: off
	TopP        float32 // nucleus sampling; 0 or 1: off
	MinP        float32 // drop tokens below MinP times the top probability; 0: off
	Seed        uint32  // random seed of the final draw (0xFFFFFFFF: random)

	RepeatPenalty    float32 // > 1 discourages repeats; 0 or 1: off
	RepeatLastN      int32   // tokens of history the penalties look at (0: off)
	FrequencyPenalty float32 // 0: off
	PresencePenalty  float32 // 0: off
}

// Sampler picks the next token from a Context's logits (a llama.cpp sampler
// chain). It is not safe for concurrent use.
type Sampler struct {
	model *Model
	s     uintptr
}

func finite(name string, v float32) error {
	if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
		return fmt.Errorf("sampler: %s is %v", name, v)
	}
	return nil
}

// NewSampler builds the chain penalties -> top-k -> top-p -> min-p ->
// temperature -> random draw (or penalties -> greedy), the order llama.cpp's
// own tools use.
func (m *Model) NewSampler(o SamplerOptions) (*Sampler, error) {
	m.handle()
	for _, f := range []struct {
		name string
		v    float32
	}{{"Temperature", o.Temperature}, {"TopP", o.TopP}, {"MinP", o.MinP}, {"RepeatPenalty", o.RepeatPenalty},
		{"FrequencyPenalty", o.FrequencyPenalty}, {"PresencePenalty", o.PresencePenalty}} {
		if err := finite(f.name, f.v); err != nil {
			return nil, err
		}
	}
	switch {
	case o.TopK < 0:
		return nil, fmt.Errorf("sampler: TopK %d is negative", o.TopK)
	case o.TopP < 0 || o.TopP > 1:
		return nil, fmt.Errorf("sampler: TopP %v is outside 0..1", o.TopP)
	case o.MinP < 0 || o.MinP > 1:
		return nil, fmt.Errorf("sampler: MinP %v is outside 0..1", o.MinP)
	case o.RepeatPenalty < 0:
		return nil, fmt.Errorf("sampler: RepeatPenalty %v is negative", o.RepeatPenalty)
	case o.RepeatLastN < 0:
		return nil, fmt.Errorf("sampler: RepeatLastN %d is negative", o.RepeatLastN)
	}
	c := &m.lib.c
	chain := c.llama_sampler_chain_init(c.llama_sampler_chain_default_params())
	if chain == 0 {
		return nil, fmt.Errorf("sampler: llama_sampler_chain_init failed")
	}
	add := func(s uintptr) { c.llama_sampler_chain_add(chain, s) } // the chain owns s
	repeat := o.RepeatPenalty
	if repeat == 0 {
		repeat = 1
	}
	if o.RepeatLastN > 0 && (repeat != 1 || o.FrequencyPenalty != 0 || o.PresencePenalty != 0) {
		add(c.llama_sampler_init_penalties(m.nVocab, o.RepeatLastN, repeat, o.FrequencyPenalty, o.PresencePenalty))
	}
	if o.Temperature <= 0 {
		add(c.llama_sampler_init_greedy())
	} else {
		if o.TopK > 0 {
			add(c.llama_sampler_init_top_k(o.TopK))
		}
		if o.TopP > 0 && o.TopP < 1 {
			add(c.llama_sampler_init_top_p(o.TopP, 1))
		}
		if o.MinP > 0 {
			add(c.llama_sampler_init_min_p(o.MinP, 1))
		}
		add(c.llama_sampler_init_temp(o.Temperature))
		add(c.llama_sampler_init_dist(o.Seed))
	}
	return &Sampler{model: m, s: chain}, nil
}

func (s *Sampler) handle() uintptr {
	if s.s == 0 {
		panic("llamacpp: use of a closed Sampler")
	}
	return s.s
}

// Sample picks a token from the logits of batch row i of ctx's last Decode
// (negative i counts from the last output row) and records it in the
// chain's history (no Accept needed).
func (s *Sampler) Sample(ctx *Context, i int) (int32, error) {
	h := s.handle()
	if ctx.model != s.model {
		return 0, fmt.Errorf("sampler: the context runs another model")
	}
	// llama_sampler_sample aborts when the row has no logits: check first.
	if _, err := ctx.Logits(i); err != nil {
		return 0, err
	}
	return s.model.lib.c.llama_sampler_sample(h, ctx.handle(), int32(i)), nil
}

// Accept adds a token the sampler did not pick (a prompt token) to the
// history the repetition penalties look at.
func (s *Sampler) Accept(tok int32) error {
	h := s.handle()
	if err := s.model.checkToken(tok); err != nil {
		return err
	}
	s.model.lib.c.llama_sampler_accept(h, tok)
	return nil
}

// Reset forgets the history and restarts the random draw from the seed, so
// the same prompt and seed give the same answer again.
func (s *Sampler) Reset() { s.model.lib.c.llama_sampler_reset(s.handle()) }

// Close frees the chain and its samplers. It is safe to call more than once.
func (s *Sampler) Close() error {
	if s.s != 0 {
		s.model.lib.c.llama_sampler_free(s.s)
		s.s = 0
	}
	return nil
}
