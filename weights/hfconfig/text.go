package hfconfig

import (
	"fmt"
	"strings"
)

// parseText reads text_config with the defaults of the config class its
// model_type selects. Blip2Config and InstructBlipConfig both fall back to
// OPTConfig when text_config or its model_type is missing.
func parseText(o obj) (*TextConfig, error) {
	mt := o.str("model_type", "opt")
	if o.r.err != nil {
		return nil, o.r.err
	}
	var t *TextConfig
	switch mt {
	case "opt":
		t = parseOPT(o)
	case "t5":
		t = parseT5(o)
	case "llama":
		t = parseLlama(o)
	default:
		return nil, fmt.Errorf("%s: unsupported language model %q (want opt, t5 or llama)", o.name("model_type"), mt)
	}
	t.ModelType = mt
	if o.r.err != nil {
		return nil, o.r.err
	}
	o.checkRange("vocab_size", t.VocabSize, 1, MaxVocab)
	return t, o.r.err
}

// tokenIDs fills the special token ids; def* are the class defaults, -1 for None.
func tokenIDs(o obj, t *TextConfig, defBOS, defEOS, defPad int) {
	t.BOSTokenID = o.int("bos_token_id", defBOS)
	t.PadTokenID = o.int("pad_token_id", defPad)
	t.EOSTokenID = defEOS
	if ids, ok := o.ints("eos_token_id"); ok && len(ids) > 0 {
		t.EOSTokenID = ids[0]
		t.EOSTokenIDs = ids
	} else if defEOS >= 0 {
		t.EOSTokenIDs = []int{defEOS}
	}
	t.DecoderStartTokenID = o.int("decoder_start_token_id", -1)
}

func parseOPT(o obj) *TextConfig {
	t := &TextConfig{
		VocabSize:                  o.int("vocab_size", 50272),
		HiddenSize:                 o.int("hidden_size", 768),
		NumHiddenLayers:            o.int("num_hidden_layers", 12),
		FFNDim:                     o.int("ffn_dim", 3072),
		MaxPositionEmbeddings:      o.int("max_position_embeddings", 2048),
		DoLayerNormBefore:          o.bool("do_layer_norm_before", true),
		RemoveFinalLayerNorm:       o.bool("_remove_final_layer_norm", false),
		NumAttentionHeads:          o.int("num_attention_heads", 12),
		ActivationFunction:         o.str("activation_function", "relu"),
		EnableBias:                 o.bool("enable_bias", true),
		LayerNormElementwiseAffine: o.bool("layer_norm_elementwise_affine", true),
		TieWordEmbeddings:          o.bool("tie_word_embeddings", true),
		LayerNormEps:               1e-5,
	}
	t.WordEmbedProjDim = o.int("word_embed_proj_dim", t.HiddenSize)
	tokenIDs(o, t, 2, 2, 1)
	t.IntermediateSize = t.FFNDim
	t.NumKeyValueHeads = t.NumAttentionHeads
	t.HiddenAct = t.ActivationFunction
	checkAttention(o, t.HiddenSize, t.NumAttentionHeads, true)
	o.checkRange("num_hidden_layers", t.NumHiddenLayers, 1, MaxLayers)
	o.checkRange("ffn_dim", t.FFNDim, 1, MaxWidth)
	o.checkRange("word_embed_proj_dim", t.WordEmbedProjDim, 1, MaxWidth)
	o.checkRange("max_position_embeddings", t.MaxPositionEmbeddings, 1, MaxPositions)
	if o.r.err == nil {
		t.HeadDim = t.HiddenSize / t.NumAttentionHeads
	}
	return t
}

// pick returns the int under the first present key; T5Config's attribute_map
// lets hidden_size stand for d_model and so on.
func pick(o obj, def int, keys ...string) int {
	for _, k := range keys {
		if o.has(k) {
			return o.int(k, def)
		}
	}
	return def
}

