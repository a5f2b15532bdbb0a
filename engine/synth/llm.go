package synth

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/blip2chat/blip2chat/engine/llamacpp/capi"
	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
	"github.com/blip2chat/blip2chat/weights/lmconv"
	"github.com/blip2chat/blip2chat/weights/safetensors"
)

// Synthetic LLaMA and T5 language models are planned by weights/lmconv, the
// converter of real checkpoints, over a stand-in: the tensor names and
// shapes a Hugging Face checkpoint of the config would have (no data) and a
// generated SentencePiece model (control tokens, the 256 byte tokens for
// LLaMA, then placeholder words). The tensors' values come from
// convert.RandomValues instead of the checkpoint, so the file is what
// `convert` writes for such a checkpoint, tensor names, metadata and types
// included; q4_k_m is then made by llama.cpp's quantizer as `convert` does.

// headerTensors is a checkpoint of tensor names and shapes only: what
// lmconv.Plan reads. Its Data is nil; nothing reads it, since every Values
// is replaced.
type headerTensors struct {
	names  []string
	shapes map[string][]int
}

func (h *headerTensors) add(name string, shape ...int) {
	if h.shapes == nil {
		h.shapes = map[string][]int{}
	}
	h.names = append(h.names, name)
	h.shapes[name] = shape
}

// Tensor implements lmconv.Tensors.
func (h *headerTensors) Tensor(name string) (safetensors.Tensor, bool) {
	s, ok := h.shapes[name]
	if !ok {
		return safetensors.Tensor{}, false
	}
	return safetensors.Tensor{Name: name, DType: safetensors.F16, Shape: s}, true
}

// Names implements lmconv.Tensors.
func (h *headerTensors) Names() []string { return h.names }

// lmCheckpointTensors lists the language-model tensors of a Hugging Face
// BLIP-2 / InstructBLIP checkpoint with text config tc (LLaMA or T5), as
// transformers saves them.
func lmCheckpointTensors(tc *hfconfig.TextConfig) (*headerTensors, error) {
	h := &headerTensors{}
	p := lmconv.Prefix
	switch tc.ModelType {
	case "llama":
		E, F, V := tc.HiddenSize, tc.IntermediateSize, tc.VocabSize
		kvHeads := tc.NumKeyValueHeads
		if kvHeads == 0 {
			kvHeads = tc.NumAttentionHeads
		}
		hd := E / tc.NumAttentionHeads
		h.add(p+"model.embed_tokens.weight", V, E)
		for i := 0; i < tc.NumHiddenLayers; i++ {
			l := fmt.Sprintf("%smodel.layers.%d.", p, i)
			h.add(l+"input_layernorm.weight", E)
			h.add(l+"self_attn.q_proj.weight", tc.NumAttentionHeads*hd, E)
			h.add(l+"self_attn.k_proj.weight", kvHeads*hd, E)
			h.add(l+"self_attn.v_proj.weight", kvHeads*hd, E)
			h.add(l+"self_attn.o_proj.weight", E, tc.NumAttentionHeads*hd)
			h.add(l+"post_attention_layernorm.weight", E)
			h.add(l+"mlp.gate_proj.weight", F, E)
			h.add(l+"mlp.up_proj.weight", F, E)
			h.add(l+"mlp.down_proj.weight", E, F)
		}
		h.add(p+"model.norm.weight", E)
		if !tc.TieWordEmbeddings {
			h.add(p+"lm_head.weight", V, E)
		}
	case "t5":
		d, inner, F, V := tc.DModel, tc.NumHeads*tc.DKV, tc.DFF, tc.VocabSize
		nDec := tc.NumDecoderLayers
		if nDec == 0 {
			nDec = tc.NumLayers
		}
		h.add(p+"shared.weight", V, d)
		ffn := func(l string) {
			h.add(l+"layer_norm.weight", d)
			if tc.IsGatedAct {
				h.add(l+"DenseReluDense.wi_0.weight", F, d)
				h.add(l+"DenseReluDense.wi_1.weight", F, d)
			} else {
				h.add(l+"DenseReluDense.wi.weight", F, d)
			}
			h.add(l+"DenseReluDense.wo.weight", d, F)
		}
		attn := func(l, module string, rel bool) {
			h.add(l+"layer_norm.weight", d)
			for _, m := range []string{"q", "k", "v"} {
				h.add(l+module+"."+m+".weight", inner, d)
			}
			h.add(l+module+".o.weight", d, inner)
			if rel {
				h.add(l+module+".relative_attention_bias.weight", tc.RelativeAttentionNumBuckets, tc.NumHeads)
			}
		}
		for i := 0; i < tc.NumLayers; i++ {
			l := fmt.Sprintf("%sencoder.block.%d.layer.", p, i)
			attn(l+"0.", "SelfAttention", i == 0)
			ffn(l + "1.")
		}
		h.add(p+"encoder.final_layer_norm.weight", d)
		for i := 0; i < nDec; i++ {
			l := fmt.Sprintf("%sdecoder.block.%d.layer.", p, i)
			attn(l+"0.", "SelfAttention", i == 0)
			attn(l+"1.", "EncDecAttention", false)
			ffn(l + "2.")
		}
		h.add(p+"decoder.final_layer_norm.weight", d)
		if !tc.TieWordEmbeddings {
			h.add(p+"lm_head.weight", V, d)
		}
	default:
		return nil, fmt.Errorf("synthetic models: no %s language model (want llama or t5)", tc.ModelType)
	}
	return h, nil
}

