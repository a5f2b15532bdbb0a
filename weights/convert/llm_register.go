package convert

import (
	"fmt"

	"github.com/blip2chat/blip2chat/weights/lmconv"
)

// weights/lmconv writes every language model: LLaMA (Vicuna) and T5
// (FlanT5) as llama.cpp's own converter would, OPT with the architecture
// "blip2-opt" for blip2chat's own engine (engine/lm/opt).
func init() {
	for _, family := range lmconv.Families() {
		RegisterLLM(family, LLMConverterFunc(planLLM))
	}
}

// planLLM plans llm.gguf through lmconv, with the family's --llm-type
// default. For q4_k_m (the llama.cpp families' default) the file is
// written as f16; the convert command then quantizes it in place with
// lmconv.Finish and engine/llamacpp/capi's quantizer. OPT takes f32, f16 or
// q8_0 (its default).
func planLLM(src *Source, opt Options) (*Plan, error) {
	t, err := lmconv.ParseFamilyType(src.Config.Text.ModelType, opt.LLMType)
	if err != nil {
		return nil, err
	}
	f, err := lmconv.Plan(lmconv.Source{Dir: src.Dir, Text: &src.Config.Text, Tensors: src.Checkpoint}, t)
	if err != nil {
		return nil, err
	}
	p := &Plan{File: "llm.gguf", KV: f.KV, Tensors: f.Tensors}
	// Tensors skipped on purpose (tied-embedding copies, rotary buffers)
	// are not "unused": list them with the first tensor's sources.
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
