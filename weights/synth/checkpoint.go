package synth

import (
	"fmt"

	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
	"github.com/blip2chat/blip2chat/weights/lmconv"
	"github.com/blip2chat/blip2chat/weights/safetensors"
)

// standIn is a checkpoint of tensor names and shapes only: what the
// converter checks when it plans. Its tensors have no data; nothing reads
// it, since every planned tensor's values are replaced.
type standIn struct {
	names  []string
	shapes map[string][]int
}

func (c *standIn) add(name string, shape ...int) {
	if c.shapes == nil {
		c.shapes = map[string][]int{}
	}
	c.names = append(c.names, name)
	c.shapes[name] = shape
}

// Tensor implements plan.Checkpoint: every tensor is F16, as the hub's
// checkpoints mostly are.
func (c *standIn) Tensor(name string) (safetensors.Tensor, bool) {
	s, ok := c.shapes[name]
	if !ok {
		return safetensors.Tensor{}, false
	}
	return safetensors.Tensor{Name: name, DType: safetensors.F16, Shape: s}, true
}

// Names implements plan.Checkpoint.
func (c *standIn) Names() []string { return c.names }

// checkpointTensors lists the tensors of a Hugging Face BLIP-2 or
// InstructBLIP checkpoint with config cfg, as transformers saves them (the
// hub layout: separate q_bias and v_bias): the vision side and the
// language model.
func checkpointTensors(cfg *hfconfig.Config) (*standIn, error) {
	c := &standIn{}
	visionTensors(c, cfg)
	if isRetrieval(cfg) {
		retrievalTensors(c, cfg)
		return c, nil
	}
	return c, languageModelTensors(c, &cfg.Text)
}

// isRetrieval reports whether cfg is an image–text retrieval checkpoint's
// (no language model; a text side and heads instead).
func isRetrieval(cfg *hfconfig.Config) bool {
	return len(cfg.Architectures) > 0 && cfg.Architectures[0] == convert.RetrievalArch
}

// retrievalTensors adds what Blip2ForImageTextRetrieval has beyond the
// Q-Former (whose text feed-forward visionTensors adds): the text
// embeddings and the heads.
func retrievalTensors(c *standIn, cfg *hfconfig.Config) {
	q := cfg.QFormer
	H, E := q.HiddenSize, cfg.ImageTextHiddenSize
	c.add("embeddings.word_embeddings.weight", q.VocabSize, H)
	c.add("embeddings.position_embeddings.weight", q.MaxPositionEmbeddings, H)
	for _, l := range []struct {
		name    string
		out, in int
	}{{"vision_projection", E, H}, {"text_projection", E, H}, {"itm_head", 2, H}} {
		c.add(l.name+".weight", l.out, l.in)
		c.add(l.name+".bias", l.out)
	}
}

