package convert

import (
	"fmt"
	"strings"

	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
)

// The vision file, MODEL_DIR/vision.gguf, read by engine/vision.
//
// Metadata (general.architecture = "blip2-vision"):
//
//	blip2.family                  string  "blip-2" | "instructblip"
//	blip2.architecture            string  config.json architectures[0]
//	blip2.llm.family              string  text_config.model_type ("" if no LM)
//	blip2.prompt_format           string  "{prompt}" is replaced by the user's text
//	blip2.checkpoint_layout       string  "hub" | "transformers5"
//	blip2.weight_type             string  "f32" | "f16" | "q8_0"
//	blip2.num_query_tokens        u32
//	blip2.image_token_index       i32     the <image> placeholder id of the 2024 layout, -1 in the 2023
//	                                      layout; never put in a prompt (the queries go in as embeddings)
//	                                      and not in llm.gguf's vocabulary (lmconv's keepRows)
//	blip2.video_token_index       i32     InstructBLIP's <video> placeholder, -1 when absent
//	blip2.vision.{hidden_size, intermediate_size, block_count, head_count,
//	              image_size, patch_size, num_channels} u32
//	blip2.vision.layer_norm_epsilon f32
//	blip2.qformer.{hidden_size, intermediate_size, block_count, head_count,
//	               cross_attention_freq, encoder_hidden_size,
//	               max_position_embeddings, vocab_size} u32
//	blip2.qformer.layer_norm_epsilon f32
//	blip2.qformer.text_input      bool    InstructBLIP: the instruction enters the Q-Former
//	blip2.qformer.tokenizer.vocab      []string (WordPiece, when found)
//	blip2.qformer.tokenizer.lower_case bool
//	blip2.qformer.tokenizer.max_length u32 tokens of an instruction the Q-Former reads, [CLS] and [SEP]
//	                                       included (LAVIS's 128)
//	blip2.qformer.tokenizer.truncation_side string "left": a longer instruction keeps [CLS], its last
//	                                       max_length-2 tokens and [SEP]
//	blip2.projection.size         u32     0 when there is no language projection
//	blip2.image.{width, height, resample} u32
//	blip2.image.{mean, std}       [3]f32
//	blip2.image.rescale_factor    f32
//	blip2.image.{do_resize, do_rescale, do_normalize, do_convert_rgb} bool
//
// Tensors (shapes PyTorch-style, [out, in] for matrices; "mat" = the
// requested weight type, everything else F32):
//
//	v.patch_embd.weight [D, C*P*P] mat   the conv kernel flattened in (c, kh, kw) order
//	v.patch_embd.bias [D]  v.class_embd [D]  v.pos_embd [N, D]
//	v.blk.%d.{ln1, ln2}.{weight, bias} [D]
//	v.blk.%d.attn_qkv.weight [3D, D] mat, .bias [3D] (q, k, v biases; k zero in hub checkpoints)
//	v.blk.%d.attn_out.{weight [D, D] mat, bias}   (self_attn.projection)
//	v.blk.%d.ffn_up.{weight [I, D] mat, bias}     (mlp.fc1)
//	v.blk.%d.ffn_down.{weight [D, I] mat, bias}   (mlp.fc2)
//	v.post_ln.{weight, bias} [D]
//	q.query_tokens [Q, H]   q.embd_ln.{weight, bias} [H]
//	q.word_embd [V, H]  q.pos_embd [P, H]         (text input only)
//	q.blk.%d.attn_{q, k, v, out}.{weight [H, H] mat, bias}  q.blk.%d.attn_ln.{weight, bias}
//	q.blk.%d.cross_q.{weight [H, H] mat, bias}, cross_{k, v}.{weight [H, E] mat, bias},
//	  cross_out.{weight [H, H] mat, bias}, cross_ln   (layers with i % freq == 0)
//	q.blk.%d.ffn_{up, down}_query.{weight mat, bias}, ffn_ln_query
//	q.blk.%d.ffn_{up, down}.{weight mat, bias}, ffn_ln   (text input only)
//	proj.{weight [T, H] mat, bias [T]}             (language_projection)

