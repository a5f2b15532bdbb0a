package convert

import (
	"fmt"

	"github.com/blip2chat/blip2chat/weights/lmconv"
)

// LLaMA (Vicuna) and T5 (FlanT5) language models run in llama.cpp:
// weights/lmconv writes them as llama.cpp's own converter would.
func init() {
	for _, family := range lmconv.Families() {
		RegisterLLM(family, LLMConverterFunc(planLlamaCppLLM))
	}
}

// planLlamaCppLLM plans llm.gguf through lmconv. For --llm-type q4_k_m (the
// default) the file is written as f16; the convert command then quantizes
// it in place with lmconv.Finish and engine/llamacpp's quantizer.
func planLlamaCppLLM(src *Source, opt Options) (*Plan, error) {
	t, err := lmconv.ParseType(opt.LLMType)
	if err != nil {
		return nil, err
	}
	f, err := lmconv.Plan(lmconv.Source{Dir: src.Dir, Text: &src.Config.Text, Tensors: src.Checkpoint}, t)
	if err != nil {
		return nil, err
	}
	p := &Plan{File: "llm.gguf", KV: f.KV}
	for _, x := range f.Tensors {
		p.Tensors = append(p.Tensors, Tensor{Name: x.Name, Type: x.Type, Shape: x.Shape, Sources: x.Sources, Values: x.Values})
	}
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
