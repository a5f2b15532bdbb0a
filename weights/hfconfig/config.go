// Package hfconfig reads the JSON files of a Hugging Face BLIP-2 or
// InstructBLIP model folder: config.json, preprocessor_config.json,
// tokenizer_config.json and generation_config.json.
//
// Every field absent from config.json takes the default of the transformers
// configuration class for that model type (Blip2Config, InstructBlipConfig,
// OPTConfig, T5Config, LlamaConfig), so a minimal {"model_type": "blip-2"}
// describes the real BLIP-2 OPT-2.7b architecture. Both layouts in the wild
// are read: checkpoints on the hub (transformers 4: rope_theta at the top of
// text_config, "torch_dtype") and folders saved by transformers 5
// ("rope_parameters": {"rope_theta", "rope_type"}, "dtype").
package hfconfig

import (
	"fmt"
	"path/filepath"
)

// Config is a parsed config.json of a BLIP-2 family model.
type Config struct {
	ModelType           string // "blip-2" or "instructblip"
	Architectures       []string
	NumQueryTokens      int
	Vision              VisionConfig
	QFormer             QFormerConfig
	Text                TextConfig
	ImageTextHiddenSize int // Blip2 ITM/ITC projection size (default 256); 0 for InstructBLIP, which has none
	// ImageTokenIndex is the id of the <image> placeholder of the 2024
	// "update for transformers" layout, which its processor puts in the
	// prompt num_query_tokens times for the model to replace by the
	// projected queries; -1 when null or absent (the 2023 layout, where the
	// queries are put before the prompt's embeddings).
	ImageTokenIndex int
	// VideoTokenIndex is InstructBLIP's <video> placeholder id, -1 when
	// absent.
	VideoTokenIndex int
	// UseDecoderOnlyLanguageModel is true when the language model is a
	// causal LM (OPT, LLaMA) and false for encoder-decoder T5, as
	// transformers derives it.
	UseDecoderOnlyLanguageModel bool
	// DType is "torch_dtype" (hub) or "dtype" (transformers 5), e.g.
	// "float32"; "" when absent. Only informative: the Salesforce
	// checkpoints store float32 whatever it says, and readers take each
	// tensor's dtype from the safetensors header.
	DType string
	// Layout is "hub" or "transformers5". Parse leaves it empty: the
	// checkpoint's tensor names decide it, so the converter fills it in.
	Layout string
}

// VisionConfig is the EVA ViT image encoder (Blip2VisionConfig).
type VisionConfig struct {
	HiddenSize, IntermediateSize, NumHiddenLayers, NumAttentionHeads int
	ImageSize, PatchSize, NumChannels                                int
	HiddenAct                                                        string
	LayerNormEps                                                     float64
	QKVBias                                                          bool
}

// NumPatches is the number of image patches; the ViT sees one more token
// (the class embedding).
func (v VisionConfig) NumPatches() int {
	n := v.ImageSize / v.PatchSize
	return n * n
}

// HeadDim is the per-head width of the ViT attention.
func (v VisionConfig) HeadDim() int { return v.HiddenSize / v.NumAttentionHeads }

// QFormerConfig is the Querying Transformer (Blip2QFormerConfig).
type QFormerConfig struct {
	HiddenSize, IntermediateSize, NumHiddenLayers, NumAttentionHeads int
	// CrossAttentionFrequency: layer i has cross-attention to the image
	// when i % CrossAttentionFrequency == 0.
	CrossAttentionFrequency int
	// EncoderHiddenSize is the width of the image features the Q-Former
	// cross-attends to; transformers always overwrites it with the vision
	// hidden size, and so does Parse.
	EncoderHiddenSize, VocabSize, MaxPositionEmbeddings, PadTokenID int
	LayerNormEps                                                    float64
	HiddenAct, PositionEmbeddingType                                string
	// UseQFormerTextInput is true when the Q-Former has BERT text embeddings
	// and a text feed-forward branch: from the config for BLIP-2 (the ITM
	// model), always true for InstructBLIP, whose Q-Former reads the
	// instruction whatever the field says.
	UseQFormerTextInput bool
}