// planLlamaCppLLM plans a synthetic llm.gguf for text config tc, of type t
// (as written: f16 when t is made by quantizing), in convert's Plan form.
func planLlamaCppLLM(tc *hfconfig.TextConfig, t lmconv.Type, seed uint64) (*convert.Plan, error) {
	tensors, err := lmCheckpointTensors(tc)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "blip2chat-synthetic-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.model"), sentencePieceModel(tc), 0o644); err != nil {
		return nil, err
	}
	f, err := lmconv.Plan(lmconv.Source{Dir: dir, Text: tc, Tensors: tensors, Name: "synthetic (random weights)"}, t)
	if err != nil {
		return nil, err
	}
	p := &convert.Plan{File: "llm.gguf", KV: f.KV}
	for _, x := range f.Tensors {
		p.Tensors = append(p.Tensors, convert.Tensor{Name: x.Name, Type: x.Type, Shape: x.Shape,
			Values: convert.RandomValues(x.Name, x.Shape, seed)})
	}
	return p, nil
}

// quantize finishes a q4_k_m (or other llama.cpp-made) file with llama.cpp's
// quantizer, as `convert` does.
func quantize(path string, t lmconv.Type, llamaLib string) error {
	if !t.Quantize {
		return nil
	}
	lib, err := capi.Load(capi.Options{Dir: llamaLib})
	if err != nil {
		return fmt.Errorf("quantizing the synthetic language model to %s: %v", t.Name, err)
	}
	return lmconv.Finish(path, t, func(in, out string, ftype int32) error {
		p := lib.DefaultQuantizeParams()
		p.FType = ftype
		return lib.Quantize(in, out, p)
	})
}

// sentencePieceModel is a SentencePiece ModelProto for a synthetic
// tokenizer of tc's vocabulary size: LLaMA's BPE with byte fallback (<unk>
// <s> </s>, <0x00>..<0xFF>, words) or T5's unigram (<pad> </s> <unk>,
// words; the 100 sentinels come after the pieces, as in T5's tokenizer).
func sentencePieceModel(tc *hfconfig.TextConfig) []byte {
	type piece struct {
		text  string
		score float32
		typ   int // 1 normal, 2 unknown, 3 control, 6 byte
	}
	var pieces []piece
	n := tc.VocabSize
	t5 := tc.ModelType == "t5"
	if t5 {
		pieces = []piece{{"<pad>", 0, 3}, {"</s>", 0, 3}, {"<unk>", 0, 2}}
		n -= 100 + (n-100)%128 // 32128 = 32000 pieces + 100 sentinels + 28 padding
		if n <= len(pieces) {
			n = tc.VocabSize
		}
	} else {
		pieces = []piece{{"<unk>", 0, 2}, {"<s>", 0, 3}, {"</s>", 0, 3}}
		for b := 0; b < 256; b++ {
			pieces = append(pieces, piece{fmt.Sprintf("<0x%02X>", b), 0, 6})
		}
		n = min(n, 32000) // Vicuna's 32001st token is an added pad token
	}
	// The letters as words, so that text tokenizes into words, then
	// placeholders.
	for c := 'a'; c <= 'z' && len(pieces) < n; c++ {
		pieces = append(pieces, piece{"\u2581" + string(c), -float32(len(pieces)), 1})
	}
	for i := 0; len(pieces) < n; i++ {
		pieces = append(pieces, piece{fmt.Sprintf("\u2581w%d", i), -float32(len(pieces)), 1})
	}

	var out []byte
	for _, p := range pieces {
		var m []byte
		m = pbBytes(m, 1, []byte(p.text))
		m = pbKey(m, 2, 5)
		m = binary.LittleEndian.AppendUint32(m, math.Float32bits(p.score))
		m = pbVarint(m, 3, uint64(p.typ))
		out = pbBytes(out, 1, m)
	}
	var tr []byte
	if t5 {
		tr = pbVarint(tr, 3, 1) // unigram
	} else {
		tr = pbVarint(tr, 3, 2) // BPE
	}
	tr = pbVarint(tr, 4, uint64(len(pieces)))
	if t5 {
		tr = pbVarint(tr, 40, 2)
		tr = pbVarint(tr, 41, uint64(math.MaxUint64)) // bos_id -1
		tr = pbVarint(tr, 42, 1)
		tr = pbVarint(tr, 43, 0)
	} else {
		tr = pbVarint(tr, 35, 1) // byte_fallback
		tr = pbVarint(tr, 40, 0)
		tr = pbVarint(tr, 41, 1)
		tr = pbVarint(tr, 42, 2)
		tr = pbVarint(tr, 43, uint64(math.MaxUint64)) // pad_id -1
	}
	out = pbBytes(out, 2, tr)
	var norm []byte
	norm = pbBytes(norm, 1, []byte("identity"))
	norm = pbVarint(norm, 3, 1) // add_dummy_prefix
	norm = pbVarint(norm, 4, 1) // remove_extra_whitespaces
	norm = pbVarint(norm, 5, 1) // escape_whitespaces
	return pbBytes(out, 3, norm)
}

