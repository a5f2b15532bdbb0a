package synth

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/engine/lm/llamacpp"
	"github.com/blip2chat/blip2chat/engine/model/modeltest"
	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
	"github.com/blip2chat/blip2chat/weights/lmconv"
	"github.com/blip2chat/blip2chat/weights/safetensors"
	"github.com/blip2chat/blip2chat/weights/sentencepiece"
)

const golden = "../../testdata/golden"

func goldenConfig(t *testing.T, name string) *hfconfig.Config {
	t.Helper()
	c, err := hfconfig.Load(filepath.Join(golden, name, "hf"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestLMCheckpointTensors: the stand-in language model has the golden
// checkpoints' tensors (less the T5 embedding copies, which the converter
// skips anyway).
func TestLMCheckpointTensors(t *testing.T) {
	for _, name := range []string{"blip2-llama", "instructblip-llama", "blip2-t5"} {
		t.Run(name, func(t *testing.T) {
			cfg := goldenConfig(t, name)
			h, err := lmCheckpointTensors(&cfg.Text)
			if err != nil {
				t.Fatal(err)
			}
			ck, err := safetensors.OpenCheckpoint(filepath.Join(golden, name, "hf"))
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			want := map[string]string{}
			for _, n := range ck.Names() {
				if !strings.HasPrefix(n, lmconv.Prefix) || strings.HasSuffix(n, "embed_tokens.weight") && strings.Contains(n, "coder.") {
					continue
				}
				x, _ := ck.Tensor(n)
				want[n] = fmt.Sprint(x.Shape)
			}
			got := map[string]string{}
			for _, n := range h.Names() {
				x, ok := h.Tensor(n)
				if !ok || x.DType != safetensors.F16 {
					t.Fatalf("%s: %v %v", n, ok, x.DType)
				}
				got[n] = fmt.Sprint(x.Shape)
			}
			for n, s := range want {
				if got[n] != s {
					t.Errorf("%s: stand-in %q, checkpoint %s", n, got[n], s)
				}
			}
			for n := range got {
				if _, ok := want[n]; !ok {
					t.Errorf("%s: not in the checkpoint", n)
				}
			}
		})
	}
	if _, err := lmCheckpointTensors(&hfconfig.TextConfig{ModelType: "gpt2"}); err == nil {
		t.Error("gpt2: no error")
	}
}

// TestSentencePieceModel: the generated tokenizer parses, with the
// vocabulary and special ids of the family.
func TestSentencePieceModel(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		pieces                 int
		modelType              int
		byteFallback           bool
		unk, bos, eos, pad     int
		firstWord, firstPieces string
	}{
		{Vicuna7B, 32000, 2, true, 0, 1, 2, -1, "<0x00>", "<unk> <s> </s>"},
		{FlanT5XL, 32000, 1, false, 2, -1, 1, 0, "\u2581a", "<pad> </s> <unk>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _ := Config(tc.name)
			m, err := sentencepiece.Parse(sentencePieceModel(&cfg.Text))
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Pieces) != tc.pieces || m.ModelType != tc.modelType || m.ByteFallback != tc.byteFallback {
				t.Errorf("%d pieces, type %d, byte fallback %v", len(m.Pieces), m.ModelType, m.ByteFallback)
			}
			if m.UnkID != tc.unk || m.BOSID != tc.bos || m.EOSID != tc.eos || m.PadID != tc.pad {
				t.Errorf("ids unk %d bos %d eos %d pad %d", m.UnkID, m.BOSID, m.EOSID, m.PadID)
			}
			first := []string{m.Pieces[0].Text, m.Pieces[1].Text, m.Pieces[2].Text}
			if strings.Join(first, " ") != tc.firstPieces || m.Pieces[3].Text != tc.firstWord {
				t.Errorf("pieces start %v %q", first, m.Pieces[3].Text)
			}
		})
	}
}

