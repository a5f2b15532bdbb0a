package lmconv

import (
	"fmt"
	"math"

	"github.com/blip2chat/blip2chat/weights/gguf"
)

// t5MaxDistance is the relative_attention_max_distance that llama.cpp's
// llama_relative_position_bucket hard-codes.
const t5MaxDistance = 128

// t5Dims are the sizes of a T5 model, from text_config.
type t5Dims struct {
	dModel, dKV, dFF, nHead, nEnc, nDec, nVocab, nBuckets int
}

// t5Config checks text_config for what llama.cpp's T5 computes as
// transformers does, and returns the sizes.
func (b *builder) t5Config() (t5Dims, error) {
	tc := b.src.Text
	d := t5Dims{dModel: tc.DModel, dKV: tc.DKV, dFF: tc.DFF, nHead: tc.NumHeads,
		nEnc: tc.NumLayers, nDec: tc.NumDecoderLayers, nVocab: tc.VocabSize, nBuckets: tc.RelativeAttentionNumBuckets}
	if d.nDec == 0 {
		d.nDec = d.nEnc
	}
	if d.dModel <= 0 || d.dKV <= 0 || d.dFF <= 0 || d.nHead <= 0 || d.nEnc <= 0 || d.nVocab <= 0 || d.nBuckets <= 0 {
		return d, b.errorf("text_config: d_model %d, d_kv %d, d_ff %d, num_heads %d, num_layers %d, vocab_size %d, relative_attention_num_buckets %d: all must be positive",
			d.dModel, d.dKV, d.dFF, d.nHead, d.nEnc, d.nVocab, d.nBuckets)
	}
	if tc.RelativeAttentionMaxDistance != t5MaxDistance {
		return d, b.errorf("text_config: relative_attention_max_distance is %d, but llama.cpp's T5 hard-codes %d; the converted model would answer differently",
			tc.RelativeAttentionMaxDistance, t5MaxDistance)
	}
	// llama.cpp runs gated-GELU (tanh approximation) when a layer has
	// ffn_gate, ReLU otherwise; no GGUF key selects its exact (erf) GELU
	// for T5. BLIP-2 FlanT5 stores dense_act_fn "gelu", which transformers
	// 4 runs exactly (hfconfig); the tanh form differs by at most 4.7e-4
	// per activation, less than the 1e-3 ggml's f16 GELU table already
	// costs, so the model is converted, with a warning, not refused.
	if tc.IsGatedAct {
		switch tc.DenseActFn {
		case "gelu_new", "gelu_pytorch_tanh", "gelu_fast":
		case "gelu":
			b.warn = append(b.warn, `text_config.dense_act_fn "gelu": the checkpoint runs exact GELU, llama.cpp's T5 the tanh approximation (at most 4.7e-4 apart per activation)`)
		default:
			return d, b.errorf("text_config: feed_forward_proj %q: llama.cpp's T5 runs gated-GELU or ReLU only", tc.FeedForwardProj)
		}
	} else if tc.DenseActFn != "relu" {
		return d, b.errorf("text_config: feed_forward_proj %q: llama.cpp's T5 runs gated-GELU or ReLU only", tc.FeedForwardProj)
	}
	if tc.DecoderStartTokenID < 0 || tc.DecoderStartTokenID >= d.nVocab {
		return d, b.errorf("text_config: decoder_start_token_id %d is not a token id (vocab_size %d)", tc.DecoderStartTokenID, d.nVocab)
	}
	return d, nil
}