// TextConfig is the language model's config (OPTConfig, T5Config or
// LlamaConfig). Generic fields are filled for every model type (for T5 from
// its own names: HiddenSize = d_model, NumAttentionHeads = NumKeyValueHeads
// = num_heads, NumHiddenLayers = num_layers, IntermediateSize = d_ff,
// HeadDim = d_kv, HiddenAct = the dense activation); the T5 and OPT groups
// only for their model type. Token ids that are None in transformers are -1.
type TextConfig struct {
	ModelType                                                  string // "opt", "t5" or "llama"
	VocabSize, HiddenSize, IntermediateSize, NumHiddenLayers   int
	NumAttentionHeads, NumKeyValueHeads, MaxPositionEmbeddings int
	HeadDim                                                    int
	HiddenAct                                                  string
	RMSNormEps                                                 float64 // LLaMA rms_norm_eps
	LayerNormEps                                               float64 // OPT: torch's nn.LayerNorm default 1e-5 (OPTConfig has no field)
	RopeTheta                                                  float64 // LLaMA
	RopeType                                                   string  // LLaMA: "default", "linear", "dynamic", "llama3", ...
	RopeFactor                                                 float64 // LLaMA rope scaling factor; 0 without scaling
	TieWordEmbeddings                                          bool
	BOSTokenID, EOSTokenID, PadTokenID, DecoderStartTokenID    int
	EOSTokenIDs                                                []int // all of eos_token_id when it is a list
	AttentionBias, MLPBias                                     bool  // LLaMA
	IsEncoderDecoder                                           bool  // T5

	// T5. DecoderStartTokenID defaults to the pad id (what every T5
	// checkpoint uses) when the config leaves it out.
	DModel, DKV, DFF, NumLayers, NumDecoderLayers, NumHeads   int
	RelativeAttentionNumBuckets, RelativeAttentionMaxDistance int
	FeedForwardProj                                           string  // "relu", "gated-gelu", ...
	DenseActFn                                                string  // dense_act_fn when stored (transformers 4 lets it win), else derived from FeedForwardProj ("gated-gelu" -> "gelu_new")
	IsGatedAct                                                bool    // is_gated_act when stored, else FeedForwardProj starts with "gated-"
	LayerNormEpsilon                                          float64 // T5 layer_norm_epsilon (its norm is an RMS norm)
	// ScaleDecoderOutputs: multiply the decoder output by d_model^-0.5
	// before the LM head. transformers 4 ties this to tie_word_embeddings
	// (original T5 true, T5 v1.1 / FlanT5 false); transformers 5 saves it
	// as scale_decoder_outputs.
	ScaleDecoderOutputs bool

	// OPT.
	FFNDim, WordEmbedProjDim                                  int
	DoLayerNormBefore, EnableBias, LayerNormElementwiseAffine bool
	RemoveFinalLayerNorm                                      bool // _remove_final_layer_norm
	ActivationFunction                                        string

	// Raw is text_config exactly as in the file (numbers as float64), nil
	// when the file has none.
	Raw map[string]any
}

// Limits that keep a hostile or corrupt config from describing a model that
// would overflow size arithmetic. Real models are far inside them. The
// metadata checks of the converted files (weights/convert, weights/lmconv)
// hold the same limits, so that a loader refuses what convert would.
const (
	MaxWidth     = 1 << 20
	MaxLayers    = 1 << 12
	MaxVocab     = 1 << 24
	MaxPositions = 1 << 24
	MaxImageSize = 1 << 14
	MaxQueries   = 1 << 12
)

// Load reads dir/config.json.
func Load(dir string) (*Config, error) {
	return LoadFile(filepath.Join(dir, "config.json"), nil, parse)
}

// Parse parses the contents of a config.json.
func Parse(data []byte) (*Config, error) {
	c, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("hfconfig: %w", err)
	}
	return c, nil
}

func parse(data []byte) (*Config, error) {
	m, err := decodeObject(data)
	if err != nil {
		return nil, err
	}
	r := &reader{}
	top := r.root(m)
	c := &Config{ModelType: top.str("model_type", "")}
	if r.err != nil {
		return nil, r.err
	}
	switch c.ModelType {
	case "blip-2", "instructblip":
	case "":
		return nil, fmt.Errorf("no model_type (want \"blip-2\" or \"instructblip\")")
	default:
		return nil, fmt.Errorf("unsupported model_type %q (want \"blip-2\" or \"instructblip\")", c.ModelType)
	}
	instruct := c.ModelType == "instructblip"

	c.Architectures = top.strs("architectures")
	c.NumQueryTokens = top.int("num_query_tokens", 32)
	top.checkRange("num_query_tokens", c.NumQueryTokens, 1, MaxQueries)
	if !instruct {
		c.ImageTextHiddenSize = top.int("image_text_hidden_size", 256)
		top.checkRange("image_text_hidden_size", c.ImageTextHiddenSize, 1, MaxWidth)
	} else if top.has("image_text_hidden_size") {
		c.ImageTextHiddenSize = top.int("image_text_hidden_size", 0)
		top.checkRange("image_text_hidden_size", c.ImageTextHiddenSize, 1, MaxWidth)
	}
	c.ImageTokenIndex = top.int("image_token_index", -1)
	c.VideoTokenIndex = top.int("video_token_index", -1)
	top.checkRange("image_token_index", c.ImageTokenIndex, -1, MaxVocab)
	top.checkRange("video_token_index", c.VideoTokenIndex, -1, MaxVocab)
	c.DType = top.str("dtype", top.str("torch_dtype", ""))

	vis, _ := top.sub("vision_config")
	c.Vision = parseVision(vis)
	qf, _ := top.sub("qformer_config")
	c.QFormer = parseQFormer(qf, c.Vision, instruct)
	tc, hasText := top.sub("text_config")
	if r.err != nil {
		return nil, r.err
	}
	text, err := parseText(tc)
	if err != nil {
		return nil, err
	}
	if r.err != nil {
		return nil, r.err
	}
	if hasText {
		text.Raw = plain(tc.m).(map[string]any)
	}
	c.Text = *text
	c.UseDecoderOnlyLanguageModel = !text.IsEncoderDecoder
	return c, nil
}