// VisionFile is the name of the vision side's file in a model folder.
const VisionFile = "vision.gguf"

// Prompt formats by family (KeyPromptFormat): BLIP-2 was trained on
// "Question: ... Answer:" prompts; InstructBLIP takes the instruction as it
// is.
const (
	PromptFormatBLIP2        = "Question: {prompt} Answer:"
	PromptFormatInstructBLIP = "{prompt}"
)

// VisionArch is general.architecture of vision.gguf.
const VisionArch = "blip2-vision"

// Metadata keys of vision.gguf (see the table above), written here and read
// by engine/vision.
const (
	KeyFamily           = "blip2.family"
	KeyArchitecture     = "blip2.architecture"
	KeyLLMFamily        = "blip2.llm.family"
	KeyPromptFormat     = "blip2.prompt_format"
	KeyCheckpointLayout = "blip2.checkpoint_layout"
	KeyWeightType       = "blip2.weight_type"
	KeyNumQueryTokens   = "blip2.num_query_tokens"
	KeyImageTokenIndex  = "blip2.image_token_index"
	KeyVideoTokenIndex  = "blip2.video_token_index"

	KeyVisionHiddenSize       = "blip2.vision.hidden_size"
	KeyVisionIntermediateSize = "blip2.vision.intermediate_size"
	KeyVisionBlockCount       = "blip2.vision.block_count"
	KeyVisionHeadCount        = "blip2.vision.head_count"
	KeyVisionImageSize        = "blip2.vision.image_size"
	KeyVisionPatchSize        = "blip2.vision.patch_size"
	KeyVisionNumChannels      = "blip2.vision.num_channels"
	KeyVisionLayerNormEps     = "blip2.vision.layer_norm_epsilon"

	KeyQFormerHiddenSize         = "blip2.qformer.hidden_size"
	KeyQFormerIntermediateSize   = "blip2.qformer.intermediate_size"
	KeyQFormerBlockCount         = "blip2.qformer.block_count"
	KeyQFormerHeadCount          = "blip2.qformer.head_count"
	KeyQFormerCrossAttentionFreq = "blip2.qformer.cross_attention_freq"
	KeyQFormerEncoderHiddenSize  = "blip2.qformer.encoder_hidden_size"
	KeyQFormerMaxPositions       = "blip2.qformer.max_position_embeddings"
	KeyQFormerVocabSize          = "blip2.qformer.vocab_size"
	KeyQFormerLayerNormEps       = "blip2.qformer.layer_norm_epsilon"
	KeyQFormerTextInput          = "blip2.qformer.text_input"
	KeyQFormerVocab              = "blip2.qformer.tokenizer.vocab"
	KeyQFormerLowerCase          = "blip2.qformer.tokenizer.lower_case"
	KeyQFormerMaxLength          = "blip2.qformer.tokenizer.max_length"
	KeyQFormerTruncationSide     = "blip2.qformer.tokenizer.truncation_side"

	KeyProjectionSize = "blip2.projection.size"

	KeyImageWidth         = "blip2.image.width"
	KeyImageHeight        = "blip2.image.height"
	KeyImageResample      = "blip2.image.resample"
	KeyImageMean          = "blip2.image.mean"
	KeyImageStd           = "blip2.image.std"
	KeyImageRescaleFactor = "blip2.image.rescale_factor"
	KeyImageDoResize      = "blip2.image.do_resize"
	KeyImageDoRescale     = "blip2.image.do_rescale"
	KeyImageDoNormalize   = "blip2.image.do_normalize"
	KeyImageDoConvertRGB  = "blip2.image.do_convert_rgb"
)

// Tensor names of vision.gguf. Norms and linear layers are named without
// their ".weight" / ".bias" suffix.
const (
	TensorPatchEmbd   = "v.patch_embd"
	TensorClassEmbd   = "v.class_embd"
	TensorPosEmbd     = "v.pos_embd"
	TensorPostLN      = "v.post_ln"
	TensorQueryTokens = "q.query_tokens"
	TensorQEmbdLN     = "q.embd_ln"
	TensorQWordEmbd   = "q.word_embd"
	TensorQPosEmbd    = "q.pos_embd"
	TensorProjection  = "proj"
)