// visionTensors adds the ViT, Q-Former, query tokens and language
// projection.
func visionTensors(c *standIn, cfg *hfconfig.Config) {
	v, q := cfg.Vision, cfg.QFormer
	C := v.NumChannels
	if C == 0 {
		C = 3
	}
	D, Dff, P := v.HiddenSize, v.IntermediateSize, v.PatchSize
	N := (v.ImageSize/P)*(v.ImageSize/P) + 1
	H, Hff, E := q.HiddenSize, q.IntermediateSize, q.EncoderHiddenSize
	instruct := cfg.ModelType == "instructblip"
	textFFN := instruct || isRetrieval(cfg) // the text rows' own feed-forward
	linear := func(name string, out, in int) {
		c.add(name+".weight", out, in)
		c.add(name+".bias", out)
	}
	norm := func(name string, n int) {
		c.add(name+".weight", n)
		c.add(name+".bias", n)
	}
	c.add("vision_model.embeddings.class_embedding", 1, 1, D)
	c.add("vision_model.embeddings.patch_embedding.weight", D, C, P, P)
	c.add("vision_model.embeddings.patch_embedding.bias", D)
	c.add("vision_model.embeddings.position_embedding", 1, N, D)
	for i := 0; i < v.NumHiddenLayers; i++ {
		p := fmt.Sprintf("vision_model.encoder.layers.%d.", i)
		norm(p+"layer_norm1", D)
		c.add(p+"self_attn.qkv.weight", 3*D, D)
		if v.QKVBias {
			c.add(p+"self_attn.q_bias", D)
			c.add(p+"self_attn.v_bias", D)
		}
		linear(p+"self_attn.projection", D, D)
		norm(p+"layer_norm2", D)
		linear(p+"mlp.fc1", Dff, D)
		linear(p+"mlp.fc2", D, Dff)
	}
	norm("vision_model.post_layernorm", D)
	c.add("query_tokens", 1, cfg.NumQueryTokens, H)
	if instruct {
		norm("qformer.embeddings.layernorm", H)
		c.add("qformer.embeddings.word_embeddings.weight", q.VocabSize, H)
		c.add("qformer.embeddings.position_embeddings.weight", q.MaxPositionEmbeddings, H)
	} else {
		norm("qformer.layernorm", H)
	}
	for i := 0; i < q.NumHiddenLayers; i++ {
		p := fmt.Sprintf("qformer.encoder.layer.%d.", i)
		linear(p+"attention.attention.query", H, H)
		linear(p+"attention.attention.key", H, H)
		linear(p+"attention.attention.value", H, H)
		linear(p+"attention.output.dense", H, H)
		norm(p+"attention.output.LayerNorm", H)
		if q.CrossAttentionFrequency > 0 && i%q.CrossAttentionFrequency == 0 {
			linear(p+"crossattention.attention.query", H, H)
			linear(p+"crossattention.attention.key", H, E)
			linear(p+"crossattention.attention.value", H, E)
			linear(p+"crossattention.output.dense", H, H)
			norm(p+"crossattention.output.LayerNorm", H)
		}
		linear(p+"intermediate_query.dense", Hff, H)
		linear(p+"output_query.dense", H, Hff)
		norm(p+"output_query.LayerNorm", H)
		if textFFN {
			linear(p+"intermediate.dense", Hff, H)
			linear(p+"output.dense", H, Hff)
			norm(p+"output.LayerNorm", H)
		}
	}
	if T := cfg.Text.HiddenSize; T > 0 && !isRetrieval(cfg) {
		linear("language_projection", T, H)
	}
}

// languageModelTensors adds the language model's tensors (under
// "language_model.") for text config tc: LLaMA, T5 or OPT.
func languageModelTensors(c *standIn, tc *hfconfig.TextConfig) error {
	switch tc.ModelType {
	case "llama":
		llamaTensors(c, tc)
	case "t5":
		t5Tensors(c, tc)
	case "opt":
		optTensors(c, tc)
	default:
		return fmt.Errorf("synthetic models: no %s language model (want llama, t5 or opt)", tc.ModelType)
	}
	return nil
}

func llamaTensors(c *standIn, tc *hfconfig.TextConfig) {
	p := lmconv.Prefix
	E, F, V := tc.HiddenSize, tc.IntermediateSize, tc.VocabSize
	heads, kvHeads := tc.NumAttentionHeads, tc.NumKeyValueHeads
	if kvHeads == 0 {
		kvHeads = heads
	}
	hd := tc.HeadDim
	if hd == 0 {
		hd = E / heads
	}
	c.add(p+"model.embed_tokens.weight", V, E)
	for i := 0; i < tc.NumHiddenLayers; i++ {
		l := fmt.Sprintf("%smodel.layers.%d.", p, i)
		c.add(l+"input_layernorm.weight", E)
		c.add(l+"self_attn.q_proj.weight", heads*hd, E)
		c.add(l+"self_attn.k_proj.weight", kvHeads*hd, E)
		c.add(l+"self_attn.v_proj.weight", kvHeads*hd, E)
		c.add(l+"self_attn.o_proj.weight", E, heads*hd)
		c.add(l+"post_attention_layernorm.weight", E)
		c.add(l+"mlp.gate_proj.weight", F, E)
		c.add(l+"mlp.up_proj.weight", F, E)
		c.add(l+"mlp.down_proj.weight", E, F)
	}
	c.add(p+"model.norm.weight", E)
	if !tc.TieWordEmbeddings {
		c.add(p+"lm_head.weight", V, E)
	}
}

