package lmconv_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/gguf"
)

// TestConvert runs `blip2chat convert`'s library entry point on the golden
// LLaMA and T5 checkpoints: lmconv writes llm.gguf beside vision.gguf, and
// no language-model tensor is reported unused.
func TestConvert(t *testing.T) {
	cases := []struct {
		name, llmType, arch string
		embdType            gguf.Type
	}{
		{"blip2-llama", "f32", "llama", gguf.TypeF32},
		{"instructblip-llama", "q8_0", "llama", gguf.TypeQ8_0},
		{"blip2-t5", "", "t5", gguf.TypeF16}, // q4_k_m: f16 until the command quantizes it
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "model")
			var warn bytes.Buffer
			res, err := convert.Convert(context.Background(), filepath.Join(golden, c.name, "hf"), out,
				convert.Options{LLMType: c.llmType, Warnings: &warn})
			if err != nil {
				t.Fatal(err)
			}
			if res.LLMFamily != c.arch || len(res.Files) != 3 || filepath.Base(res.Files[2]) != convert.GenerationConfigFile {
				t.Errorf("family %q, files %v", res.LLMFamily, res.Files)
			}
			for _, u := range res.Unused {
				if strings.HasPrefix(u, "language_model.") {
					t.Errorf("%s reported unused", u)
				}
			}
			if strings.Contains(warn.String(), "language_model.") {
				t.Errorf("warnings: %s", warn.String())
			}
			f, err := gguf.Open(filepath.Join(out, "llm.gguf"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if a, _ := f.String("general.architecture"); a != c.arch {
				t.Errorf("architecture %q", a)
			}
			if info, _, ok := f.Tensor("token_embd.weight"); !ok || info.Type != c.embdType {
				t.Errorf("token_embd.weight %+v, want type %v", info, c.embdType)
			}
		})
	}
	_, err := convert.Convert(context.Background(), filepath.Join(golden, "blip2-llama", "hf"), filepath.Join(t.TempDir(), "m"),
		convert.Options{LLMType: "q3_k"})
	if err == nil || !strings.Contains(err.Error(), `unknown language-model type "q3_k"`) {
		t.Errorf("bad --llm-type: %v", err)
	}
}
