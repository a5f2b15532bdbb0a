package llamatest

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"

	"github.com/blip2chat/blip2chat/weights/gguf"
)

// Llama describes a small LLaMA with random F32 weights and a
// SentencePiece-style vocabulary: <unk> <s> </s>, the 256 byte tokens,
// Pieces, then "▁w0", "▁w1", ... up to NVocab tokens.
type Llama struct {
	NEmbd, NHead, NHeadKV, NFF, NLayer, NVocab, NCtxTrain int
	Seed                                                  uint64
	// Pieces are normal tokens placed right after the byte tokens; their
	// scores fall with the id, so earlier pieces merge first.
	Pieces []string
	// Name is general.name; "" is "tiny-random-llama".
	Name string
	// Std, when positive, draws every weight matrix and the embeddings from
	// N(0, Std²), with norm weights exactly 1. Zero scales matrices by
	// 1/sqrt(input size) (embeddings 1), with norm weights near 1.
	Std float64
}

// Token ids of the tiny vocabulary.
const (
	Unk, BOS, EOS = 0, 1, 2
	FirstByte     = 3   // <0x00>
	FirstWord     = 259 // the first of Pieces, or ▁w0
)

// DefaultLlama is 2 layers of width 256 (a multiple of the k-quants'
// 256-value blocks) with grouped-query attention.
func DefaultLlama() Llama {
	return Llama{NEmbd: 256, NHead: 4, NHeadKV: 2, NFF: 512, NLayer: 2, NVocab: 400, NCtxTrain: 512, Seed: 1}
}

// Vocab returns the token texts and types.
func (t Llama) Vocab() (pieces []string, types []int32) {
	pieces = []string{"<unk>", "<s>", "</s>"}
	types = []int32{2, 3, 3} // unknown, control, control
	for b := range 256 {
		pieces = append(pieces, fmt.Sprintf("<0x%02X>", b))
		types = append(types, 6)
	}
	for _, p := range t.Pieces {
		pieces = append(pieces, p)
		types = append(types, 1)
	}
	for i := 0; len(pieces) < t.NVocab; i++ {
		pieces = append(pieces, fmt.Sprintf("▁w%d", i))
		types = append(types, 1)
	}
	return pieces, types
}

// Write stores the model at path and returns its token embedding table
// (vocabulary size x NEmbd).
func (t Llama) Write(path string) ([]float32, error) {
	pieces, types := t.Vocab()
	if len(pieces) <= FirstWord {
		return nil, fmt.Errorf("tiny llama: vocabulary of %d is too small", t.NVocab)
	}
	name := t.Name
	if name == "" {
		name = "tiny-random-llama"
	}
	w := gguf.NewWriter()
	w.Add("general.architecture", "llama")
	w.Add("general.name", name)
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
	w.Add("tokenizer.ggml.bos_token_id", uint32(BOS))
	w.Add("tokenizer.ggml.eos_token_id", uint32(EOS))
	w.Add("tokenizer.ggml.unknown_token_id", uint32(Unk))
	w.Add("tokenizer.ggml.add_bos_token", true)
	w.Add("tokenizer.ggml.add_eos_token", false)

	e, ff, nv := uint64(t.NEmbd), uint64(t.NFF), uint64(len(pieces))
	kv := uint64(t.NEmbd / t.NHead * t.NHeadKV)
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
	rng := rand.New(rand.NewPCG(t.Seed, 1))
	fill := func(i int, tn tensor, v []float32) {
		switch {
		case t.Std > 0:
			normal(rng, v, tn.norm, t.Std)
		case tn.norm:
			for j := range v {
				v[j] = 1 + float32(rng.NormFloat64()*0.1)
			}
		default:
			scale := 1 / math.Sqrt(float64(tn.dims[0]))
			if i == 0 {
				scale = 1 // embeddings O(1)
			}
			normal(rng, v, false, scale)
		}
	}
	values, err := writeF32(path, w, ts, fill)
	if err != nil {
		return nil, err
	}
	return values[0], nil
}

