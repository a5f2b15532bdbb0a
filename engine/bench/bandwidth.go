package bench

import (
	"strings"

	"github.com/blip2chat/blip2chat/weights/gguf"
)

// DecodeBytesPerToken estimates the weight bytes one decoded token reads from
// the language model file at path: every matrix of the decoder and the
// output head. It leaves out an input embedding table that is not also the
// head (a token reads one row of it) and a T5 encoder's tensors (run once
// per prompt). Decoding is bound by this traffic, so bytes per token times
// tokens per second, against the machine's bandwidth, says how close to
// the limit decoding runs.
func DecodeBytesPerToken(path string) (int64, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	_, _, hasHead := f.Tensor("output.weight")
	var n int64
	for _, t := range f.Tensors {
		switch {
		case strings.HasPrefix(t.Name, "enc."):
			continue
		case hasHead && t.Name == "token_embd.weight":
			continue
		}
		n += int64(t.Size())
	}
	return n, nil
}
