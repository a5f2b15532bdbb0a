package modeltest

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"

	"github.com/blip2chat/blip2chat/weights/gguf"
)

// TinyLlama describes a small LLaMA with random F32 weights and a
// SentencePiece-style vocabulary: <unk> <s> </s>, the 256 byte tokens, then
// "▁w0", "▁w1", ... up to NVocab tokens.
type TinyLlama struct {
	NEmbd, NHead, NHeadKV, NFF, NLayer, NVocab, NCtxTrain int
	Seed                                                  uint64
}

// Token ids of the tiny vocabulary.
const (
	TinyUnk, TinyBOS, TinyEOS = 0, 1, 2
	TinyFirstByte             = 3   // <0x00>
	TinyFirstWord             = 259 // ▁w0
)

// DefaultTinyLlama is 2 layers of width 256 (a multiple of the k-quants'
// 256-value blocks) with grouped-query attention.
func DefaultTinyLlama() TinyLlama {
	return TinyLlama{NEmbd: 256, NHead: 4, NHeadKV: 2, NFF: 512, NLayer: 2, NVocab: 400, NCtxTrain: 512, Seed: 1}
}

// Vocab returns the token texts.
func (t TinyLlama) Vocab() (pieces []string, types []int32) {
	pieces = []string{"<unk>", "<s>", "</s>"}
	types = []int32{2, 3, 3}
	for b := range 256 {
		pieces = append(pieces, fmt.Sprintf("<0x%02X>", b))
		types = append(types, 6)
	}
	for i := 0; len(pieces) < t.NVocab; i++ {
		pieces = append(pieces, fmt.Sprintf("▁w%d", i))
		types = append(types, 1)
	}
	return pieces, types
}

// Write stores the model at path and returns its token embedding table
// (NVocab x NEmbd).
func (t TinyLlama) Write(path string) ([]float32, error) {
	if t.NVocab < TinyFirstWord+1 {
		return nil, fmt.Errorf("tiny llama: vocabulary of %d is too small", t.NVocab)
	}
	rng := rand.New(rand.NewPCG(t.Seed, 1))
	pieces, types := t.Vocab()
	w := gguf.NewWriter()
	w.Add("general.architecture", "llama")
	w.Add("general.name", "tiny-random-llama")
	w.Add("llama.context_length", uint32(t.NCtxTrain))
	w.Add("llama.embedding_length", uint32(t.NEmbd))
	w.Add("llama.feed_forward_length", uint32(t.NFF))
	w.Add("llama.block_count", uint32(t.NLayer))
	w.Add("llama.attention.head_count", uint32(t.NHead))
	w.Add("llama.attention.head_count_kv", uint32(t.NHeadKV))
	w.Add("llama.attention.layer_norm_rms_epsilon", float32(1e-5))
	w.Add("llama.rope.dimension_count", uint32(t.NEmbd/t.NHead))
	w.Add("tokenizer.ggml.model", "llama")
	w.Add("tokenizer.ggml.tokens", pieces)
	scores := make([]float32, len(pieces))
	for i := range scores {
		scores[i] = -float32(i)
	}
	w.Add("tokenizer.ggml.scores", scores)
	w.Add("tokenizer.ggml.token_type", types)
	w.Add("tokenizer.ggml.bos_token_id", uint32(TinyBOS))
	w.Add("tokenizer.ggml.eos_token_id", uint32(TinyEOS))
	w.Add("tokenizer.ggml.unknown_token_id", uint32(TinyUnk))
	w.Add("tokenizer.ggml.add_bos_token", true)
	w.Add("tokenizer.ggml.add_eos_token", false)

	e, ff, nv := uint64(t.NEmbd), uint64(t.NFF), uint64(t.NVocab)
	kv := uint64(t.NEmbd / t.NHead * t.NHeadKV)
	type tensor struct {
		name string
		dims []uint64
		norm bool
	}
	ts := []tensor{{"token_embd.weight", []uint64{e, nv}, false}, {"output_norm.weight", []uint64{e}, true},
		{"output.weight", []uint64{e, nv}, false}}
	for l := range t.NLayer {
		p := fmt.Sprintf("blk.%d.", l)
		ts = append(ts,
			tensor{p + "attn_norm.weight", []uint64{e}, true},
			tensor{p + "attn_q.weight", []uint64{e, e}, false},
			tensor{p + "attn_k.weight", []uint64{e, kv}, false},
			tensor{p + "attn_v.weight", []uint64{e, kv}, false},
			tensor{p + "attn_output.weight", []uint64{e, e}, false},
			tensor{p + "ffn_norm.weight", []uint64{e}, true},
			tensor{p + "ffn_gate.weight", []uint64{e, ff}, false},
			tensor{p + "ffn_down.weight", []uint64{ff, e}, false},
			tensor{p + "ffn_up.weight", []uint64{e, ff}, false})
	}
	values := make([][]float32, len(ts))
	for i, tn := range ts {
		n := uint64(1)
		for _, d := range tn.dims {
			n *= d
		}
		v := make([]float32, n)
		scale := 1 / math.Sqrt(float64(tn.dims[0]))
		if i == 0 {
			scale = 1 // embeddings O(1)
		}
		for j := range v {
			if tn.norm {
				v[j] = 1 + float32(rng.NormFloat64()*0.1)
			} else {
				v[j] = float32(rng.NormFloat64() * scale)
			}
		}
		values[i] = v
		if err := w.AddTensor(tn.name, gguf.TypeF32, tn.dims); err != nil {
			return nil, err
		}
	}
	err := gguf.WriteFile(path, w, func(i int, _ gguf.TensorInfo, out io.Writer) error {
		b := make([]byte, 4*len(values[i]))
		for j, f := range values[i] {
			binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(f))
		}
		_, err := out.Write(b)
		return err
	})
	return values[0], err
}
