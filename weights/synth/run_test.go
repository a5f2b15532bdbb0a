package synth_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/engine/lm/llamacpp"
	"github.com/blip2chat/blip2chat/engine/lm/opt"
	"github.com/blip2chat/blip2chat/engine/model/modeltest"
	"github.com/blip2chat/blip2chat/engine/vision"
	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/lmconv"
	"github.com/blip2chat/blip2chat/weights/synth"
)

// The engine runs what synth writes: these tests load synthetic models of
// the golden configs and check that their outputs are finite, of order one,
// and depend on the weights.

func goldenConfig(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../testdata/golden", name, "hf", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVisionRuns: every weight type of the synthetic vision side loads
// and gives activations of order one, the same to the types' precision.
func TestVisionRuns(t *testing.T) {
	m := synth.Model{Config: goldenConfig(t, "blip2-opt"), Seed: 3}
	var firstOut []float32
	for _, typ := range []string{"f32", "f16", "q8_0"} {
		t.Run(typ, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := m.Write(context.Background(), dir, convert.Options{VisionType: typ, VisionOnly: true}); err != nil {
				t.Fatal(err)
			}
			vm, err := vision.Load(filepath.Join(dir, convert.VisionFile), vision.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer vm.Close()
			if vm.Info().WeightType != typ {
				t.Errorf("weight type %q", vm.Info().WeightType)
			}
			in := vm.Info()
			px := make([]float32, 3*in.Vision.ImageSize*in.Vision.ImageSize)
			for i := range px {
				px[i] = float32(math.Sin(float64(i)))
			}
			feat, err := vm.EncodeImage(context.Background(), px)
			if err != nil {
				t.Fatal(err)
			}
			q, err := vm.QFormer(context.Background(), feat, nil)
			if err != nil {
				t.Fatal(err)
			}
			out, err := vm.Project(q)
			if err != nil {
				t.Fatal(err)
			}
			var sq float64
			for _, x := range append(feat.Data, out...) {
				if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
					t.Fatal("non-finite activation")
				}
				sq += float64(x) * float64(x)
			}
			if rms := math.Sqrt(sq / float64(len(feat.Data)+len(out))); rms < 0.05 || rms > 20 {
				t.Errorf("activations of RMS %g: the weights' scale is off", rms)
			}
			if firstOut == nil {
				firstOut = out
				return
			}
			var d, n float64
			for i := range out {
				d += math.Abs(float64(out[i] - firstOut[i]))
				n += math.Abs(float64(firstOut[i]))
			}
			if d/n > 0.05 {
				t.Errorf("%s output differs from f32's by %.1f%%", typ, 100*d/n)
			}
		})
	}
}

// TestOPTRuns: a synthetic OPT opens in the Go engine with the config's
// shape.
func TestOPTRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), lmconv.FileName)
	m := synth.Model{Config: goldenConfig(t, "blip2-opt"), Seed: 1}
	if err := m.WriteLLM(context.Background(), path, "q8_0"); err != nil {
		t.Fatal(err)
	}
	om, err := opt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer om.Close()
	if hp := om.Hyper(); hp.Hidden != 64 || hp.Vocab != om.Info().NVocab {
		t.Errorf("hyper %+v", hp)
	}
	ids, err := om.Tokenize("a b", true)
	if err != nil || len(ids) < 2 {
		t.Errorf("tokenize: %v %v", ids, err)
	}
}

// TestLlamaCppRuns writes synthetic LLaMA and T5 models of the golden
// sizes (and a q4_k_m LLaMA of k-quant width, through llama.cpp's
// quantizer as bench --synthetic makes it) and runs them in llama.cpp.
func TestLlamaCppRuns(t *testing.T) {
	libDir := modeltest.LibDir(t)
	lib := modeltest.Lib(t)
	quantizer := func() (lmconv.Quantizer, error) {
		return func(in, out string, ftype int32) error {
			p := lib.DefaultQuantizeParams()
			p.FType = ftype
			return lib.Quantize(in, out, p)
		}, nil
	}
	small := []byte(`{"model_type": "blip-2", "text_config": {"model_type": "llama", "hidden_size": 256, "intermediate_size": 512,
		"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4, "vocab_size": 600,
		"max_position_embeddings": 512, "rms_norm_eps": 1e-6, "bos_token_id": 1, "eos_token_id": 2}}`)
	for _, tc := range []struct {
		name, typ string
		cfg       []byte
	}{
		{"blip2-llama", "f16", goldenConfig(t, "blip2-llama")},
		{"blip2-t5", "q8_0", goldenConfig(t, "blip2-t5")},
		{"llama-256", "q4_k_m", small},
	} {
		t.Run(tc.name+"/"+tc.typ, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), lmconv.FileName)
			m := synth.Model{Config: tc.cfg, Seed: 5}
			if err := m.WriteLLM(context.Background(), path, tc.typ); err != nil {
				t.Fatal(err)
			}
			ty, _ := lmconv.ParseType(tc.typ)
			q, _ := quantizer()
			if err := lmconv.Finish(path, ty, q); err != nil {
				t.Fatal(err)
			}
			lm0, err := llamacpp.Open(path, llamacpp.Options{LibDir: libDir})
			if err != nil {
				t.Fatal(err)
			}
			defer lm0.Close()
			if tc.typ == "q4_k_m" && !strings.Contains(lm0.Info().Desc, "Q4_K") {
				t.Errorf("desc %q, want Q4_K", lm0.Info().Desc)
			}
			ids, err := lm0.Tokenize("a b c", false)
			if err != nil || len(ids) == 0 {
				t.Fatalf("tokenize: %v %v", ids, err)
			}
			c, err := lm0.NewContext(lm.ContextOptions{NCtx: 64, Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			info := lm0.Info()
			if info.EncoderDecoder {
				emb, err := lm0.TokenEmbeddings(ids)
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Encode(emb, len(ids)); err != nil {
					t.Fatal(err)
				}
				ids = []int32{info.DecoderStart}
			}
			if err := c.AppendTokens(ids, false); err != nil {
				t.Fatal(err)
			}
			logits := c.Logits(-1)
			if len(logits) != info.NVocab {
				t.Fatalf("%d logits", len(logits))
			}
			var spread float64
			for _, x := range logits {
				if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
					t.Fatal("non-finite logit")
				}
				spread = max(spread, math.Abs(float64(x-logits[0])))
			}
			if spread == 0 {
				t.Error("all logits equal: the weights did not reach llama.cpp")
			}
		})
	}
}