// ViTBlockNames are the tensor names of one ViT layer.
type ViTBlockNames struct {
	LN1, QKV, AttnOut, LN2, FFNUp, FFNDown string
}

// ViTBlock names the tensors of ViT layer i: "v.blk.i.ln1", ...
func ViTBlock(i int) ViTBlockNames {
	p := fmt.Sprintf("v.blk.%d.", i)
	return ViTBlockNames{LN1: p + "ln1", QKV: p + "attn_qkv", AttnOut: p + "attn_out", LN2: p + "ln2",
		FFNUp: p + "ffn_up", FFNDown: p + "ffn_down"}
}

// QFormerBlockNames are the tensor names of one Q-Former layer: self
// attention, cross-attention to the image (every CrossAttentionFreq-th
// layer), the queries' feed-forward and the text's (text input only).
type QFormerBlockNames struct {
	AttnQ, AttnK, AttnV, AttnOut, AttnLN      string
	CrossQ, CrossK, CrossV, CrossOut, CrossLN string
	FFNUpQuery, FFNDownQuery, FFNLNQuery      string
	FFNUp, FFNDown, FFNLN                     string
}

// QFormerBlock names the tensors of Q-Former layer i: "q.blk.i.attn_q", ...
func QFormerBlock(i int) QFormerBlockNames {
	p := fmt.Sprintf("q.blk.%d.", i)
	return QFormerBlockNames{
		AttnQ: p + "attn_q", AttnK: p + "attn_k", AttnV: p + "attn_v", AttnOut: p + "attn_out", AttnLN: p + "attn_ln",
		CrossQ: p + "cross_q", CrossK: p + "cross_k", CrossV: p + "cross_v", CrossOut: p + "cross_out", CrossLN: p + "cross_ln",
		FFNUpQuery: p + "ffn_up_query", FFNDownQuery: p + "ffn_down_query", FFNLNQuery: p + "ffn_ln_query",
		FFNUp: p + "ffn_up", FFNDown: p + "ffn_down", FFNLN: p + "ffn_ln",
	}
}

// ResampleBicubic is PIL's Image.BICUBIC, the resample value of every
// BLIP-2 and InstructBLIP processor and what engine/imageprep implements.
const ResampleBicubic = 3

// Vision weight types (KeyWeightType).
var visionWeightTypes = []string{"f32", "f16", "q8_0"}