// TestLlamaCppLayout: a synthetic LLaMA or T5 file has the tensors (names,
// types, shapes, order) and the model metadata of the golden checkpoint's
// conversion; only the tokenizer and the name differ.
func TestLlamaCppLayout(t *testing.T) {
	for _, name := range []string{"blip2-llama", "blip2-t5"} {
		for _, typ := range []string{"f16", "q8_0"} {
			t.Run(name+"/"+typ, func(t *testing.T) {
				lt, _ := lmconv.ParseType(typ)
				want, err := func() (*lmconv.File, error) {
					cfg := goldenConfig(t, name)
					ck, err := safetensors.OpenCheckpoint(filepath.Join(golden, name, "hf"))
					if err != nil {
						return nil, err
					}
					defer ck.Close()
					return lmconv.Plan(lmconv.Source{Dir: filepath.Join(golden, name, "hf"), Text: &cfg.Text, Tensors: ck}, lt)
				}()
				if err != nil {
					t.Fatal(err)
				}
				got, err := planLlamaCppLLM(&goldenConfig(t, name).Text, lt, 1)
				if err != nil {
					t.Fatal(err)
				}
				if len(got.Tensors) != len(want.Tensors) {
					t.Fatalf("%d tensors, converted %d", len(got.Tensors), len(want.Tensors))
				}
				for i, g := range got.Tensors {
					w := want.Tensors[i]
					if g.Name != w.Name || g.Type != w.Type || !slices.Equal(g.Shape, w.Shape) {
						t.Errorf("tensor %d: %s %v %v, converted %s %v %v", i, g.Name, g.Type, g.Shape, w.Name, w.Type, w.Shape)
					}
				}
				wkv := map[string]string{}
				for _, kv := range want.KV {
					wkv[kv.Key] = fmt.Sprint(kv.Value)
				}
				for _, kv := range got.KV {
					k := kv.Key
					if strings.HasPrefix(k, "tokenizer.") || k == "general.name" || k == "general.size_label" {
						continue
					}
					if wkv[k] != fmt.Sprint(kv.Value) {
						t.Errorf("%s = %v, converted %s", k, kv.Value, wkv[k])
					}
					delete(wkv, k)
				}
				for k := range wkv {
					if !strings.HasPrefix(k, "tokenizer.") && k != "general.name" && k != "general.size_label" && k != "general.basename" {
						t.Errorf("%s missing", k)
					}
				}
			})
		}
	}
}

// TestLlamaCppRuns writes synthetic LLaMA and T5 models of the golden
// sizes (and a q4_k_m LLaMA of k-quant width) and runs them in llama.cpp.
func TestLlamaCppRuns(t *testing.T) {
	libDir := modeltest.LibDir(t)
	small := &hfconfig.Config{Text: hfconfig.TextConfig{ModelType: "llama", HiddenSize: 256, IntermediateSize: 512,
		NumHiddenLayers: 2, NumAttentionHeads: 4, NumKeyValueHeads: 4, VocabSize: 600, MaxPositionEmbeddings: 512,
		RMSNormEps: 1e-6, RopeTheta: 10000, BOSTokenID: 1, EOSTokenID: 2}}
	for _, tc := range []struct {
		name, typ string
		cfg       *hfconfig.Config
	}{
		{"blip2-llama", "f16", goldenConfig(t, "blip2-llama")},
		{"blip2-t5", "q8_0", goldenConfig(t, "blip2-t5")},
		{"llama-256", "q4_k_m", small},
	} {
		t.Run(tc.name+"/"+tc.typ, func(t *testing.T) {
			dir := t.TempDir()
			path, err := ensureLlamaCppLLM(context.Background(), dir, tc.name, tc.cfg, Options{LLMType: tc.typ, LlamaLib: libDir, Seed: 5})
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(dir, tc.name+"-llm-"+tc.typ+"-seed5-v1", "llm.gguf"); path != want {
				t.Errorf("path %s, want %s", path, want)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "*.partial")); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
			f, err := gguf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if ft, _ := f.Int("general.file_type"); tc.typ == "q4_k_m" && ft != 15 {
				t.Errorf("file type %d, want 15 (q4_k_m)", ft)
			}
			f.Close()
			m, err := llamacpp.Open(path, llamacpp.Options{LibDir: libDir})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ids, err := m.Tokenize("a b c", false)
			if err != nil || len(ids) == 0 {
				t.Fatalf("tokenize: %v %v", ids, err)
			}
			c, err := m.NewContext(lm.ContextOptions{NCtx: 64, Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			info := m.Info()
			if info.EncoderDecoder {
				emb, err := m.TokenEmbeddings(ids)
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

// TestQuantizeNeedsLibrary: q4_k_m without llama.cpp is refused before
// anything is written.
func TestQuantizeNeedsLibrary(t *testing.T) {
	t.Setenv("BLIP2CHAT_LLAMA_LIB", "")
	dir := t.TempDir()
	_, err := ensureLlamaCppLLM(context.Background(), dir, "x", goldenConfig(t, "blip2-llama"),
		Options{LLMType: "q4_k_m", LlamaLib: filepath.Join(dir, "nothing-here")})
	if err == nil || !strings.Contains(err.Error(), "--llm-type f16 or q8_0") {
		t.Errorf("error %v", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("written: %v", left)
	}
}