// WriteT5 writes a 2-layer encoder-decoder T5 (the FlanT5 side of BLIP-2)
// with random F32 weights from seed and a 40-token vocabulary (<pad> </s>
// <unk> ▁w0 ...; <pad> starts the decoder), and returns its token
// embeddings, nEmbd wide.
func WriteT5(path string, seed uint64) (tokEmbd []float32, nEmbd int, err error) {
	const (
		e, heads, ff, layers, buckets = 32, 4, 64, 2, 8
		startTok                      = 0 // <pad>, as in T5
	)
	vocab := []string{"<pad>", "</s>", "<unk>"}
	types := []int32{3, 3, 2}
	for i := range 37 {
		vocab = append(vocab, fmt.Sprintf("▁w%d", i))
		types = append(types, 1)
	}
	w := gguf.NewWriter()
	w.Add("general.architecture", "t5")
	w.Add("t5.context_length", uint32(512))
	w.Add("t5.embedding_length", uint32(e))
	w.Add("t5.feed_forward_length", uint32(ff))
	w.Add("t5.block_count", uint32(layers))
	w.Add("t5.attention.head_count", uint32(heads))
	w.Add("t5.attention.layer_norm_rms_epsilon", float32(1e-6))
	w.Add("t5.attention.relative_buckets_count", uint32(buckets))
	w.Add("t5.decoder_start_token_id", uint32(startTok))
	w.Add("tokenizer.ggml.model", "t5")
	w.Add("tokenizer.ggml.tokens", vocab)
	w.Add("tokenizer.ggml.scores", make([]float32, len(vocab)))
	w.Add("tokenizer.ggml.token_type", types)

	nv := uint64(len(vocab))
	ts := []tensor{{"token_embd.weight", []uint64{e, nv}, false}, {"enc.output_norm.weight", []uint64{e}, true},
		{"dec.output_norm.weight", []uint64{e}, true}, {"output.weight", []uint64{e, nv}, false}}
	for l := range layers {
		for _, side := range []string{"enc", "dec"} {
			p := fmt.Sprintf("%s.blk.%d.", side, l)
			ts = append(ts, tensor{p + "attn_norm.weight", []uint64{e}, true})
			if l == 0 {
				ts = append(ts, tensor{p + "attn_rel_b.weight", []uint64{heads, buckets}, false})
			}
			for _, n := range []string{"attn_q", "attn_k", "attn_v", "attn_o"} {
				ts = append(ts, tensor{p + n + ".weight", []uint64{e, e}, false})
			}
			if side == "dec" {
				ts = append(ts, tensor{p + "cross_attn_norm.weight", []uint64{e}, true})
				for _, n := range []string{"cross_attn_q", "cross_attn_k", "cross_attn_v", "cross_attn_o"} {
					ts = append(ts, tensor{p + n + ".weight", []uint64{e, e}, false})
				}
			}
			ts = append(ts, tensor{p + "ffn_norm.weight", []uint64{e}, true},
				tensor{p + "ffn_gate.weight", []uint64{e, ff}, false},
				tensor{p + "ffn_up.weight", []uint64{e, ff}, false},
				tensor{p + "ffn_down.weight", []uint64{ff, e}, false})
		}
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	values, err := writeF32(path, w, ts, func(_ int, tn tensor, v []float32) { normal(rng, v, tn.norm, 0.5) })
	if err != nil {
		return nil, 0, err
	}
	return values[0], e, nil
}

// tensor is one F32 tensor of a tiny model: GGUF dims (fastest first), and
// whether it is a norm's weight.
type tensor struct {
	name string
	dims []uint64
	norm bool
}

// normal fills v with N(0, std²) draws, or with ones for a norm.
func normal(rng *rand.Rand, v []float32, norm bool, std float64) {
	for j := range v {
		if norm {
			v[j] = 1
		} else {
			v[j] = float32(rng.NormFloat64() * std)
		}
	}
}

// writeF32 writes the metadata in w and the tensors ts, in order, to path
// as F32; fill sets each tensor's values (called in order, so a seeded
// generator gives the same file every time). It returns the values.
func writeF32(path string, w *gguf.Writer, ts []tensor, fill func(i int, tn tensor, v []float32)) ([][]float32, error) {
	values := make([][]float32, len(ts))
	for i, tn := range ts {
		n := uint64(1)
		for _, d := range tn.dims {
			n *= d
		}
		values[i] = make([]float32, n)
		fill(i, tn, values[i])
		if err := w.AddTensor(tn.name, gguf.TypeF32, tn.dims); err != nil {
			return nil, err
		}
	}
	err := gguf.WriteFile(path, w, func(i int, _ gguf.TensorInfo, out io.Writer) error {
		b, err := gguf.Encode(gguf.TypeF32, values[i])
		if err != nil {
			return err
		}
		_, err = out.Write(b)
		return err
	})
	return values, err
}