func parseT5(o obj) *TextConfig {
	t := &TextConfig{
		VocabSize:                    o.int("vocab_size", 32128),
		DModel:                       pick(o, 512, "d_model", "hidden_size"),
		DKV:                          pick(o, 64, "d_kv", "head_dim"),
		DFF:                          o.int("d_ff", 2048),
		NumLayers:                    pick(o, 6, "num_layers", "num_hidden_layers"),
		NumHeads:                     pick(o, 8, "num_heads", "num_attention_heads"),
		RelativeAttentionNumBuckets:  o.int("relative_attention_num_buckets", 32),
		RelativeAttentionMaxDistance: o.int("relative_attention_max_distance", 128),
		LayerNormEpsilon:             o.float("layer_norm_epsilon", 1e-6),
		FeedForwardProj:              o.str("feed_forward_proj", "relu"),
		TieWordEmbeddings:            o.bool("tie_word_embeddings", true),
		IsEncoderDecoder:             o.bool("is_encoder_decoder", true),
	}
	t.NumDecoderLayers = o.int("num_decoder_layers", t.NumLayers)
	t.ScaleDecoderOutputs = o.bool("scale_decoder_outputs", t.TieWordEmbeddings)
	tokenIDs(o, t, -1, 1, 0)
	if t.DecoderStartTokenID < 0 {
		t.DecoderStartTokenID = t.PadTokenID
	}

	// As T5Config: "{act}" or "gated-{act}"; gated-gelu means the tanh
	// approximation gelu_new for backward compatibility.
	parts := strings.Split(t.FeedForwardProj, "-")
	if len(parts) > 2 || (len(parts) == 2 && parts[0] != "gated") || parts[len(parts)-1] == "" {
		o.fail("feed_forward_proj", "%q is not \"{ACT}\" or \"gated-{ACT}\"", t.FeedForwardProj)
	}
	t.IsGatedAct = len(parts) == 2
	t.DenseActFn = parts[len(parts)-1]
	if t.FeedForwardProj == "gated-gelu" {
		t.DenseActFn = "gelu_new"
	}
	// T5Config.__init__ derives both from feed_forward_proj, then
	// PretrainedConfig.__init__ sets every other key of the file as an
	// attribute, so values stored in config.json win: BLIP-2 FlanT5's
	// "dense_act_fn": "gelu" beside "gated-gelu" runs exact (erf) GELU, as
	// LAVIS trained it, not gelu_new.
	t.DenseActFn = o.str("dense_act_fn", t.DenseActFn)
	t.IsGatedAct = o.bool("is_gated_act", t.IsGatedAct)
	if !t.IsEncoderDecoder {
		o.fail("is_encoder_decoder", "false: only the T5 encoder-decoder is supported")
	}

	t.HiddenSize, t.NumAttentionHeads, t.NumKeyValueHeads = t.DModel, t.NumHeads, t.NumHeads
	t.NumHiddenLayers, t.IntermediateSize, t.HeadDim = t.NumLayers, t.DFF, t.DKV
	t.HiddenAct = t.DenseActFn
	// T5 attention is NumHeads x DKV wide, which need not equal DModel.
	o.checkRange("d_model", t.DModel, 1, MaxWidth)
	o.checkRange("num_heads", t.NumHeads, 1, MaxWidth)
	o.checkRange("d_kv", t.DKV, 1, MaxWidth)
	o.checkRange("d_ff", t.DFF, 1, MaxWidth)
	o.checkRange("num_layers", t.NumLayers, 1, MaxLayers)
	o.checkRange("num_decoder_layers", t.NumDecoderLayers, 1, MaxLayers)
	o.checkRange("relative_attention_num_buckets", t.RelativeAttentionNumBuckets, 1, 1<<16)
	o.checkRange("relative_attention_max_distance", t.RelativeAttentionMaxDistance, 1, MaxPositions)
	o.checkPositive("layer_norm_epsilon", t.LayerNormEpsilon)
	return t
}

func parseLlama(o obj) *TextConfig {
	t := &TextConfig{
		VocabSize:             o.int("vocab_size", 32000),
		HiddenSize:            o.int("hidden_size", 4096),
		IntermediateSize:      o.int("intermediate_size", 11008),
		NumHiddenLayers:       o.int("num_hidden_layers", 32),
		NumAttentionHeads:     o.int("num_attention_heads", 32),
		HiddenAct:             o.str("hidden_act", "silu"),
		MaxPositionEmbeddings: o.int("max_position_embeddings", 2048),
		RMSNormEps:            o.float("rms_norm_eps", 1e-6),
		TieWordEmbeddings:     o.bool("tie_word_embeddings", false),
		AttentionBias:         o.bool("attention_bias", false),
		MLPBias:               o.bool("mlp_bias", false),
		RopeTheta:             10000,
		RopeType:              "default",
	}
	t.NumKeyValueHeads = o.int("num_key_value_heads", t.NumAttentionHeads)
	tokenIDs(o, t, 1, 2, -1)

	// Hub layout: rope_theta at the top, scaling in rope_scaling (older
	// files spell rope_type as "type"). transformers 5: both inside
	// rope_parameters.
	t.RopeTheta = o.float("rope_theta", t.RopeTheta)
	for _, key := range []string{"rope_scaling", "rope_parameters"} {
		rp, ok := o.sub(key)
		if !ok {
			continue
		}
		t.RopeTheta = rp.float("rope_theta", t.RopeTheta)
		t.RopeType = rp.str("rope_type", rp.str("type", t.RopeType))
		t.RopeFactor = rp.float("factor", t.RopeFactor)
	}
	o.checkPositive("rope_theta", t.RopeTheta)
	o.checkPositive("rms_norm_eps", t.RMSNormEps)

	checkAttention(o, t.HiddenSize, t.NumAttentionHeads, !o.has("head_dim"))
	o.checkRange("num_key_value_heads", t.NumKeyValueHeads, 1, MaxWidth)
	o.checkRange("intermediate_size", t.IntermediateSize, 1, MaxWidth)
	o.checkRange("num_hidden_layers", t.NumHiddenLayers, 1, MaxLayers)
	o.checkRange("max_position_embeddings", t.MaxPositionEmbeddings, 1, MaxPositions)
	if o.r.err == nil && t.NumAttentionHeads%t.NumKeyValueHeads != 0 {
		o.fail("num_key_value_heads", "%d does not divide num_attention_heads %d", t.NumKeyValueHeads, t.NumAttentionHeads)
	}
	if o.r.err == nil {
		t.HeadDim = o.int("head_dim", t.HiddenSize/t.NumAttentionHeads)
		o.checkRange("head_dim", t.HeadDim, 1, MaxWidth)
	}
	return t
}