// t5 plans a T5ForConditionalGeneration (FlanT5) language model as
// llama.cpp's arch "t5".
func (b *builder) t5() error {
	b.arch = "t5"
	tc := b.src.Text
	d, err := b.t5Config()
	if err != nil {
		return err
	}
	dModel, dKV, dFF, nHead := d.dModel, d.dKV, d.dFF, d.nHead
	nEnc, nDec, nVocab, nBuckets := d.nEnc, d.nDec, d.nVocab, d.nBuckets

	if err := b.vocabulary(); err != nil {
		return err
	}
	b.general()
	inner := nHead * dKV

	// The shared embeddings are saved under any of three names, often
	// more than once; the first one found is used (as the script does) and
	// the other copies are only checked.
	var embd string
	for _, n := range []string{"shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight"} {
		if !b.has(n) {
			continue
		}
		if embd == "" {
			embd = n
			if err := b.copyRows("token_embd.weight", n, []int{nVocab, dModel}, b.keep, nil); err != nil {
				return err
			}
			continue
		}
		if _, err := b.expect(n, nVocab, dModel); err != nil {
			return err
		}
		b.skipped = append(b.skipped, Prefix+n)
	}
	if embd == "" {
		_, err := b.expect("shared.weight", nVocab, dModel)
		return err
	}

	ffn := func(block, layer int) []step {
		p := fmt.Sprintf("block.%d.layer.%d.", block, layer)
		s := []step{{"ffn_norm.weight", p + "layer_norm.weight", []int{dModel}, nil}}
		if tc.IsGatedAct {
			s = append(s,
				step{"ffn_gate.weight", p + "DenseReluDense.wi_0.weight", []int{dFF, dModel}, nil},
				step{"ffn_up.weight", p + "DenseReluDense.wi_1.weight", []int{dFF, dModel}, nil})
		} else {
			s = append(s, step{"ffn_up.weight", p + "DenseReluDense.wi.weight", []int{dFF, dModel}, nil})
		}
		return append(s, step{"ffn_down.weight", p + "DenseReluDense.wo.weight", []int{dModel, dFF}, nil})
	}
	attn := func(prefix, out, module string, relBias bool) []step {
		s := []step{
			{out + "_q.weight", prefix + module + ".q.weight", []int{inner, dModel}, nil},
			{out + "_k.weight", prefix + module + ".k.weight", []int{inner, dModel}, nil},
			{out + "_v.weight", prefix + module + ".v.weight", []int{inner, dModel}, nil},
			{out + "_o.weight", prefix + module + ".o.weight", []int{dModel, inner}, nil},
		}
		if relBias {
			s = append(s, step{out + "_rel_b.weight", prefix + module + ".relative_attention_bias.weight", []int{nBuckets, nHead}, nil})
		}
		return s
	}
	// Only block 0 holds the relative position bias in transformers; the
	// other blocks (and llama.cpp) reuse it. A checkpoint that has one in
	// a later block gets it converted too.
	for i := 0; i < nEnc; i++ {
		p := fmt.Sprintf("block.%d.layer.0.", i)
		rel := i == 0 || b.has(fmt.Sprintf("encoder.%sSelfAttention.relative_attention_bias.weight", p))
		steps := append([]step{{"attn_norm.weight", p + "layer_norm.weight", []int{dModel}, nil}}, attn(p, "attn", "SelfAttention", rel)...)
		steps = append(steps, ffn(i, 1)...)
		if err := b.steps(fmt.Sprintf("enc.blk.%d.", i), "encoder.", steps); err != nil {
			return err
		}
	}
	if err := b.copyTensor("enc.output_norm.weight", "encoder.final_layer_norm.weight", []int{dModel}, nil); err != nil {
		return err
	}
	for i := 0; i < nDec; i++ {
		p0 := fmt.Sprintf("block.%d.layer.0.", i)
		p1 := fmt.Sprintf("block.%d.layer.1.", i)
		rel := i == 0 || b.has(fmt.Sprintf("decoder.%sSelfAttention.relative_attention_bias.weight", p0))
		steps := append([]step{{"attn_norm.weight", p0 + "layer_norm.weight", []int{dModel}, nil}}, attn(p0, "attn", "SelfAttention", rel)...)
		steps = append(steps, step{"cross_attn_norm.weight", p1 + "layer_norm.weight", []int{dModel}, nil})
		steps = append(steps, attn(p1, "cross_attn", "EncDecAttention", false)...)
		steps = append(steps, ffn(i, 2)...)
		if err := b.steps(fmt.Sprintf("dec.blk.%d.", i), "decoder.", steps); err != nil {
			return err
		}
	}
	if err := b.copyTensor("dec.output_norm.weight", "decoder.final_layer_norm.weight", []int{dModel}, nil); err != nil {
		return err
	}

	// llama.cpp never scales the decoder output; transformers does by
	// d_model^-0.5 for original (tied) T5, so fold that into the head.
	var scale func([]float32) []float32
	if tc.ScaleDecoderOutputs {
		s := float32(1 / math.Sqrt(float64(dModel)))
		scale = func(v []float32) []float32 {
			for i := range v {
				v[i] *= s
			}
			return v
		}
	}
	switch {
	case b.has("lm_head.weight"):
		if err := b.copyRows("output.weight", "lm_head.weight", []int{nVocab, dModel}, b.keep, scale); err != nil {
			return err
		}
	case !tc.TieWordEmbeddings:
		_, err := b.expect("lm_head.weight", nVocab, dModel)
		return err
	case scale != nil:
		if err := b.copyRows("output.weight", embd, []int{nVocab, dModel}, b.keep, scale); err != nil {
			return err
		}
	default:
		// Tied and unscaled: llama.cpp uses token_embd as the head.
	}

	b.t5Metadata(d)
	return b.vocab()
}

// t5Metadata adds the t5.* keys, in the order convert_hf_to_gguf.py
// writes them.
func (b *builder) t5Metadata(d t5Dims) {
	tc := b.src.Text
	nCtx := 512 // the script's default when config.json has no n_positions
	if n, ok := rawInt(tc.Raw, "n_positions"); ok && n > 0 {
		nCtx = n
	}
	b.sizeLabel()
	b.add(b.archKey("context_length"), uint32(nCtx))
	b.add(b.archKey("embedding_length"), uint32(d.dModel))
	b.add(b.archKey("feed_forward_length"), uint32(d.dFF))
	b.add(b.archKey("block_count"), uint32(d.nEnc))
	b.add(b.archKey("decoder_block_count"), uint32(d.nDec))
	b.add(b.archKey("attention.head_count"), uint32(d.nHead))
	b.add(b.archKey("attention.key_length"), uint32(d.dKV))
	b.add(b.archKey("attention.value_length"), uint32(d.dKV))
	b.add(b.archKey("attention.layer_norm_epsilon"), float32(tc.LayerNormEpsilon))
	b.add(b.archKey("attention.relative_buckets_count"), uint32(d.nBuckets))
	b.add(b.archKey("attention.layer_norm_rms_epsilon"), float32(tc.LayerNormEpsilon))
	b.add(b.archKey("decoder_start_token_id"), uint32(tc.DecoderStartTokenID))
	b.fileType()
	b.add(gguf.KeyQuantizationVersion, uint32(2))
}