func t5Tensors(c *standIn, tc *hfconfig.TextConfig) {
	p := lmconv.Prefix
	d, inner, F, V := tc.DModel, tc.NumHeads*tc.DKV, tc.DFF, tc.VocabSize
	nDec := tc.NumDecoderLayers
	if nDec == 0 {
		nDec = tc.NumLayers
	}
	c.add(p+"shared.weight", V, d)
	ffn := func(l string) {
		c.add(l+"layer_norm.weight", d)
		if tc.IsGatedAct {
			c.add(l+"DenseReluDense.wi_0.weight", F, d)
			c.add(l+"DenseReluDense.wi_1.weight", F, d)
		} else {
			c.add(l+"DenseReluDense.wi.weight", F, d)
		}
		c.add(l+"DenseReluDense.wo.weight", d, F)
	}
	attn := func(l, module string, rel bool) {
		c.add(l+"layer_norm.weight", d)
		for _, m := range []string{"q", "k", "v"} {
			c.add(l+module+"."+m+".weight", inner, d)
		}
		c.add(l+module+".o.weight", d, inner)
		if rel {
			c.add(l+module+".relative_attention_bias.weight", tc.RelativeAttentionNumBuckets, tc.NumHeads)
		}
	}
	for i := 0; i < tc.NumLayers; i++ {
		l := fmt.Sprintf("%sencoder.block.%d.layer.", p, i)
		attn(l+"0.", "SelfAttention", i == 0)
		ffn(l + "1.")
	}
	c.add(p+"encoder.final_layer_norm.weight", d)
	for i := 0; i < nDec; i++ {
		l := fmt.Sprintf("%sdecoder.block.%d.layer.", p, i)
		attn(l+"0.", "SelfAttention", i == 0)
		attn(l+"1.", "EncDecAttention", false)
		ffn(l + "2.")
	}
	c.add(p+"decoder.final_layer_norm.weight", d)
	if !tc.TieWordEmbeddings {
		c.add(p+"lm_head.weight", V, d)
	}
}

func optTensors(c *standIn, tc *hfconfig.TextConfig) {
	p := lmconv.Prefix + "model.decoder."
	H, F, V := tc.HiddenSize, tc.FFNDim, tc.VocabSize
	E := tc.WordEmbedProjDim
	if E == 0 {
		E = H
	}
	linear := func(name string, out, in int) {
		c.add(name+".weight", out, in)
		if tc.EnableBias {
			c.add(name+".bias", out)
		}
	}
	norm := func(name string) {
		if tc.LayerNormElementwiseAffine {
			c.add(name+".weight", H)
			c.add(name+".bias", H)
		}
	}
	c.add(p+"embed_tokens.weight", V, E)
	c.add(p+"embed_positions.weight", tc.MaxPositionEmbeddings+lmconv.OPTPositionOffset, H)
	if E != H {
		c.add(p+"project_in.weight", H, E)
		c.add(p+"project_out.weight", E, H)
	}
	if tc.DoLayerNormBefore && !tc.RemoveFinalLayerNorm {
		norm(p + "final_layer_norm")
	}
	for i := 0; i < tc.NumHiddenLayers; i++ {
		l := fmt.Sprintf("%slayers.%d.", p, i)
		norm(l + "self_attn_layer_norm")
		linear(l+"self_attn.q_proj", H, H)
		linear(l+"self_attn.k_proj", H, H)
		linear(l+"self_attn.v_proj", H, H)
		linear(l+"self_attn.out_proj", H, H)
		norm(l + "final_layer_norm")
		linear(l+"fc1", F, H)
		linear(l+"fc2", H, F)
	}
	if !tc.TieWordEmbeddings {
		c.add(lmconv.Prefix+"lm_head.weight", V, E)
	}
}
