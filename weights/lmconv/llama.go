package lmconv

import (
	"fmt"
	"strings"

	"github.com/blip2chat/blip2chat/weights/gguf"
)

// llama plans a LlamaForCausalLM (Vicuna) language model as llama.cpp's
// arch "llama".
func (b *builder) llama() error {
	b.arch = "llama"
	tc := b.src.Text
	nEmbd, nFF, nLayer := tc.HiddenSize, tc.IntermediateSize, tc.NumHiddenLayers
	nHead, nHeadKV, nVocab := tc.NumAttentionHeads, tc.NumKeyValueHeads, tc.VocabSize
	if nHeadKV == 0 {
		nHeadKV = nHead
	}
	headDim := tc.HeadDim
	if headDim == 0 && nHead > 0 {
		headDim = nEmbd / nHead
	}
	switch {
	case nEmbd <= 0 || nFF <= 0 || nLayer <= 0 || nHead <= 0 || nVocab <= 0 || headDim <= 0:
		return b.errorf("text_config: hidden_size %d, intermediate_size %d, num_hidden_layers %d, num_attention_heads %d, vocab_size %d: all must be positive",
			nEmbd, nFF, nLayer, nHead, nVocab)
	case nHeadKV <= 0 || nHead%nHeadKV != 0:
		return b.errorf("text_config: num_attention_heads %d is not a multiple of num_key_value_heads %d", nHead, nHeadKV)
	case headDim%2 != 0:
		return b.errorf("text_config: head dimension %d is odd; rotary embeddings need it even", headDim)
	}
	if act := tc.HiddenAct; act != "" && act != "silu" && act != "swish" {
		return b.errorf("text_config: hidden_act %q: llama.cpp's llama runs SiLU only", act)
	}
	ropeType := strings.ToLower(tc.RopeType)
	switch {
	case ropeType == "" || ropeType == "default":
	case ropeType == "linear" && tc.RopeFactor > 0:
	default:
		return b.errorf("text_config: rope scaling %q is not supported (only none and linear)", tc.RopeType)
	}

	if err := b.vocabulary(); err != nil {
		return err
	}
	b.general()
	qDim, kvDim := nHead*headDim, nHeadKV*headDim

	// Checked first, written first: the token embeddings.
	if err := b.copyRows("token_embd.weight", "model.embed_tokens.weight", []int{nVocab, nEmbd}, b.keep, nil); err != nil {
		return err
	}
	for i := 0; i < nLayer; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		o := fmt.Sprintf("blk.%d.", i)
		steps := []step{
			{"attn_norm.weight", "input_layernorm.weight", []int{nEmbd}, nil},
			{"attn_q.weight", "self_attn.q_proj.weight", []int{qDim, nEmbd}, ropePermute(qDim, nEmbd, nHead)},
			{"attn_k.weight", "self_attn.k_proj.weight", []int{kvDim, nEmbd}, ropePermute(kvDim, nEmbd, nHeadKV)},
			{"attn_v.weight", "self_attn.v_proj.weight", []int{kvDim, nEmbd}, nil},
			{"attn_output.weight", "self_attn.o_proj.weight", []int{nEmbd, qDim}, nil},
		}
		if tc.AttentionBias {
			steps = append(steps, []step{
				{"attn_q.bias", "self_attn.q_proj.bias", []int{qDim}, ropePermute(qDim, 1, nHead)},
				{"attn_k.bias", "self_attn.k_proj.bias", []int{kvDim}, ropePermute(kvDim, 1, nHeadKV)},
				{"attn_v.bias", "self_attn.v_proj.bias", []int{kvDim}, nil},
				{"attn_output.bias", "self_attn.o_proj.bias", []int{nEmbd}, nil},
			}...)
		}
		steps = append(steps, []step{
			{"ffn_norm.weight", "post_attention_layernorm.weight", []int{nEmbd}, nil},
			{"ffn_gate.weight", "mlp.gate_proj.weight", []int{nFF, nEmbd}, nil},
			{"ffn_up.weight", "mlp.up_proj.weight", []int{nFF, nEmbd}, nil},
			{"ffn_down.weight", "mlp.down_proj.weight", []int{nEmbd, nFF}, nil},
		}...)
		if tc.MLPBias {
			steps = append(steps, []step{
				{"ffn_gate.bias", "mlp.gate_proj.bias", []int{nFF}, nil},
				{"ffn_up.bias", "mlp.up_proj.bias", []int{nFF}, nil},
				{"ffn_down.bias", "mlp.down_proj.bias", []int{nEmbd}, nil},
			}...)
		}
		if err := b.steps(o, p, steps); err != nil {
			return err
		}
		// Older checkpoints store the rotary frequencies; llama.cpp
		// computes them from rope.freq_base, as the script assumes.
		if name := p + "self_attn.rotary_emb.inv_freq"; b.has(name) {
			b.skipped = append(b.skipped, Prefix+name)
		}
	}
	if err := b.copyTensor("output_norm.weight", "model.norm.weight", []int{nEmbd}, nil); err != nil {
		return err
	}
	switch {
	case b.has("lm_head.weight"):
		if err := b.copyRows("output.weight", "lm_head.weight", []int{nVocab, nEmbd}, b.keep, nil); err != nil {
			return err
		}
	case tc.TieWordEmbeddings:
		// No output.weight: llama.cpp then uses token_embd, as tied.
	default:
		_, err := b.expect("lm_head.weight", nVocab, nEmbd)
		return err
	}

	// Metadata, in the order convert_hf_to_gguf.py writes it.
	b.sizeLabel()
	b.add(b.archKey("block_count"), uint32(nLayer))
	b.add(b.archKey("context_length"), uint32(tc.MaxPositionEmbeddings))
	b.add(b.archKey("embedding_length"), uint32(nEmbd))
	b.add(b.archKey("feed_forward_length"), uint32(nFF))
	b.add(b.archKey("attention.head_count"), uint32(nHead))
	b.add(b.archKey("attention.head_count_kv"), uint32(nHeadKV))
	if ropeType == "linear" {
		b.add(b.archKey("rope.scaling.type"), "linear")
		b.add(b.archKey("rope.scaling.factor"), float32(tc.RopeFactor))
	}
	b.add(b.archKey("rope.freq_base"), float32(tc.RopeTheta))
	b.add(b.archKey("attention.layer_norm_rms_epsilon"), float32(tc.RMSNormEps))
	if rawHas(tc.Raw, "head_dim") || headDim != nEmbd/nHead {
		b.add(b.archKey("attention.key_length"), uint32(headDim))
		b.add(b.archKey("attention.value_length"), uint32(headDim))
	}
	b.fileType()
	b.add(b.archKey("vocab_size"), uint32(b.keep))
	b.add(b.archKey("rope.dimension_count"), uint32(headDim))
	b.add(gguf.KeyQuantizationVersion, uint32(2))
	return b.vocab()
}

// ropePermute returns the row permutation convert_hf_to_gguf.py applies to
// the Q and K projections (LlamaModel.permute): transformers rotates the two
// halves of each head's dimensions, llama.cpp's rope rotates adjacent pairs,
// so within each head row j*half+i moves to i*2+j. For K, nHead is the
// number of key-value heads.
func ropePermute(rows, cols, nHead int) func([]float32) []float32 {
	return func(w []float32) []float32 {
		return permuteRows(w, rows, cols, nHead)
	}
}

func permuteRows(w []float32, rows, cols, nHead int) []float32 {
	headDim := rows / nHead
	half := headDim / 2
	out := make([]float32, len(w))
	for h := 0; h < nHead; h++ {
		base := h * headDim
		for i := 0; i < half; i++ {
			for j := 0; j < 2; j++ {
				dst := (base + i*2 + j) * cols
				src := (base + j*half + i) * cols
				copy(out[dst:dst+cols], w[src:src+cols])
			}
		}
	}
	return out
}
