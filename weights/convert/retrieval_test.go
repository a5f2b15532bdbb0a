package convert

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/safetensors"
)

// TestRetrievalConvert: a Blip2ForImageTextRetrieval checkpoint converts
// without --vision-only into a vision.gguf alone, reading every tensor of
// the checkpoint (no unused warning), with the text side, the heads (F32
// whatever the weight type), the vocabulary and the text length.
func TestRetrievalConvert(t *testing.T) {
	out := filepath.Join(t.TempDir(), "itm")
	var warn bytes.Buffer
	res, err := Convert(context.Background(), hfDir("blip2-itm"), out, Options{VisionType: "q8_0", Warnings: &warn})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 1 || filepath.Base(res.Files[0]) != VisionFile || res.LLMFamily != "" {
		t.Errorf("files %v, llm family %q", res.Files, res.LLMFamily)
	}
	if len(res.Unused) != 0 || warn.Len() != 0 {
		t.Errorf("unused %v, warnings %q", res.Unused, warn.String())
	}
	f, err := gguf.Open(filepath.Join(out, VisionFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if e, _ := f.Uint32(KeyRetrievalEmbedSize); e != 64 {
		t.Errorf("embed size %d", e)
	}
	if n, _ := f.Uint32(KeyQFormerMaxLength); n != 512 {
		t.Errorf("max length %d, want the 512 positions (no tokenizer_config.json)", n)
	}
	if ti, _ := f.Bool(KeyQFormerTextInput); !ti {
		t.Error("text_input false")
	}
	if v, _ := f.Strings(KeyQFormerVocab); len(v) != 1000 || v[2] != "[CLS]" {
		t.Errorf("vocab of %d", len(v))
	}
	if p, _ := f.Uint32(KeyProjectionSize); p != 0 {
		t.Errorf("projection size %d", p)
	}
	for name, shape := range map[string][]uint64{
		TensorQWordEmbd: {128, 1001}, TensorQPosEmbd: {128, 512},
		TensorITCVisionProj + ".weight": {128, 64}, TensorITCTextProj + ".bias": {64},
		TensorITMHead + ".weight": {128, 2}, QFormerBlock(1).FFNUp + ".weight": {128, 256},
	} {
		ti, _, ok := f.Tensor(name)
		if !ok {
			t.Errorf("no %s", name)
			continue
		}
		if !equalDims(ti.Dims, shape) {
			t.Errorf("%s: dims %v, want %v", name, ti.Dims, shape)
		}
		if strings.HasPrefix(name, "itc.") || strings.HasPrefix(name, "itm.") || strings.HasSuffix(name, "_embd") {
			if ti.Type != gguf.TypeF32 {
				t.Errorf("%s: %v, want F32", name, ti.Type)
			}
		}
	}
	if _, _, ok := f.Tensor(TensorITCTemp); ok {
		t.Error("a temperature the checkpoint does not store")
	}
}

func equalDims(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRetrievalCheckpointVariants: a LAVIS temperature is kept; the
// tokenizer config's model_max_length bounds texts; a missing head or
// vocabulary refuses the conversion by name, writing nothing.
func TestRetrievalCheckpointVariants(t *testing.T) {
	t.Run("temp and max length", func(t *testing.T) {
		hf := copyCheckpoint(t, "blip2-itm", func(ts []safetensors.WriteTensor) []safetensors.WriteTensor {
			return append(ts, safetensors.F32Tensor("temp", []int{}, []float32{0.05}))
		})
		os.WriteFile(filepath.Join(hf, "tokenizer_config.json"), []byte(`{"do_lower_case": true, "model_max_length": 32}`), 0o644)
		out := filepath.Join(t.TempDir(), "m")
		if _, err := Convert(context.Background(), hf, out, Options{VisionType: "f32"}); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Open(filepath.Join(out, VisionFile))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if n, _ := f.Uint32(KeyQFormerMaxLength); n != 32 {
			t.Errorf("max length %d", n)
		}
		if _, _, ok := f.Tensor(TensorITCTemp); !ok {
			t.Error("temp not kept")
		}
	})
	for _, c := range []struct {
		name   string
		drop   string
		noVoc  bool
		errHas string
	}{
		{"no itm head", "itm_head.weight", false, "tensor itm_head.weight is missing"},
		{"no text projection", "text_projection.bias", false, "tensor text_projection.bias is missing"},
		{"no vocab", "", true, "no WordPiece vocabulary"},
	} {
		t.Run(c.name, func(t *testing.T) {
			hf := copyCheckpoint(t, "blip2-itm", func(ts []safetensors.WriteTensor) []safetensors.WriteTensor {
				var out []safetensors.WriteTensor
				for _, x := range ts {
					if x.Name != c.drop {
						out = append(out, x)
					}
				}
				return out
			})
			if c.noVoc {
				os.Remove(filepath.Join(hf, "vocab.txt"))
			}
			out := filepath.Join(t.TempDir(), "m")
			_, err := Convert(context.Background(), hf, out, Options{})
			if err == nil || !strings.Contains(err.Error(), c.errHas) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v, want one line with %q", err, c.errHas)
			}
			if l := listDir(t, out); l != nil {
				t.Errorf("wrote %v", l)
			}
		})
	}
}
