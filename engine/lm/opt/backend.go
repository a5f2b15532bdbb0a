package opt

import (
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/weights/lmconv"
)

// The OPT engine answers for llm.gguf files of architecture "blip2-opt":
// lm.Open picks it from general.architecture.
func init() {
	lm.RegisterBackend(lmconv.OPTArch, func(path string, _ lm.OpenOptions) (lm.Model, error) {
		m, err := Open(path)
		if err != nil {
			return nil, err
		}
		return m, nil
	})
}

// newSampler is lm's Go copy of llama.cpp's sampler chain, so that sampling
// means the same here as in the llama.cpp backend.
func newSampler(p lm.SamplingParams, nVocab int) (lm.Sampler, error) {
	s, err := lm.NewGoSampler(p, nVocab)
	if err != nil {
		return nil, err
	}
	return s, nil
}

var (
	_ lm.Model   = (*Model)(nil)
	_ lm.Context = (*Context)(nil)
)