// Protocol buffer encoding, just what sentencePieceModel needs.
func pbKey(b []byte, field, wire int) []byte { return binary.AppendUvarint(b, uint64(field<<3|wire)) }

func pbVarint(b []byte, field int, v uint64) []byte {
	return binary.AppendUvarint(pbKey(b, field, 0), v)
}

func pbBytes(b []byte, field int, v []byte) []byte {
	b = binary.AppendUvarint(pbKey(b, field, 2), uint64(len(v)))
	return append(b, v...)
}

// ensureLlamaCppLLM returns the cached synthetic LLaMA or T5 llm.gguf,
// writing it first.
func ensureLlamaCppLLM(ctx context.Context, dir, name string, cfg *hfconfig.Config, o Options) (string, error) {
	t, err := lmconv.ParseType(o.LLMType)
	if err != nil {
		return "", err
	}
	modelDir := filepath.Join(dir, fmt.Sprintf("%s-llm-%s-seed%d-v%d", name, t.Name, o.Seed, Version))
	path := filepath.Join(modelDir, "llm.gguf")
	if ok, err := exists(path); ok || err != nil {
		return path, err
	}
	p, err := planLlamaCppLLM(&cfg.Text, t, o.Seed)
	if err != nil {
		return "", err
	}
	need, err := p.Bytes()
	if err != nil {
		return "", err
	}
	// Quantizing writes the smaller file beside the f16 one.
	if err := checkSpace(dir, need+need/3*int64(boolInt(t.Quantize))); err != nil {
		return "", err
	}
	if t.Quantize {
		// Fail now rather than after writing the f16 file.
		if _, err := capi.Load(capi.Options{Dir: o.LlamaLib}); err != nil {
			return "", fmt.Errorf("a synthetic %s language model is made with llama.cpp's quantizer: %v (or choose --llm-type f16 or q8_0)", t.Name, err)
		}
	}
	if o.Progress != nil {
		how := t.Name
		if t.Quantize {
			how = "f16, then quantized to " + t.Name
		}
		fmt.Fprintf(o.Progress, "writing synthetic %s language model (%s, %d tensors, %s) to %s\n",
			name, how, len(p.Tensors), convert.FormatBytes(need), modelDir)
	}
	// A quantized type is made in place: write under a temporary folder
	// name so that an interrupted quantization leaves no f16 file under
	// the q4_k_m name.
	work := modelDir
	if t.Quantize {
		work = modelDir + ".partial"
		os.RemoveAll(work)
	}
	if err := p.Write(ctx, work, convert.Options{Progress: o.Progress, Terminal: o.Terminal}); err != nil {
		return "", err
	}
	if t.Quantize {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "quantizing it to %s with llama.cpp (a few minutes for 7B)...\n", t.Name)
		}
		if err := quantize(filepath.Join(work, "llm.gguf"), t, o.LlamaLib); err != nil {
			os.RemoveAll(work)
			return "", err
		}
		if err := os.Rename(work, modelDir); err != nil {
			os.RemoveAll(work)
			return "", err
		}
	}
	return path, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