// CheckVisionMetadata checks the metadata of a vision file against the
// schema above: every size in the range hfconfig allows in a config.json,
// the sizes consistent with each other, the image settings the engine
// follows (a bicubic resize to the ViT's own image size, RGB), finite
// norm epsilons and normalization. The converter runs it on what it is
// about to write and engine/vision before it sizes anything from a file, so
// that a damaged or crafted vision.gguf (an image of 100000x100000 pixels,
// a NaN epsilon, no layers) is refused as convert would have refused its
// checkpoint.
func CheckVisionMetadata(f *gguf.File) error {
	c := gguf.NewChecker(f)
	c.String(gguf.KeyArchitecture, VisionArch)
	family := c.String(KeyFamily, "blip-2", "instructblip")
	if p := c.String(KeyPromptFormat); c.Err() == nil && !strings.Contains(p, "{prompt}") {
		c.Failf("metadata %s = %q has no {prompt}", KeyPromptFormat, p)
	}
	if c.Has(KeyWeightType) {
		c.String(KeyWeightType, visionWeightTypes...)
	}
	c.Int(KeyNumQueryTokens, 1, hfconfig.MaxQueries)

	const epsMax = 1 // a norm epsilon is a small positive number
	d := c.Int(KeyVisionHiddenSize, 1, hfconfig.MaxWidth)
	c.Int(KeyVisionIntermediateSize, 1, hfconfig.MaxWidth)
	c.Int(KeyVisionBlockCount, 1, hfconfig.MaxLayers)
	heads := c.Int(KeyVisionHeadCount, 1, hfconfig.MaxWidth)
	size := c.Int(KeyVisionImageSize, 1, hfconfig.MaxImageSize)
	patch := c.Int(KeyVisionPatchSize, 1, max(size, 1))
	c.Int(KeyVisionNumChannels, 3, 3)
	c.Float(KeyVisionLayerNormEps, 0, epsMax, true)
	if c.Err() == nil && d%heads != 0 {
		c.Failf("metadata %s %d is not a multiple of %s %d", KeyVisionHiddenSize, d, KeyVisionHeadCount, heads)
	}
	if c.Err() == nil && size%patch != 0 {
		c.Failf("metadata %s %d is not a multiple of %s %d", KeyVisionImageSize, size, KeyVisionPatchSize, patch)
	}

	h := c.Int(KeyQFormerHiddenSize, 1, hfconfig.MaxWidth)
	c.Int(KeyQFormerIntermediateSize, 1, hfconfig.MaxWidth)
	c.Int(KeyQFormerBlockCount, 1, hfconfig.MaxLayers)
	qheads := c.Int(KeyQFormerHeadCount, 1, hfconfig.MaxWidth)
	c.Int(KeyQFormerCrossAttentionFreq, 1, hfconfig.MaxLayers)
	if e := c.Int(KeyQFormerEncoderHiddenSize, 1, hfconfig.MaxWidth); c.Err() == nil && e != d {
		c.Failf("metadata %s %d differs from %s %d", KeyQFormerEncoderHiddenSize, e, KeyVisionHiddenSize, d)
	}
	// InstructBLIP's Q-Former reads the instruction, a retrieval model's
	// its texts; a BLIP-2 generation model's reads no text.
	text := c.Bool(KeyQFormerTextInput)
	retrieval := c.Has(KeyRetrievalEmbedSize)
	if c.Err() == nil && text != (family == "instructblip" || retrieval) {
		c.Failf("metadata %s is %v for a %s model", KeyQFormerTextInput, text, family)
	}
	if retrieval {
		c.Int(KeyRetrievalEmbedSize, 1, hfconfig.MaxWidth)
	}
	lo := 0
	if text {
		lo = 1 // the Q-Former embeds text
	}
	c.Int(KeyQFormerMaxPositions, lo, hfconfig.MaxPositions)
	vocab := c.Int(KeyQFormerVocabSize, lo, hfconfig.MaxVocab)
	c.Float(KeyQFormerLayerNormEps, 0, epsMax, true)
	if c.Err() == nil && h%qheads != 0 {
		c.Failf("metadata %s %d is not a multiple of %s %d", KeyQFormerHiddenSize, h, KeyQFormerHeadCount, qheads)
	}
	if v, ok := f.Strings(KeyQFormerVocab); ok && c.Err() == nil && len(v) > vocab {
		c.Failf("metadata %s holds %d tokens, more than %s %d", KeyQFormerVocab, len(v), KeyQFormerVocabSize, vocab)
	}
	c.Int(KeyProjectionSize, 0, hfconfig.MaxWidth)

	// The image settings: what engine/imageprep does, for the ViT's size.
	w, ht := c.Int(KeyImageWidth, 1, hfconfig.MaxImageSize), c.Int(KeyImageHeight, 1, hfconfig.MaxImageSize)
	if c.Err() == nil && (w != size || ht != size) {
		c.Failf("metadata %s x %s = %dx%d differs from %s %d: the images must be resized to the vision model's size",
			KeyImageWidth, KeyImageHeight, w, ht, KeyVisionImageSize, size)
	}
	c.Int(KeyImageResample, ResampleBicubic, ResampleBicubic)
	c.Floats(KeyImageMean, 3, -1e3, 1e3, false)
	c.Floats(KeyImageStd, 3, 0, 1e3, true)
	c.Float(KeyImageRescaleFactor, 0, 1, true)
	for _, k := range []string{KeyImageDoResize, KeyImageDoConvertRGB} {
		if !c.Bool(k) && c.Err() == nil {
			c.Failf("metadata %s is false: blip2chat always resizes images and converts them to RGB", k)
		}
	}
	c.Bool(KeyImageDoRescale)
	c.Bool(KeyImageDoNormalize)
	return c.Err()
}
