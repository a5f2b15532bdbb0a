package lmconv

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/plan"
	"github.com/blip2chat/blip2chat/weights/safetensors"
)

func mustOPTType(t *testing.T, s string) Type {
	t.Helper()
	ty, err := ParseOPTType(s)
	if err != nil {
		t.Fatal(err)
	}
	return ty
}

// planOPT is PlanFile for a checkpoint whose language model must be OPT.
func planOPT(src Source, t Type) (*plan.File, error) {
	if src.Text != nil && src.Text.ModelType != "opt" {
		return nil, fmt.Errorf("checkpoint %s: language model %q is not OPT", src.Dir, src.Text.ModelType)
	}
	return PlanFile(src, t)
}

// goldenGPT2 reads the golden OPT checkpoint's vocab.json and merges.txt.
func goldenGPT2(t *testing.T) (map[string]int, []string) {
	t.Helper()
	dir := filepath.Join(golden, "blip2-opt", "hf")
	data, err := os.ReadFile(filepath.Join(dir, "vocab.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vocab map[string]int
	if err := json.Unmarshal(data, &vocab); err != nil {
		t.Fatal(err)
	}
	data, err = os.ReadFile(filepath.Join(dir, "merges.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var merges []string
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if !strings.HasPrefix(l, "#version") {
			merges = append(merges, l)
		}
	}
	return vocab, merges
}

// TestOPTConvertGolden converts the golden OPT to each weight type and
// checks the metadata, every tensor's name, type, dims and values, and the
// tokenizer keys against the checkpoint.
func TestOPTConvertGolden(t *testing.T) {
	for _, c := range []struct {
		typ    string
		mat    gguf.Type
		ftype  uint32
		relTol float64 // of a matrix's largest magnitude
	}{
		{"f32", gguf.TypeF32, 0, 0},
		{"f16", gguf.TypeF16, 1, 1e-3},
		{"", gguf.TypeQ8_0, 7, 1e-2}, // the default
	} {
		t.Run(c.mat.String(), func(t *testing.T) {
			src := source(t, "blip2-opt")
			plan, err := PlanFile(src, mustOPTType(t, c.typ))
			if err != nil {
				t.Fatal(err)
			}
			f := writeAndOpen(t, plan)

			want := map[string]any{
				"general.architecture":                   "blip2-opt",
				"general.file_type":                      c.ftype,
				"blip2-opt.vocab_size":                   uint32(1000),
				"blip2-opt.context_length":               uint32(512),
				"blip2-opt.embedding_length":             uint32(64),
				"blip2-opt.word_embedding_length":        uint32(64),
				"blip2-opt.feed_forward_length":          uint32(160),
				"blip2-opt.block_count":                  uint32(2),
				"blip2-opt.attention.head_count":         uint32(4),
				"blip2-opt.attention.layer_norm_epsilon": float32(1e-5),
				"blip2-opt.position_offset":              uint32(2),
				"blip2-opt.layer_norm_before":            true,
				"blip2-opt.final_norm":                   true,
				"blip2-opt.bias":                         true,
				"blip2-opt.layer_norm_affine":            true,
				"blip2-opt.activation":                   "relu",
				"tokenizer.ggml.model":                   "gpt2",
				"tokenizer.ggml.bos_token_id":            uint32(2),
				"tokenizer.ggml.eos_token_id":            uint32(2),
				"tokenizer.ggml.unknown_token_id":        uint32(3),
				"tokenizer.ggml.padding_token_id":        uint32(1),
				"tokenizer.ggml.add_bos_token":           true,
				"tokenizer.ggml.add_eos_token":           false,
			}
			for k, v := range want {
				if got, ok := f.Value(k); !ok || got != v {
					t.Errorf("%s = %v (%T), want %v (%T)", k, got, got, v, v)
				}
			}

			// Tensors: the expected set, F32 for vectors and positions.
			expect := map[string][]uint64{
				"token_embd.weight":    {64, 1000},
				"position_embd.weight": {64, 514},
				"output_norm.weight":   {64},
				"output_norm.bias":     {64},
			}
			srcOf := map[string]string{
				"token_embd.weight":    "model.decoder.embed_tokens.weight",
				"position_embd.weight": "model.decoder.embed_positions.weight",
				"output_norm.weight":   "model.decoder.final_layer_norm.weight",
				"output_norm.bias":     "model.decoder.final_layer_norm.bias",
			}
			for i := 0; i < 2; i++ {
				for _, x := range []struct {
					out, src string
					dims     []uint64
				}{
					{"attn_norm", "self_attn_layer_norm", nil},
					{"attn_q", "self_attn.q_proj", []uint64{64, 64}},
					{"attn_k", "self_attn.k_proj", []uint64{64, 64}},
					{"attn_v", "self_attn.v_proj", []uint64{64, 64}},
					{"attn_output", "self_attn.out_proj", []uint64{64, 64}},
					{"ffn_norm", "final_layer_norm", nil},
					{"ffn_up", "fc1", []uint64{64, 160}},
					{"ffn_down", "fc2", []uint64{160, 64}},
				} {
					o := "blk." + string(rune('0'+i)) + "." + x.out
					s := "model.decoder.layers." + string(rune('0'+i)) + "." + x.src
					rows := uint64(64)
					if x.dims != nil {
						expect[o+".weight"] = x.dims
						rows = x.dims[1]
					} else {
						expect[o+".weight"] = []uint64{64}
					}
					expect[o+".bias"] = []uint64{rows}
					srcOf[o+".weight"], srcOf[o+".bias"] = s+".weight", s+".bias"
				}
			}
			if len(f.Tensors) != len(expect) {
				t.Errorf("%d tensors, want %d", len(f.Tensors), len(expect))
			}
			for name, dims := range expect {
				info, _, ok := f.Tensor(name)
				if !ok {
					t.Errorf("missing %s", name)
					continue
				}
				if !slices.Equal(info.Dims, dims) {
					t.Errorf("%s dims %v, want %v", name, info.Dims, dims)
				}
				wantType := gguf.TypeF32
				if len(dims) == 2 && name != "position_embd.weight" {
					wantType = c.mat
				}
				if info.Type != wantType {
					t.Errorf("%s type %v, want %v", name, info.Type, wantType)
				}
				got, _ := ggufFloat32(t, f, name)
				ref := ckFloat32(t, src.Tensors, Prefix+srcOf[name])
				var d, mx float64
				for i := range ref {
					d = max(d, math.Abs(float64(got[i]-ref[i])))
					mx = max(mx, math.Abs(float64(ref[i])))
				}
				tol := 0.0
				if info.Type != gguf.TypeF32 {
					tol = c.relTol * mx
				}
				if d > tol {
					t.Errorf("%s: values deviate by %.3g (max |w| %.3g)", name, d, mx)
				}
			}
			// Every language-model tensor is read.
			used := plan.Used()
			for _, n := range src.Tensors.Names() {
				if strings.HasPrefix(n, Prefix) && !slices.Contains(used, n) {
					t.Errorf("%s not used", n)
				}
			}

			// The tokenizer: vocab.json's tokens by id, merges.txt's pairs.
			vocab, merges := goldenGPT2(t)
			tokens, _ := f.Strings("tokenizer.ggml.tokens")
			if len(tokens) != 1000 {
				t.Fatalf("%d tokens", len(tokens))
			}
			for tok, id := range vocab {
				if tokens[id] != tok {
					t.Errorf("token %d = %q, want %q", id, tokens[id], tok)
				}
			}
			if got, _ := f.Strings("tokenizer.ggml.merges"); !slices.Equal(got, merges) {
				t.Errorf("merges differ from merges.txt (%d vs %d)", len(got), len(merges))
			}
			types, _ := f.Int32s("tokenizer.ggml.token_type")
			if types[2] != tokControl || types[1] != tokControl || types[3] != tokControl || types[500] != tokNormal {
				t.Errorf("token types %v...", types[:6])
			}
		})
	}
}

// optVariant plans the golden OPT with its config and tensors edited.
func optVariant(t *testing.T, edit func(*Source, *editTensors)) (*plan.File, error) {
	t.Helper()
	src := source(t, "blip2-opt")
	text := *src.Text
	src.Text = &text
	e := editTensors{base: src.Tensors, shape: map[string][]int{}, dtype: map[string]safetensors.DType{}, alias: map[string]string{}}
	edit(&src, &e)
	src.Tensors = e
	return planOPT(src, mustOPTType(t, "f16"))
}

func planned(f *plan.File) map[string][]int {
	m := map[string][]int{}
	for _, t := range f.Tensors {
		m[t.Name] = t.Shape
	}
	return m
}

// TestOPTVariants: the architecture options of OPTConfig plan the tensors
// and keys the engine expects.
func TestOPTVariants(t *testing.T) {
	const d = "model.decoder."
	t.Run("projection", func(t *testing.T) {
		f, err := optVariant(t, func(s *Source, e *editTensors) {
			s.Text.WordEmbedProjDim = 32
			e.shape[Prefix+d+"embed_tokens.weight"] = []int{1000, 32}
			e.alias[Prefix+d+"project_in.weight"] = Prefix + d + "layers.0.fc2.weight"
			e.shape[Prefix+d+"project_in.weight"] = []int{64, 32}
			e.alias[Prefix+d+"project_out.weight"] = Prefix + d + "layers.0.fc1.weight"
			e.shape[Prefix+d+"project_out.weight"] = []int{32, 64}
		})
		if err != nil {
			t.Fatal(err)
		}
		p := planned(f)
		if !slices.Equal(p["project_in.weight"], []int{64, 32}) || !slices.Equal(p["project_out.weight"], []int{32, 64}) ||
			!slices.Equal(p["token_embd.weight"], []int{1000, 32}) {
			t.Errorf("projection tensors: %v %v %v", p["project_in.weight"], p["project_out.weight"], p["token_embd.weight"])
		}
		if v, _ := f.Value("blip2-opt.word_embedding_length"); v != uint32(32) {
			t.Errorf("word_embedding_length %v", v)
		}
	})
	t.Run("postLN-nobias-noaffine-gelu", func(t *testing.T) {
		f, err := optVariant(t, func(s *Source, e *editTensors) {
			s.Text.DoLayerNormBefore, s.Text.EnableBias, s.Text.LayerNormElementwiseAffine = false, false, false
			s.Text.ActivationFunction = "gelu"
		})
		if err != nil {
			t.Fatal(err)
		}
		for name := range planned(f) {
			if strings.HasSuffix(name, ".bias") || strings.Contains(name, "norm") {
				t.Errorf("planned %s", name)
			}
		}
		for k, v := range map[string]any{"blip2-opt.layer_norm_before": false, "blip2-opt.final_norm": false,
			"blip2-opt.bias": false, "blip2-opt.layer_norm_affine": false, "blip2-opt.activation": "gelu"} {
			if got, _ := f.Value(k); got != v {
				t.Errorf("%s = %v, want %v", k, got, v)
			}
		}
	})
	t.Run("tied head stored", func(t *testing.T) {
		f, err := optVariant(t, func(s *Source, e *editTensors) {
			e.alias[Prefix+"lm_head.weight"] = Prefix + d + "embed_tokens.weight"
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := planned(f)["output.weight"]; ok || !slices.Contains(f.Skipped, Prefix+"lm_head.weight") {
			t.Errorf("tied lm_head: output planned or not skipped (%v)", f.Skipped)
		}
	})
	t.Run("untied head", func(t *testing.T) {
		f, err := optVariant(t, func(s *Source, e *editTensors) {
			s.Text.TieWordEmbeddings = false
			e.alias[Prefix+"lm_head.weight"] = Prefix + d + "embed_tokens.weight"
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(planned(f)["output.weight"], []int{1000, 64}) {
			t.Errorf("untied lm_head not planned as output.weight")
		}
	})
}

// TestOPTPlanErrors: bad checkpoints and types are refused with an error
// naming the tensor or setting.
func TestOPTPlanErrors(t *testing.T) {
	const d = Prefix + "model.decoder."
	cases := []struct {
		name string
		edit func(*Source, *editTensors)
		want string
	}{
		{"missing", func(s *Source, e *editTensors) { e.drop = d + "layers.1.fc2.bias" }, "layers.1.fc2.bias is missing"},
		{"shape", func(s *Source, e *editTensors) { e.shape[d+"layers.0.self_attn.q_proj.weight"] = []int{64, 63} },
			"q_proj.weight has shape [64 63]"},
		{"dtype", func(s *Source, e *editTensors) { e.dtype[d+"embed_tokens.weight"] = safetensors.I64 }, "has dtype I64"},
		{"positions", func(s *Source, e *editTensors) { s.Text.MaxPositionEmbeddings = 1024 }, "embed_positions.weight has shape [514 64]"},
		{"activation", func(s *Source, e *editTensors) { s.Text.ActivationFunction = "silu" }, `activation_function "silu"`},
		{"heads", func(s *Source, e *editTensors) { s.Text.NumAttentionHeads = 5 }, "not a multiple of num_attention_heads 5"},
		{"untied no head", func(s *Source, e *editTensors) { s.Text.TieWordEmbeddings = false }, "lm_head.weight is missing"},
		{"not opt", func(s *Source, e *editTensors) { s.Text.ModelType = "llama" }, `language model "llama" is not OPT`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := optVariant(t, c.edit)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
	if _, err := ParseOPTType("q4_k_m"); err == nil || !strings.Contains(err.Error(), "not available for OPT") {
		t.Errorf("q4_k_m for OPT: %v", err)
	}
	if ty, err := ParseOPTType(""); err != nil || ty.Name != "q8_0" {
		t.Errorf("default OPT type %v %v", ty, err)
	}
	// The family picks the default and the accepted types.
	for _, c := range []struct{ family, want string }{{"opt", "q8_0"}, {"llama", "q4_k_m"}, {"t5", "q4_k_m"}} {
		if ty, err := ParseFamilyType(c.family, ""); err != nil || ty.Name != c.want {
			t.Errorf("ParseFamilyType(%q, \"\") = %v, %v; want %s", c.family, ty, err, c.want)
		}
	}
	if _, err := ParseFamilyType("opt", "q4_k_m"); err == nil || !strings.Contains(err.Error(), "not available for OPT") {
		t.Errorf("ParseFamilyType(opt, q4_k_m): %v", err)
	}
	// Plan refuses a type only llama.cpp's quantizer makes.
	q4, err := ParseType("q4_k_m")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := PlanFile(source(t, "blip2-opt"), q4); err == nil || !strings.Contains(err.Error(), "OPT weights can be f32, f16 or q8_0, not q4_k_m") {
		t.Errorf("Plan of OPT as q4_k_m: %v", err)
	}
	// No tokenizer files.
	src := source(t, "blip2-opt")
	src.Dir = t.TempDir()
	if _, err := planOPT(src, mustOPTType(t, "f32")); err == nil || !strings.Contains(err.Error(), "no GPT-2 tokenizer") {
		t.Errorf("no tokenizer: %v", err)
	}
}

// TestOPTTokenizerJSON: a checkpoint with only tokenizer.json (merges as
// pairs, an added <image> token past vocab.json) gives the same tokens and
// merges as vocab.json + merges.txt, plus the added token.
func TestOPTTokenizerJSON(t *testing.T) {
	vocab, merges := goldenGPT2(t)
	dir := t.TempDir()
	var pairs [][2]string
	for _, m := range merges {
		a, b, _ := strings.Cut(m, " ")
		pairs = append(pairs, [2]string{a, b})
	}
	tj := map[string]any{
		"added_tokens":  []map[string]any{{"id": 2, "content": "</s>", "special": true}, {"id": 1000, "content": "<image>", "special": false}},
		"pre_tokenizer": map[string]any{"type": "ByteLevel", "add_prefix_space": false},
		"model":         map[string]any{"type": "BPE", "vocab": vocab, "merges": pairs},
	}
	data, _ := json.Marshal(tj)
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(filepath.Join(golden, "blip2-opt", "hf", "tokenizer_config.json"))
	os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), cfg, 0o644)

	src := source(t, "blip2-opt")
	text := *src.Text
	text.VocabSize = 1008
	src.Text, src.Dir = &text, dir
	e := editTensors{base: src.Tensors, shape: map[string][]int{Prefix + "model.decoder.embed_tokens.weight": {1008, 64}}}
	src.Tensors = e
	f, err := planOPT(src, mustOPTType(t, "f32"))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := f.Value("tokenizer.ggml.tokens")
	tokens := v.([]string)
	for tok, id := range vocab {
		if tokens[id] != tok {
			t.Errorf("token %d = %q, want %q", id, tokens[id], tok)
		}
	}
	// The added token is kept, the 7 padding rows after it are not.
	if len(tokens) != 1001 || tokens[1000] != "<image>" {
		t.Errorf("tokens past vocab.json: %q", tokens[1000:])
	}
	tv, _ := f.Value("tokenizer.ggml.token_type")
	if types := tv.([]int32); types[1000] != tokUserDefined {
		t.Errorf("types past vocab.json: %v", types[1000:])
	}
	if emb := f.Tensors[0]; emb.Name != OPTTokenEmbd || !slices.Equal(emb.Shape, []int{1001, 64}) {
		t.Errorf("%s shape %v, want [1001 64]", emb.Name, emb.Shape)
	}
	// As the image placeholder (config.json's image_token_index) it is
	// left out too.
	src.Placeholders = []int{1000}
	if f, err = planOPT(src, mustOPTType(t, "f32")); err != nil {
		t.Fatal(err)
	}
	v, _ = f.Value("tokenizer.ggml.tokens")
	if n := len(v.([]string)); n != 1000 || !slices.Equal(f.Tensors[0].Shape, []int{1000, 64}) {
		t.Errorf("with <image> a placeholder: %d tokens, embedding %v; want 1000", n, f.Tensors[0].Shape)
	}
	src.Placeholders = nil
	if m, _ := f.Value("tokenizer.ggml.merges"); !slices.Equal(m.([]string), merges) {
		t.Error("merges differ from merges.txt")
	}

	// A merge of unknown tokens is refused.
	bad := strings.Replace(string(data), `["Ġ","t"]`, `["Ġ","zzz"]`, 1)
	if bad == string(data) {
		t.Fatal("test edit did not apply")
	}
	os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(bad), 0o644)
	if _, err := planOPT(src, mustOPTType(t, "f32")); err == nil || !strings.Contains(err.Error(), `uses "zzz"`) {
		t.Errorf("bad merge: %v", err)
	}
}
