package lmconv

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/weights/dtype"
	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
	"github.com/blip2chat/blip2chat/weights/plan"
	"github.com/blip2chat/blip2chat/weights/safetensors"
	"github.com/blip2chat/blip2chat/weights/sentencepiece"
)

const golden = "../../testdata/golden"

func mustType(t *testing.T, s string) Type {
	t.Helper()
	ty, err := ParseType(s)
	if err != nil {
		t.Fatal(err)
	}
	return ty
}

// writeAndOpen writes p through the converter's write path into a
// temporary folder and opens it (closed at the end of the test).
func writeAndOpen(t *testing.T, p *plan.File) *gguf.File {
	t.Helper()
	w, err := plan.WriteFiles(context.Background(), t.TempDir(), []*plan.File{p}, plan.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(w.Paths[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// source opens a golden case's checkpoint.
func source(t *testing.T, name string) Source {
	t.Helper()
	dir := filepath.Join(golden, name, "hf")
	cfg, err := hfconfig.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := safetensors.OpenCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	return Source{Dir: dir, Text: &cfg.Text, Tensors: ck}
}

func ckFloat32(t *testing.T, ts plan.Checkpoint, name string) []float32 {
	t.Helper()
	x, ok := ts.Tensor(name)
	if !ok {
		t.Fatalf("checkpoint has no %s", name)
	}
	v, err := x.Float32()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func ggufFloat32(t *testing.T, f *gguf.File, name string) ([]float32, gguf.TensorInfo) {
	t.Helper()
	info, data, ok := f.Tensor(name)
	if !ok {
		t.Fatalf("gguf has no tensor %s", name)
	}
	n := int(info.NumElements())
	out := make([]float32, n)
	switch info.Type {
	case gguf.TypeF32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
	case gguf.TypeF16:
		for i := range out {
			out[i] = dtype.F16ToF32(binary.LittleEndian.Uint16(data[2*i:]))
		}
	case gguf.TypeQ8_0:
		dtype.DequantizeQ8_0(out, data)
	default:
		t.Fatalf("%s: type %v", name, info.Type)
	}
	return out, info
}

// expectedTensors lists the GGUF tensors, with ggml dims, of a golden case.
func expectedTensors(arch string) map[string][]uint64 {
	m := map[string][]uint64{}
	if arch == "llama" {
		const e, ff, v, q, kv = 64, 160, 2000, 64, 32
		m["token_embd.weight"] = []uint64{e, v}
		m["output_norm.weight"] = []uint64{e}
		m["output.weight"] = []uint64{e, v}
		for i := range 2 {
			p := "blk." + string(rune('0'+i)) + "."
			m[p+"attn_norm.weight"] = []uint64{e}
			m[p+"attn_q.weight"] = []uint64{e, q}
			m[p+"attn_k.weight"] = []uint64{e, kv}
			m[p+"attn_v.weight"] = []uint64{e, kv}
			m[p+"attn_output.weight"] = []uint64{q, e}
			m[p+"ffn_norm.weight"] = []uint64{e}
			m[p+"ffn_gate.weight"] = []uint64{e, ff}
			m[p+"ffn_up.weight"] = []uint64{e, ff}
			m[p+"ffn_down.weight"] = []uint64{ff, e}
		}
		return m
	}
	const d, ff, v, inner, buckets, heads = 64, 160, 1100, 64, 32, 4
	m["token_embd.weight"] = []uint64{d, v}
	m["output.weight"] = []uint64{d, v}
	m["enc.output_norm.weight"] = []uint64{d}
	m["dec.output_norm.weight"] = []uint64{d}
	for i := range 2 {
		for _, side := range []string{"enc", "dec"} {
			p := side + ".blk." + string(rune('0'+i)) + "."
			m[p+"attn_norm.weight"] = []uint64{d}
			for _, x := range []string{"q", "k", "v"} {
				m[p+"attn_"+x+".weight"] = []uint64{d, inner}
			}
			m[p+"attn_o.weight"] = []uint64{inner, d}
			if i == 0 {
				m[p+"attn_rel_b.weight"] = []uint64{heads, buckets}
			}
			m[p+"ffn_norm.weight"] = []uint64{d}
			m[p+"ffn_gate.weight"] = []uint64{d, ff}
			m[p+"ffn_up.weight"] = []uint64{d, ff}
			m[p+"ffn_down.weight"] = []uint64{ff, d}
			if side == "dec" {
				m[p+"cross_attn_norm.weight"] = []uint64{d}
				for _, x := range []string{"q", "k", "v"} {
					m[p+"cross_attn_"+x+".weight"] = []uint64{d, inner}
				}
				m[p+"cross_attn_o.weight"] = []uint64{inner, d}
			}
		}
	}
	return m
}

// TestConvertGolden converts each golden language model to an f32 GGUF and
// checks, read back from the file: the metadata llama.cpp reads (with its
// exact GGUF types), every tensor's name, dims and type, the weights (Q/K
// permuted for LLaMA), and the tokenizer against the SentencePiece model.
func TestConvertGolden(t *testing.T) {
	u32 := func(v uint32) any { return v }
	f32 := func(v float32) any { return v }
	cases := []struct {
		name, arch, spm string
		kv              map[string]any
	}{
		{"blip2-llama", "llama", "tokenizer.model", nil},
		{"instructblip-llama", "llama", "tokenizer.model", nil},
		{"blip2-t5", "t5", "spiece.model", nil},
	}
	llamaKV := map[string]any{
		"general.architecture":                   "llama",
		"general.type":                           "model",
		"general.file_type":                      u32(0),
		"general.quantization_version":           u32(2),
		"llama.block_count":                      u32(2),
		"llama.context_length":                   u32(512),
		"llama.embedding_length":                 u32(64),
		"llama.feed_forward_length":              u32(160),
		"llama.attention.head_count":             u32(4),
		"llama.attention.head_count_kv":          u32(2),
		"llama.attention.key_length":             u32(16),
		"llama.attention.value_length":           u32(16),
		"llama.rope.freq_base":                   f32(10000),
		"llama.rope.dimension_count":             u32(16),
		"llama.attention.layer_norm_rms_epsilon": f32(1e-6),
		"llama.vocab_size":                       u32(2000),
		"tokenizer.ggml.model":                   "llama",
		"tokenizer.ggml.pre":                     "default",
		"tokenizer.ggml.bos_token_id":            u32(1),
		"tokenizer.ggml.eos_token_id":            u32(2),
		"tokenizer.ggml.unknown_token_id":        u32(0),
		"tokenizer.ggml.padding_token_id":        u32(0),
		"tokenizer.ggml.add_bos_token":           true,
		"tokenizer.ggml.add_eos_token":           false,
	}
	t5KV := map[string]any{
		"general.architecture":                    "t5",
		"general.type":                            "model",
		"general.file_type":                       u32(0),
		"general.quantization_version":            u32(2),
		"t5.context_length":                       u32(512),
		"t5.embedding_length":                     u32(64),
		"t5.feed_forward_length":                  u32(160),
		"t5.block_count":                          u32(2),
		"t5.decoder_block_count":                  u32(2),
		"t5.attention.head_count":                 u32(4),
		"t5.attention.key_length":                 u32(16),
		"t5.attention.value_length":               u32(16),
		"t5.attention.layer_norm_epsilon":         f32(1e-6),
		"t5.attention.layer_norm_rms_epsilon":     f32(1e-6),
		"t5.attention.relative_buckets_count":     u32(32),
		"t5.decoder_start_token_id":               u32(0),
		"tokenizer.ggml.model":                    "t5",
		"tokenizer.ggml.pre":                      "default",
		"tokenizer.ggml.eos_token_id":             u32(1),
		"tokenizer.ggml.unknown_token_id":         u32(2),
		"tokenizer.ggml.padding_token_id":         u32(0),
		"tokenizer.ggml.add_bos_token":            false,
		"tokenizer.ggml.add_eos_token":            true,
		"tokenizer.ggml.add_space_prefix":         true,
		"tokenizer.ggml.remove_extra_whitespaces": true,
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := source(t, c.name)
			plan, err := PlanFile(src, mustType(t, "f32"))
			if err != nil {
				t.Fatal(err)
			}
			f := writeAndOpen(t, plan)

			want := llamaKV
			if c.arch == "t5" {
				want = t5KV
			}
			for k, v := range want {
				got, ok := f.Value(k)
				if !ok {
					t.Errorf("key %s missing", k)
					continue
				}
				if got != v { // compares dynamic types too: uint32 vs int32 matters to llama.cpp
					t.Errorf("key %s = %v (%T), want %v (%T)", k, got, got, v, v)
				}
			}
			if c.arch == "llama" {
				if _, ok := f.Value("t5.decoder_start_token_id"); ok {
					t.Error("llama file has a t5 key")
				}
				if _, ok := f.Value("tokenizer.ggml.bos_token_id"); !ok {
					t.Error("no bos id")
				}
			} else if _, ok := f.Value("tokenizer.ggml.bos_token_id"); ok {
				t.Error("t5 file has a BOS id; the tokenizer has none")
			}
			if s, _ := f.String("general.name"); s != "hf" {
				t.Errorf("general.name %q, want the folder name", s)
			}

			// Tensors: exactly the expected set, ggml dims, F32.
			exp := expectedTensors(c.arch)
			if len(f.Tensors) != len(exp) {
				t.Errorf("%d tensors, want %d", len(f.Tensors), len(exp))
			}
			for _, ti := range f.Tensors {
				d, ok := exp[ti.Name]
				if !ok {
					t.Errorf("unexpected tensor %s", ti.Name)
					continue
				}
				if !reflect.DeepEqual(ti.Dims, d) {
					t.Errorf("%s dims %v, want %v", ti.Name, ti.Dims, d)
				}
				if ti.Type != gguf.TypeF32 {
					t.Errorf("%s type %v, want F32", ti.Name, ti.Type)
				}
			}

			// Every language-model tensor of the checkpoint is used.
			used := map[string]bool{}
			for _, n := range plan.Used() {
				used[n] = true
			}
			for _, n := range src.Tensors.Names() {
				if strings.HasPrefix(n, Prefix) && !used[n] {
					t.Errorf("checkpoint tensor %s not used", n)
				}
				if !strings.HasPrefix(n, Prefix) && used[n] {
					t.Errorf("non-language-model tensor %s used", n)
				}
			}

			// Weights.
			type pair struct {
				gguf, ck string
				perm     int // heads to un-permute by, 0 for a plain copy
			}
			var pairs []pair
			if c.arch == "llama" {
				pairs = []pair{
					{"token_embd.weight", "model.embed_tokens.weight", 0},
					{"output.weight", "lm_head.weight", 0},
					{"blk.1.attn_q.weight", "model.layers.1.self_attn.q_proj.weight", 4},
					{"blk.1.attn_k.weight", "model.layers.1.self_attn.k_proj.weight", 2},
					{"blk.1.attn_v.weight", "model.layers.1.self_attn.v_proj.weight", 0},
					{"blk.0.ffn_down.weight", "model.layers.0.mlp.down_proj.weight", 0},
					{"output_norm.weight", "model.norm.weight", 0},
				}
			} else {
				pairs = []pair{
					{"token_embd.weight", "shared.weight", 0},
					{"output.weight", "lm_head.weight", 0},
					{"enc.blk.0.attn_rel_b.weight", "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", 0},
					{"dec.blk.0.attn_rel_b.weight", "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", 0},
					{"dec.blk.1.cross_attn_k.weight", "decoder.block.1.layer.1.EncDecAttention.k.weight", 0},
					{"enc.blk.1.ffn_gate.weight", "encoder.block.1.layer.1.DenseReluDense.wi_0.weight", 0},
					{"enc.blk.1.ffn_up.weight", "encoder.block.1.layer.1.DenseReluDense.wi_1.weight", 0},
					{"dec.blk.0.ffn_norm.weight", "decoder.block.0.layer.2.layer_norm.weight", 0},
				}
			}
			for _, p := range pairs {
				got, info := ggufFloat32(t, f, p.gguf)
				want := ckFloat32(t, src.Tensors, Prefix+p.ck)
				cols := int(info.Dims[0])
				if p.perm > 0 {
					// Undo the rotary permutation row by row, independently
					// of permuteRows: HF row h*hd + j*hd/2 + i is GGUF row
					// h*hd + 2i + j.
					rows := len(want) / cols
					hd := rows / p.perm
					un := make([]float32, len(got))
					for r := 0; r < rows; r++ {
						h, rem := r/hd, r%hd
						i, j := rem/2, rem%2
						src := h*hd + j*hd/2 + i
						copy(un[src*cols:(src+1)*cols], got[r*cols:(r+1)*cols])
					}
					got = un
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s differs from %s", p.gguf, p.ck)
				}
			}

			// Tokenizer against the SentencePiece model.
			sp, err := sentencepiece.Load(filepath.Join(src.Dir, c.spm))
			if err != nil {
				t.Fatal(err)
			}
			toks, _ := f.Strings("tokenizer.ggml.tokens")
			scores, _ := f.Float32s("tokenizer.ggml.scores")
			types, _ := f.Int32s("tokenizer.ggml.token_type")
			if len(toks) != src.Text.VocabSize || len(scores) != len(toks) || len(types) != len(toks) {
				t.Fatalf("%d tokens, %d scores, %d types; want vocab_size %d each", len(toks), len(scores), len(types), src.Text.VocabSize)
			}
			nByte := 0
			for i, p := range sp.Pieces {
				if toks[i] != p.Text || scores[i] != p.Score || int(types[i]) != p.Type {
					t.Fatalf("token %d = %q %v %d, want %q %v %d", i, toks[i], scores[i], types[i], p.Text, p.Score, p.Type)
				}
				if p.Type == sentencepiece.TypeByte {
					nByte++
				}
			}
			if c.arch == "llama" {
				if nByte != 256 {
					t.Errorf("%d byte tokens, want 256 (byte fallback)", nByte)
				}
				if types[0] != gguf.TokenUnknown || types[1] != tokControl || types[2] != tokControl {
					t.Errorf("types of <unk> <s> </s>: %v", types[:3])
				}
			} else {
				// Sentinels: <extra_id_0> is the last id, <extra_id_99> the
				// first after the pieces.
				n := len(sp.Pieces)
				if n != 1000 || toks[1099] != "<extra_id_0>" || toks[1000] != "<extra_id_99>" || types[1050] != tokControl {
					t.Errorf("sentinels: %d pieces, %q %q %d", n, toks[1099], toks[1000], types[1050])
				}
				cm, ok := f.Value("tokenizer.ggml.precompiled_charsmap")
				if b, _ := cm.([]uint8); !ok || len(sp.PrecompiledCharsmap) == 0 || !reflect.DeepEqual(b, sp.PrecompiledCharsmap) {
					t.Errorf("precompiled_charsmap: %T of %d bytes, want the model's %d bytes as uint8 array", cm, len(b), len(sp.PrecompiledCharsmap))
				}
			}
		})
	}
}

// TestWeightTypes checks which tensors each --llm-type quantizes (the
// script's rules: vectors and norms F32; Q8_0 falls back to F16 for rows
// not a multiple of 32, like T5's 4-wide relative bias) and that q8_0 and
// f16 values read back within their rounding.
func TestWeightTypes(t *testing.T) {
	cases := []struct {
		typ, tensor string
		want        gguf.Type
		ftype       uint32
	}{
		{"f16", "blk.0.attn_q.weight", gguf.TypeF16, 1},
		{"f16", "blk.0.attn_norm.weight", gguf.TypeF32, 1},
		{"f16", "token_embd.weight", gguf.TypeF16, 1},
		{"q8_0", "blk.0.ffn_down.weight", gguf.TypeQ8_0, 7},
		{"q8_0", "output.weight", gguf.TypeQ8_0, 7},
		{"q8_0", "output_norm.weight", gguf.TypeF32, 7},
		{"q8_0", "enc.blk.0.attn_rel_b.weight", gguf.TypeF16, 7},
		{"q8_0", "enc.blk.0.attn_q.weight", gguf.TypeQ8_0, 7},
		{"f16", "dec.blk.0.attn_rel_b.weight", gguf.TypeF16, 1},
		{"q4_k_m", "blk.0.attn_k.weight", gguf.TypeF16, 1}, // written f16, quantized by llama.cpp afterwards
	}
	for _, c := range cases {
		t.Run(c.typ+"/"+c.tensor, func(t *testing.T) {
			name := "blip2-llama"
			if strings.Contains(c.tensor, "enc.") || strings.Contains(c.tensor, "dec.") {
				name = "blip2-t5"
			}
			src := source(t, name)
			plan, err := PlanFile(src, mustType(t, c.typ))
			if err != nil {
				t.Fatal(err)
			}
			if ft, _ := plan.Value("general.file_type"); ft != c.ftype {
				t.Errorf("file_type %v, want %d", ft, c.ftype)
			}
			f := writeAndOpen(t, plan)
			got, info := ggufFloat32(t, f, c.tensor)
			if info.Type != c.want {
				t.Fatalf("type %v, want %v", info.Type, c.want)
			}
			ref, _ := PlanFile(src, mustType(t, "f32"))
			var want []float32
			for _, x := range ref.Tensors {
				if x.Name == c.tensor {
					want, err = x.Values()
					if err != nil {
						t.Fatal(err)
					}
				}
			}
			var maxRel float64
			for i := range want {
				d := math.Abs(float64(got[i] - want[i]))
				maxRel = math.Max(maxRel, d/math.Max(math.Abs(float64(want[i])), 1e-3))
			}
			tol := map[gguf.Type]float64{gguf.TypeF32: 0, gguf.TypeF16: 1e-3, gguf.TypeQ8_0: 0}[c.want]
			if c.want == gguf.TypeQ8_0 {
				// |x - q d| <= d/2 with d = amax/127: bounded by the block's
				// largest value, so compare absolutely.
				var amax, maxAbs float64
				for i := range want {
					amax = math.Max(amax, math.Abs(float64(want[i])))
					maxAbs = math.Max(maxAbs, math.Abs(float64(got[i]-want[i])))
				}
				if maxAbs > amax/127*0.51+1e-7 {
					t.Errorf("q8_0 max error %g > amax/254 = %g", maxAbs, amax/254)
				}
				return
			}
			if maxRel > tol {
				t.Errorf("max relative error %g > %g", maxRel, tol)
			}
		})
	}
}

// editTensors changes a checkpoint as a test needs.
type editTensors struct {
	base  plan.Checkpoint
	drop  string
	shape map[string][]int
	dtype map[string]safetensors.DType
	alias map[string]string // extra name -> existing name
}

func (e editTensors) Tensor(name string) (safetensors.Tensor, bool) {
	if name == e.drop {
		return safetensors.Tensor{}, false
	}
	src := name
	if a, ok := e.alias[name]; ok {
		src = a
	}
	t, ok := e.base.Tensor(src)
	if s, ok2 := e.shape[name]; ok2 {
		t.Shape = s
	}
	if d, ok2 := e.dtype[name]; ok2 {
		t.DType = d
	}
	return t, ok
}

func (e editTensors) Names() []string {
	var out []string
	for _, n := range e.base.Names() {
		if n != e.drop {
			out = append(out, n)
		}
	}
	for n := range e.alias {
		out = append(out, n)
	}
	return out
}

// TestPlanErrors checks that bad checkpoints are refused before anything
// is written, with an error naming the tensor or setting.
func TestPlanErrors(t *testing.T) {
	const q0 = Prefix + "model.layers.0.self_attn.q_proj.weight"
	cases := []struct {
		name, ckpt string
		edit       func(*Source)
		want       string
	}{
		{"missing q_proj", "blip2-llama", func(s *Source) { s.Tensors = editTensors{base: s.Tensors, drop: q0} }, q0 + " is missing"},
		{"missing last-layer tensor", "instructblip-llama", func(s *Source) {
			s.Tensors = editTensors{base: s.Tensors, drop: Prefix + "model.layers.1.mlp.down_proj.weight"}
		}, "model.layers.1.mlp.down_proj.weight is missing"},
		{"wrong k_proj shape", "blip2-llama", func(s *Source) {
			n := Prefix + "model.layers.1.self_attn.k_proj.weight"
			s.Tensors = editTensors{base: s.Tensors, shape: map[string][]int{n: {64, 64}}}
		}, "k_proj.weight has shape [64 64], expected [32 64]"},
		{"integer tensor", "blip2-llama", func(s *Source) {
			s.Tensors = editTensors{base: s.Tensors, dtype: map[string]safetensors.DType{q0: safetensors.I64}}
		}, "q_proj.weight has dtype I64"},
		{"missing lm_head untied", "blip2-llama", func(s *Source) {
			s.Tensors = editTensors{base: s.Tensors, drop: Prefix + "lm_head.weight"}
		}, "lm_head.weight is missing"},
		{"vocab mismatch", "blip2-llama", func(s *Source) { s.Text.VocabSize = 2001 }, "embed_tokens.weight has shape [2000 64], expected [2001 64]"},
		{"gelu llama", "blip2-llama", func(s *Source) { s.Text.HiddenAct = "gelu" }, `hidden_act "gelu"`},
		{"yarn rope", "blip2-llama", func(s *Source) { s.Text.RopeType = "yarn"; s.Text.RopeFactor = 4 }, `rope scaling "yarn"`},
		{"kv heads", "blip2-llama", func(s *Source) { s.Text.NumKeyValueHeads = 3 }, "not a multiple of num_key_value_heads 3"},
		{"no tokenizer", "blip2-llama", func(s *Source) { s.Dir = t.TempDir() }, "no SentencePiece tokenizer (tokenizer.model)"},
		{"t5 max distance", "blip2-t5", func(s *Source) { s.Text.RelativeAttentionMaxDistance = 64 }, "relative_attention_max_distance is 64, but llama.cpp's T5 hard-codes 128"},
		{"t5 silu", "blip2-t5", func(s *Source) { s.Text.DenseActFn = "silu"; s.Text.FeedForwardProj = "gated-silu" }, `feed_forward_proj "gated-silu"`},
		{"t5 missing rel bias", "blip2-t5", func(s *Source) {
			s.Tensors = editTensors{base: s.Tensors, drop: Prefix + "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"}
		}, "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight is missing"},
		{"t5 missing shared", "blip2-t5", func(s *Source) {
			s.Tensors = editTensors{base: s.Tensors, drop: Prefix + "shared.weight"}
		}, "shared.weight is missing"},
		{"t5 rel bias shape", "blip2-t5", func(s *Source) { s.Text.RelativeAttentionNumBuckets = 16 }, "relative_attention_bias.weight has shape [32 4], expected [16 4]"},
		{"unknown family", "blip2-llama", func(s *Source) { s.Text.ModelType = "gpt_neox" }, `language model "gpt_neox" cannot be converted (supported: llama, opt, t5)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := source(t, c.ckpt)
			text := *src.Text
			src.Text = &text
			c.edit(&src)
			_, err := PlanFile(src, mustType(t, "f16"))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want one line containing %q", err, c.want)
			}
		})
	}
}

// TestT5TiedHeads checks the two tied-embedding T5 variants: without
// output scaling there is no output.weight (llama.cpp reuses token_embd);
// with it (original T5) the head is the embeddings times d_model^-0.5.
func TestT5TiedHeads(t *testing.T) {
	for _, scale := range []bool{false, true} {
		src := source(t, "blip2-t5")
		text := *src.Text
		text.TieWordEmbeddings, text.ScaleDecoderOutputs = true, scale
		src.Text = &text
		src.Tensors = editTensors{base: src.Tensors, drop: Prefix + "lm_head.weight"}
		plan, err := PlanFile(src, mustType(t, "f32"))
		if err != nil {
			t.Fatal(err)
		}
		var out *Tensor
		for i := range plan.Tensors {
			if plan.Tensors[i].Name == "output.weight" {
				out = &plan.Tensors[i]
			}
		}
		if !scale {
			if out != nil {
				t.Error("tied unscaled T5 has an output.weight")
			}
			continue
		}
		if out == nil {
			t.Fatal("tied scaled T5 has no output.weight")
		}
		got, err := out.Values()
		if err != nil {
			t.Fatal(err)
		}
		emb := ckFloat32(t, src.Tensors, Prefix+"shared.weight")
		for i := range emb {
			if d := math.Abs(float64(got[i] - emb[i]/8)); d > 1e-7 {
				t.Fatalf("output[%d] = %g, want %g / 8", i, got[i], emb[i])
			}
		}
	}
}

// TestT5EmbeddingCopies: hub T5 checkpoints may store the shared
// embeddings as encoder.embed_tokens / decoder.embed_tokens too (or only);
// the first is converted, the others are checked and skipped, not unused.
func TestT5EmbeddingCopies(t *testing.T) {
	const shared = Prefix + "shared.weight"
	enc, dec := Prefix+"encoder.embed_tokens.weight", Prefix+"decoder.embed_tokens.weight"
	cases := []struct {
		name        string
		drop        string
		alias       map[string]string
		source      string
		skipped     []string
		shapeBroken string
	}{
		{"all three", "", map[string]string{enc: shared, dec: shared}, shared, []string{enc, dec}, ""},
		{"no shared", shared, map[string]string{enc: shared, dec: shared}, enc, []string{dec}, ""},
		{"bad copy", "", map[string]string{dec: shared}, shared, nil, dec},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := source(t, "blip2-t5")
			e := editTensors{base: src.Tensors, drop: c.drop, alias: c.alias}
			if c.shapeBroken != "" {
				e.shape = map[string][]int{c.shapeBroken: {1100, 32}}
			}
			src.Tensors = e
			plan, err := PlanFile(src, mustType(t, "f16"))
			if c.shapeBroken != "" {
				if err == nil || !strings.Contains(err.Error(), c.shapeBroken) {
					t.Errorf("error %v, want one naming %s", err, c.shapeBroken)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := plan.Tensors[0].Sources; plan.Tensors[0].Name != "token_embd.weight" || len(got) != 1 || got[0] != c.source {
				t.Errorf("first tensor %s from %v, want token_embd.weight from %s", plan.Tensors[0].Name, got, c.source)
			}
			if !reflect.DeepEqual(plan.Skipped, c.skipped) {
				t.Errorf("skipped %v, want %v", plan.Skipped, c.skipped)
			}
		})
	}
}

// TestPermuteRows checks the rotary permutation against numpy's
// reshape(n_head, 2, hd/2).swapaxes(1, 2) worked out by hand.
func TestPermuteRows(t *testing.T) {
	cases := []struct {
		rows, heads int
		want        []float32
	}{
		{8, 2, []float32{0, 2, 1, 3, 4, 6, 5, 7}},
		{6, 1, []float32{0, 3, 1, 4, 2, 5}},
		{4, 2, []float32{0, 1, 2, 3}},
	}
	for _, c := range cases {
		in := make([]float32, c.rows)
		for i := range in {
			in[i] = float32(i)
		}
		if got := permuteRows(in, c.rows, 1, c.heads); !reflect.DeepEqual(got, c.want) {
			t.Errorf("rows %d heads %d: %v, want %v", c.rows, c.heads, got, c.want)
		}
	}
	// Whole rows move together.
	in := []float32{0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5}
	if got := permuteRows(in, 4, 2, 1); !reflect.DeepEqual(got, []float32{0, 0.5, 2, 2.5, 1, 1.5, 3, 3.5}) {
		t.Errorf("2 columns: %v", got)
	}
}

// TestVocabPaddingAndAdded checks the vocabulary beyond the SentencePiece
// pieces: [PAD{id}] up to vocab_size, added_tokens.json (user defined) and
// tokenizer_config.json's added_tokens_decoder (control when special).
func TestVocabPaddingAndAdded(t *testing.T) {
	llamaDir := filepath.Join(golden, "blip2-llama", "hf")
	t5Dir := filepath.Join(golden, "blip2-t5", "hf")
	withFiles := func(src string, files map[string]string) string {
		dir := t.TempDir()
		for _, f := range []string{"tokenizer.model", "spiece.model", "tokenizer_config.json"} {
			if b, err := os.ReadFile(filepath.Join(src, f)); err == nil {
				os.WriteFile(filepath.Join(dir, f), b, 0o644)
			}
		}
		for name, body := range files {
			if body == "" {
				os.Remove(filepath.Join(dir, name))
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	type tok struct {
		id    int
		text  string
		score float32
		typ   int32
	}
	cases := []struct {
		name, arch, dir string
		vocab, keep     int // vocab_size (rows stored) and the vocabulary kept
		want            []tok
		kv              map[string]any
	}{
		// Rows past the tokenizer's tokens are cut.
		{"llama padded", "llama", llamaDir, 2003, 2000, []tok{{1999, "", 0, 0}}, nil},
		{"llama added", "llama", withFiles(llamaDir, map[string]string{
			"added_tokens.json": `{"<img>": 2001}`,
			"tokenizer_config.json": `{"add_bos_token": false, "add_eos_token": true, "bos_token": "<s>", "eos_token": "</s>", "pad_token": "[PAD]",
				"add_prefix_space": false,
				"added_tokens_decoder": {"2000": {"content": "[PAD]", "special": true}, "2002": {"content": "\u2581hi", "special": false}}}`,
		}), 2004, 2003, []tok{
			{2000, "[PAD]", -1000, tokControl}, {2001, "<img>", -1000, tokUserDefined}, {2002, " hi", -1000, tokUserDefined}},
			map[string]any{"tokenizer.ggml.padding_token_id": uint32(2000), "tokenizer.ggml.add_bos_token": false,
				"tokenizer.ggml.add_eos_token": true, "tokenizer.ggml.add_space_prefix": false}},
		{"llama tokenizer.json specials", "llama", withFiles(llamaDir, map[string]string{
			"tokenizer.json":        `{"added_tokens": [{"id": 2000, "content": "<eos2>"}]}`,
			"tokenizer_config.json": `{"eos_token": "<eos2>", "bos_token": {"content": "<s>"}}`,
		}), 2001, 2001, nil, map[string]any{"tokenizer.ggml.eos_token_id": uint32(2000), "tokenizer.ggml.bos_token_id": uint32(1),
			"tokenizer.ggml.unknown_token_id": uint32(0)}},
		{"t5 padded", "t5", t5Dir, 1103, 1100, []tok{
			{1000, "<extra_id_99>", -1000, tokControl}, {1099, "<extra_id_0>", -1000, tokControl}}, nil},
		{"t5 truncated sentinels", "t5", t5Dir, 1050, 1050, []tok{
			{1000, "<extra_id_99>", -1000, tokControl}, {1049, "<extra_id_50>", -1000, tokControl}}, nil},
		{"t5 no tokenizer_config", "t5", withFiles(t5Dir, map[string]string{"tokenizer_config.json": ""}), 1100, 1100, []tok{
			{1099, "<extra_id_0>", -1000, tokControl}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := &builder{src: Source{Dir: c.dir, Text: &hfconfig.TextConfig{VocabSize: c.vocab}}, arch: c.arch}
			if err := b.vocabulary(); err != nil {
				t.Fatal(err)
			}
			if err := b.vocab(); err != nil {
				t.Fatal(err)
			}
			f := b.finish()
			v, _ := f.Value("tokenizer.ggml.tokens")
			toks := v.([]string)
			v, _ = f.Value("tokenizer.ggml.scores")
			scores := v.([]float32)
			v, _ = f.Value("tokenizer.ggml.token_type")
			types := v.([]int32)
			if len(toks) != c.keep || b.keep != c.keep {
				t.Fatalf("%d tokens (keep %d), want %d", len(toks), b.keep, c.keep)
			}
			for _, w := range c.want {
				if w.text == "" { // a real piece: just not padding
					if strings.HasPrefix(toks[w.id], "[PAD") || types[w.id] == tokUnused {
						t.Errorf("token %d = %q type %d, want a piece", w.id, toks[w.id], types[w.id])
					}
					continue
				}
				if toks[w.id] != w.text || scores[w.id] != w.score || types[w.id] != w.typ {
					t.Errorf("token %d = %q %v %d, want %q %v %d", w.id, toks[w.id], scores[w.id], types[w.id], w.text, w.score, w.typ)
				}
			}
			for k, want := range c.kv {
				if got, _ := f.Value(k); got != want {
					t.Errorf("%s = %v (%T), want %v (%T)", k, got, got, want, want)
				}
			}
		})
	}
}

func TestParseType(t *testing.T) {
	cases := []struct {
		in      string
		want    Type
		wantErr bool
	}{
		{"", Type{Name: "q4_k_m", Write: gguf.TypeF16, FType: 15, Quantize: true}, false},
		{"F32", Type{Name: "f32", Write: gguf.TypeF32, FType: 0}, false},
		{"f16", Type{Name: "f16", Write: gguf.TypeF16, FType: 1}, false},
		{"q8_0", Type{Name: "q8_0", Write: gguf.TypeQ8_0, FType: 7}, false},
		{"q4_k_m", Type{Name: "q4_k_m", Write: gguf.TypeF16, FType: 15, Quantize: true}, false},
		{"q4_0", Type{}, true},
		{"bf16", Type{}, true},
	}
	for _, c := range cases {
		got, err := ParseType(c.in)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("ParseType(%q) = %+v, %v; want %+v, error %v", c.in, got, err, c.want, c.wantErr)
		}
	}
}

// TestFinish checks the quantization hand-off: the file is replaced only
// when the quantizer succeeds, and no temporary file is left behind.
func TestFinish(t *testing.T) {
	q4 := mustType(t, "q4_k_m")
	cases := []struct {
		name     string
		typ      Type
		q        Quantizer
		want     string
		wantErr  string
		wantCall bool
	}{
		{"quantized", q4, func(in, out string, ft int32) error {
			b, _ := os.ReadFile(in)
			return os.WriteFile(out, append(b, []byte("-q")...), 0o644)
		}, "f16-q", "", true},
		{"fails", q4, func(in, out string, ft int32) error { return errors.New("boom") }, "f16", "boom", true},
		{"writes nothing", q4, func(in, out string, ft int32) error { return nil }, "f16", "wrote nothing", true},
		{"no library", q4, nil, "f16", "needs the llama.cpp library", false},
		{"f16 needs nothing", mustType(t, "f16"), func(in, out string, ft int32) error { return errors.New("called") }, "f16", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "llm.gguf")
			os.WriteFile(path, []byte("f16"), 0o644)
			called := false
			var q Quantizer
			if c.q != nil {
				q = func(in, out string, ft int32) error {
					called = true
					if in != path || filepath.Dir(out) != dir || ft != c.typ.FType {
						t.Errorf("quantizer(%s, %s, %d)", in, out, ft)
					}
					return c.q(in, out, ft)
				}
			}
			err := Finish(path, c.typ, q)
			if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Errorf("error %v, want %q", err, c.wantErr)
			}
			if called != c.wantCall {
				t.Errorf("quantizer called %v, want %v", called, c.wantCall)
			}
			if b, _ := os.ReadFile(path); string(b) != c.want {
				t.Errorf("file holds %q, want %q", b, c.want)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("%d files left in the folder, want 1", len(ents))
			}
		})
	}
}

func TestSizeLabel(t *testing.T) {
	// Values of gguf-py's size_label(n, 0, 0, 0).
	cases := map[int64]string{
		6738415616: "6.7B", 13015864320: "13B", 3_000_000_000: "3.0B", 230_000: "230K",
		1_500_000: "1.5M", 250_000_000: "250M", 999: "1.0K", 47_000: "47K",
	}
	for n, want := range cases {
		if got := sizeLabel(n); got != want {
			t.Errorf("sizeLabel(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestT5ExactGELU: BLIP-2 FlanT5's dense_act_fn "gelu" (exact, which
// transformers runs) converts with a warning that llama.cpp computes the
// tanh form; gelu_new converts silently.
func TestT5ExactGELU(t *testing.T) {
	for _, c := range []struct {
		act  string
		warn bool
	}{{"gelu", true}, {"gelu_new", false}} {
		src := source(t, "blip2-t5")
		text := *src.Text
		text.DenseActFn = c.act
		src.Text = &text
		f, err := PlanFile(src, mustType(t, "f16"))
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Contains(strings.Join(f.Warnings, "\n"), "exact GELU, llama.cpp's T5 the tanh approximation")
		if got != c.warn {
			t.Errorf("dense_act_fn %q: warnings %q", c.act, f.Warnings)
		}
	}
}
