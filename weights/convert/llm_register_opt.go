package convert

import (
	"fmt"

	"github.com/blip2chat/blip2chat/weights/lmconv"
)

// OPT language models run in blip2chat's own engine (engine/opt), not in
// llama.cpp: weights/lmconv writes them with the architecture "blip2-opt",
// f32, f16 or q8_0 (the default).
func init() {
	RegisterLLM("opt", LLMConverterFunc(planOPTLLM))
}

// planOPTLLM plans llm.gguf for an OPT language model.
func planOPTLLM(src *Source, opt Options) (*Plan, error) {
	t, err := lmconv.ParseOPTType(opt.LLMType)
	if err != nil {
		return nil, err
	}
	f, err := lmconv.PlanOPT(lmconv.Source{Dir: src.Dir, Text: &src.Config.Text, Tensors: src.Checkpoint}, t)
	if err != nil {
		return nil, err
	}
	p := &Plan{File: "llm.gguf", KV: f.KV}
	for _, x := range f.Tensors {
		p.Tensors = append(p.Tensors, Tensor{Name: x.Name, Type: x.Type, Shape: x.Shape, Sources: x.Sources, Values: x.Values})
	}
	// A stored copy of the tied LM head is skipped on purpose, not unused.
	if len(f.Skipped) > 0 && len(p.Tensors) > 0 {
		p.Tensors[0].Sources = append(append([]string(nil), p.Tensors[0].Sources...), f.Skipped...)
	}
	if opt.Warnings != nil {
		for _, w := range f.Warnings {
			fmt.Fprintf(opt.Warnings, "warning: %s\n", w)
		}
	}
	return p, nil
}