func parseVision(o obj) VisionConfig {
	v := VisionConfig{
		HiddenSize:        o.int("hidden_size", 1408),
		IntermediateSize:  o.int("intermediate_size", 6144),
		NumHiddenLayers:   o.int("num_hidden_layers", 39),
		NumAttentionHeads: o.int("num_attention_heads", 16),
		ImageSize:         squareSize(o, "image_size", 224),
		PatchSize:         squareSize(o, "patch_size", 14),
		NumChannels:       o.int("num_channels", 3),
		HiddenAct:         o.str("hidden_act", "gelu"),
		LayerNormEps:      o.float("layer_norm_eps", 1e-6),
		QKVBias:           o.bool("qkv_bias", true),
	}
	checkAttention(o, v.HiddenSize, v.NumAttentionHeads, true)
	o.checkRange("intermediate_size", v.IntermediateSize, 1, MaxWidth)
	o.checkRange("num_hidden_layers", v.NumHiddenLayers, 1, MaxLayers)
	o.checkRange("image_size", v.ImageSize, 1, MaxImageSize)
	o.checkRange("patch_size", v.PatchSize, 1, v.ImageSize)
	o.checkRange("num_channels", v.NumChannels, 1, 4)
	o.checkPositive("layer_norm_eps", v.LayerNormEps)
	return v
}

// squareSize reads image_size / patch_size, which transformers 5 also allows
// as [height, width]; the BLIP-2 ViT only handles squares.
func squareSize(o obj, key string, def int) int {
	v, ok := o.get(key)
	if !ok {
		return def
	}
	if _, isList := v.([]any); isList {
		hw, _ := o.ints(key)
		if len(hw) != 2 || hw[0] != hw[1] {
			o.fail(key, "want a number or a square [height, width], got %v", hw)
			return def
		}
		return hw[0]
	}
	return o.int(key, def)
}

func parseQFormer(o obj, vision VisionConfig, instruct bool) QFormerConfig {
	q := QFormerConfig{
		HiddenSize:              o.int("hidden_size", 768),
		IntermediateSize:        o.int("intermediate_size", 3072),
		NumHiddenLayers:         o.int("num_hidden_layers", 12),
		NumAttentionHeads:       o.int("num_attention_heads", 12),
		CrossAttentionFrequency: o.int("cross_attention_frequency", 2),
		VocabSize:               o.int("vocab_size", 30522),
		MaxPositionEmbeddings:   o.int("max_position_embeddings", 512),
		PadTokenID:              o.int("pad_token_id", 0),
		LayerNormEps:            o.float("layer_norm_eps", 1e-12),
		HiddenAct:               o.str("hidden_act", "gelu"),
		PositionEmbeddingType:   o.str("position_embedding_type", "absolute"),
		UseQFormerTextInput:     o.bool("use_qformer_text_input", false) || instruct,
	}
	// Read (and type-check) the stored value, but like Blip2Config and
	// InstructBlipConfig take the vision width: the stored one may be stale.
	o.int("encoder_hidden_size", 1408)
	q.EncoderHiddenSize = vision.HiddenSize
	checkAttention(o, q.HiddenSize, q.NumAttentionHeads, true)
	o.checkRange("intermediate_size", q.IntermediateSize, 1, MaxWidth)
	o.checkRange("num_hidden_layers", q.NumHiddenLayers, 1, MaxLayers)
	o.checkRange("cross_attention_frequency", q.CrossAttentionFrequency, 1, MaxLayers)
	o.checkRange("vocab_size", q.VocabSize, 1, MaxVocab)
	o.checkRange("max_position_embeddings", q.MaxPositionEmbeddings, 1, MaxPositions)
	o.checkPositive("layer_norm_eps", q.LayerNormEps)
	return q
}

// checkAttention checks hidden_size / num_attention_heads; when split is
// true the hidden size must divide evenly into heads.
func checkAttention(o obj, hidden, heads int, split bool) {
	o.checkRange("hidden_size", hidden, 1, MaxWidth)
	o.checkRange("num_attention_heads", heads, 1, MaxWidth)
	if o.r.err == nil && split && hidden%heads != 0 {
		o.fail("hidden_size", "%d is not a multiple of num_attention_heads %d", hidden, heads)
	}
}
