package hfconfig

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const golden = "../../testdata/golden"

func goldenDir(c string) string { return filepath.Join(golden, c, "hf") }

// Vision and Q-Former shared by all the golden cases: vision_cfg(176, 2, 2,
// 264) and qformer_cfg(128, 2, 2, 256) in gen.py, as written in each
// config.json.
var goldenVision = VisionConfig{
	HiddenSize: 176, IntermediateSize: 264, NumHiddenLayers: 2, NumAttentionHeads: 2,
	ImageSize: 224, PatchSize: 14, NumChannels: 3, HiddenAct: "gelu", LayerNormEps: 1e-6, QKVBias: true,
}

func goldenQFormer(vocab int, textInput bool) QFormerConfig {
	return QFormerConfig{
		HiddenSize: 128, IntermediateSize: 256, NumHiddenLayers: 2, NumAttentionHeads: 2,
		CrossAttentionFrequency: 2, EncoderHiddenSize: 176, VocabSize: vocab, MaxPositionEmbeddings: 512,
		PadTokenID: 0, LayerNormEps: 1e-12, HiddenAct: "gelu", PositionEmbeddingType: "absolute",
		UseQFormerTextInput: textInput,
	}
}

// The LLaMA text_config of blip2-llama and instructblip-llama.
var goldenLlama = TextConfig{
	ModelType: "llama", VocabSize: 2000, HiddenSize: 64, IntermediateSize: 160, NumHiddenLayers: 2,
	NumAttentionHeads: 4, NumKeyValueHeads: 2, MaxPositionEmbeddings: 512, HeadDim: 16, HiddenAct: "silu",
	RMSNormEps: 1e-6, RopeTheta: 10000, RopeType: "default", TieWordEmbeddings: false,
	BOSTokenID: 1, EOSTokenID: 2, EOSTokenIDs: []int{2}, PadTokenID: 0, DecoderStartTokenID: -1,
}

func TestGoldenConfigs(t *testing.T) {
	tests := []struct {
		dir  string
		want Config
	}{
		{"blip2-llama", Config{
			ModelType: "blip-2", Architectures: []string{"Blip2ForConditionalGeneration"}, NumQueryTokens: 8,
			Vision: goldenVision, QFormer: goldenQFormer(30522, false), Text: goldenLlama,
			ImageTextHiddenSize: 256, ImageTokenIndex: -1, VideoTokenIndex: -1, UseDecoderOnlyLanguageModel: true, DType: "float32",
		}},
		{"blip2-t5", Config{
			ModelType: "blip-2", Architectures: []string{"Blip2ForConditionalGeneration"}, NumQueryTokens: 8,
			Vision: goldenVision, QFormer: goldenQFormer(30522, false),
			Text: TextConfig{
				ModelType: "t5", VocabSize: 1100, HiddenSize: 64, IntermediateSize: 160, NumHiddenLayers: 2,
				NumAttentionHeads: 4, NumKeyValueHeads: 4, HeadDim: 16, HiddenAct: "gelu_new",
				BOSTokenID: -1, EOSTokenID: 1, EOSTokenIDs: []int{1}, PadTokenID: 0, DecoderStartTokenID: 0,
				IsEncoderDecoder: true, DModel: 64, DKV: 16, DFF: 160, NumLayers: 2, NumDecoderLayers: 2, NumHeads: 4,
				RelativeAttentionNumBuckets: 32, RelativeAttentionMaxDistance: 128, FeedForwardProj: "gated-gelu",
				DenseActFn: "gelu_new", IsGatedAct: true, LayerNormEpsilon: 1e-6,
				TieWordEmbeddings: false, ScaleDecoderOutputs: false,
			},
			ImageTextHiddenSize: 256, ImageTokenIndex: -1, VideoTokenIndex: -1, UseDecoderOnlyLanguageModel: false, DType: "float32",
		}},
		{"blip2-opt", Config{
			ModelType: "blip-2", Architectures: []string{"Blip2ForConditionalGeneration"}, NumQueryTokens: 8,
			Vision: goldenVision, QFormer: goldenQFormer(30522, false),
			Text: TextConfig{
				ModelType: "opt", VocabSize: 1000, HiddenSize: 64, IntermediateSize: 160, NumHiddenLayers: 2,
				NumAttentionHeads: 4, NumKeyValueHeads: 4, MaxPositionEmbeddings: 512, HeadDim: 16, HiddenAct: "relu",
				LayerNormEps: 1e-5, TieWordEmbeddings: true, BOSTokenID: 2, EOSTokenID: 2, EOSTokenIDs: []int{2},
				PadTokenID: 1, DecoderStartTokenID: -1, FFNDim: 160, WordEmbedProjDim: 64, DoLayerNormBefore: true,
				EnableBias: true, LayerNormElementwiseAffine: true, ActivationFunction: "relu",
			},
			ImageTextHiddenSize: 256, ImageTokenIndex: -1, VideoTokenIndex: -1, UseDecoderOnlyLanguageModel: true, DType: "float32",
		}},
		{"instructblip-llama", Config{
			ModelType: "instructblip", Architectures: []string{"InstructBlipForConditionalGeneration"}, NumQueryTokens: 8,
			// The file says use_qformer_text_input false, but InstructBLIP's Q-Former always reads the instruction.
			Vision: goldenVision, QFormer: goldenQFormer(1000, true), Text: goldenLlama,
			ImageTextHiddenSize: 0, ImageTokenIndex: -1, VideoTokenIndex: -1, UseDecoderOnlyLanguageModel: true, DType: "float32",
		}},
		{"blip2-itm", Config{
			ModelType: "blip-2", Architectures: []string{"Blip2ForImageTextRetrieval"}, NumQueryTokens: 8,
			Vision: goldenVision, QFormer: goldenQFormer(1001, true),
			Text: TextConfig{
				ModelType: "opt", VocabSize: 50272, HiddenSize: 768, IntermediateSize: 3072, NumHiddenLayers: 12,
				NumAttentionHeads: 12, NumKeyValueHeads: 12, MaxPositionEmbeddings: 2048, HeadDim: 64, HiddenAct: "relu",
				LayerNormEps: 1e-5, TieWordEmbeddings: true, BOSTokenID: 2, EOSTokenID: 2, EOSTokenIDs: []int{2},
				PadTokenID: 1, DecoderStartTokenID: -1, FFNDim: 3072, WordEmbedProjDim: 768, DoLayerNormBefore: true,
				EnableBias: true, LayerNormElementwiseAffine: true, ActivationFunction: "relu",
			},
			ImageTextHiddenSize: 64, ImageTokenIndex: -1, VideoTokenIndex: -1, UseDecoderOnlyLanguageModel: true, DType: "float32",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			c, err := Load(goldenDir(tc.dir))
			if err != nil {
				t.Fatal(err)
			}
			// Raw must be text_config exactly as encoding/json reads it.
			var file struct {
				TextConfig map[string]any `json:"text_config"`
			}
			data, err := os.ReadFile(filepath.Join(goldenDir(tc.dir), "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &file); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Text.Raw, file.TextConfig) {
				t.Errorf("Raw = %v\nwant %v", c.Text.Raw, file.TextConfig)
			}
			if c.Text.Raw["model_type"] != tc.want.Text.ModelType {
				t.Errorf("Raw model_type = %v", c.Text.Raw["model_type"])
			}
			c.Text.Raw = nil
			diffConfig(t, *c, tc.want)
			if n := c.Vision.NumPatches(); n != 256 {
				t.Errorf("NumPatches = %d, want 256", n)
			}
			if d := c.Vision.HeadDim(); d != 88 {
				t.Errorf("vision HeadDim = %d, want 88", d)
			}
		})
	}
}

// diffConfig reports every differing field by name rather than one big dump.
func diffConfig(t *testing.T, got, want Config) {
	t.Helper()
	diffStruct(t, "Config", reflect.ValueOf(got), reflect.ValueOf(want))
}

func diffStruct(t *testing.T, path string, got, want reflect.Value) {
	t.Helper()
	if got.Kind() != reflect.Struct {
		if !reflect.DeepEqual(got.Interface(), want.Interface()) {
			t.Errorf("%s = %#v, want %#v", path, got.Interface(), want.Interface())
		}
		return
	}
	for i := 0; i < got.NumField(); i++ {
		diffStruct(t, path+"."+got.Type().Field(i).Name, got.Field(i), want.Field(i))
	}
}

// TestMinimalDefaults: absent fields take transformers' defaults, i.e. the
// BLIP-2 OPT-2.7b vision encoder and Q-Former, and OPTConfig() as LM.
func TestMinimalDefaults(t *testing.T) {
	wantVision := VisionConfig{
		HiddenSize: 1408, IntermediateSize: 6144, NumHiddenLayers: 39, NumAttentionHeads: 16,
		ImageSize: 224, PatchSize: 14, NumChannels: 3, HiddenAct: "gelu", LayerNormEps: 1e-6, QKVBias: true,
	}
	wantQFormer := QFormerConfig{
		HiddenSize: 768, IntermediateSize: 3072, NumHiddenLayers: 12, NumAttentionHeads: 12,
		CrossAttentionFrequency: 2, EncoderHiddenSize: 1408, VocabSize: 30522, MaxPositionEmbeddings: 512,
		PadTokenID: 0, LayerNormEps: 1e-12, HiddenAct: "gelu", PositionEmbeddingType: "absolute",
	}
	wantOPT := TextConfig{
		ModelType: "opt", VocabSize: 50272, HiddenSize: 768, IntermediateSize: 3072, NumHiddenLayers: 12,
		NumAttentionHeads: 12, NumKeyValueHeads: 12, MaxPositionEmbeddings: 2048, HeadDim: 64, HiddenAct: "relu",
		LayerNormEps: 1e-5, TieWordEmbeddings: true, BOSTokenID: 2, EOSTokenID: 2, EOSTokenIDs: []int{2},
		PadTokenID: 1, DecoderStartTokenID: -1, FFNDim: 3072, WordEmbedProjDim: 768, DoLayerNormBefore: true,
		EnableBias: true, LayerNormElementwiseAffine: true, ActivationFunction: "relu",
	}
	blip2 := Config{
		ModelType: "blip-2", NumQueryTokens: 32, Vision: wantVision, QFormer: wantQFormer, Text: wantOPT,
		ImageTextHiddenSize: 256, ImageTokenIndex: -1, VideoTokenIndex: -1, UseDecoderOnlyLanguageModel: true,
	}
	instruct := blip2
	instruct.ModelType = "instructblip"
	instruct.ImageTextHiddenSize = 0
	instruct.QFormer.UseQFormerTextInput = true

	tests := []struct {
		name, json string
		want       Config
	}{
		{"blip-2", `{"model_type":"blip-2"}`, blip2},
		{"blip-2 empty subconfigs", `{"model_type":"blip-2","vision_config":{},"qformer_config":{},"text_config":{}}`, blip2},
		{"blip-2 null subconfigs", `{"model_type":"blip-2","vision_config":null,"qformer_config":null,"text_config":null}`, blip2},
		{"instructblip", `{"model_type":"instructblip"}`, instruct},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(tc.json, `"text_config":{}`) {
				if c.Text.Raw == nil || len(c.Text.Raw) != 0 {
					t.Errorf("Raw = %#v, want empty map", c.Text.Raw)
				}
			} else if c.Text.Raw != nil {
				t.Errorf("Raw = %#v, want nil", c.Text.Raw)
			}
			c.Text.Raw = nil
			diffConfig(t, *c, tc.want)
		})
	}
}

// TestTextDefaults checks each language model's class defaults from a
// text_config holding only model_type.
func TestTextDefaults(t *testing.T) {
	tests := []struct {
		name, text string
		want       TextConfig
	}{
		{"llama", `{"model_type":"llama"}`, TextConfig{
			ModelType: "llama", VocabSize: 32000, HiddenSize: 4096, IntermediateSize: 11008, NumHiddenLayers: 32,
			NumAttentionHeads: 32, NumKeyValueHeads: 32, MaxPositionEmbeddings: 2048, HeadDim: 128, HiddenAct: "silu",
			RMSNormEps: 1e-6, RopeTheta: 10000, RopeType: "default", BOSTokenID: 1, EOSTokenID: 2,
			EOSTokenIDs: []int{2}, PadTokenID: -1, DecoderStartTokenID: -1,
		}},
		{"t5", `{"model_type":"t5"}`, TextConfig{
			ModelType: "t5", VocabSize: 32128, HiddenSize: 512, IntermediateSize: 2048, NumHiddenLayers: 6,
			NumAttentionHeads: 8, NumKeyValueHeads: 8, HeadDim: 64, HiddenAct: "relu", TieWordEmbeddings: true,
			BOSTokenID: -1, EOSTokenID: 1, EOSTokenIDs: []int{1}, PadTokenID: 0, DecoderStartTokenID: 0,
			IsEncoderDecoder: true, DModel: 512, DKV: 64, DFF: 2048, NumLayers: 6, NumDecoderLayers: 6, NumHeads: 8,
			RelativeAttentionNumBuckets: 32, RelativeAttentionMaxDistance: 128, FeedForwardProj: "relu",
			DenseActFn: "relu", LayerNormEpsilon: 1e-6, ScaleDecoderOutputs: true,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(`{"model_type":"blip-2","text_config":` + tc.text + `}`))
			if err != nil {
				t.Fatal(err)
			}
			c.Text.Raw = nil
			diffStruct(t, "Text", reflect.ValueOf(c.Text), reflect.ValueOf(tc.want))
			if c.UseDecoderOnlyLanguageModel != (tc.name != "t5") {
				t.Errorf("UseDecoderOnlyLanguageModel = %v", c.UseDecoderOnlyLanguageModel)
			}
		})
	}
}

// edit loads a golden config.json as a map, applies f and re-encodes it.
func edit(t *testing.T, dir string, f func(m map[string]any)) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(goldenDir(dir), "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sub(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }

// TestVariants covers the transformers-5 layout and fields whose defaults
// depend on other fields.
func TestVariants(t *testing.T) {
	tests := []struct {
		name  string
		dir   string
		edit  func(m map[string]any)
		check func(t *testing.T, c *Config)
	}{
		{"transformers5 rope_parameters", "blip2-llama", func(m map[string]any) {
			tc := sub(m, "text_config")
			delete(tc, "rope_theta")
			tc["rope_parameters"] = map[string]any{"rope_theta": 500000.0, "rope_type": "default"}
			m["dtype"] = m["torch_dtype"]
			delete(m, "torch_dtype")
		}, func(t *testing.T, c *Config) {
			if c.Text.RopeTheta != 500000 || c.Text.RopeType != "default" || c.DType != "float32" {
				t.Errorf("RopeTheta %g RopeType %q DType %q", c.Text.RopeTheta, c.Text.RopeType, c.DType)
			}
		}},
		{"rope_theta absent", "blip2-llama", func(m map[string]any) {
			delete(sub(m, "text_config"), "rope_theta")
		}, func(t *testing.T, c *Config) {
			if c.Text.RopeTheta != 10000 {
				t.Errorf("RopeTheta %g, want default 10000", c.Text.RopeTheta)
			}
		}},
		{"hub rope_scaling with type", "blip2-llama", func(m map[string]any) {
			sub(m, "text_config")["rope_scaling"] = map[string]any{"type": "linear", "factor": 2.0}
		}, func(t *testing.T, c *Config) {
			if c.Text.RopeType != "linear" || c.Text.RopeFactor != 2 || c.Text.RopeTheta != 10000 {
				t.Errorf("RopeType %q RopeFactor %g RopeTheta %g", c.Text.RopeType, c.Text.RopeFactor, c.Text.RopeTheta)
			}
		}},
		{"llama kv heads default to heads", "blip2-llama", func(m map[string]any) {
			delete(sub(m, "text_config"), "num_key_value_heads")
			delete(sub(m, "text_config"), "head_dim")
		}, func(t *testing.T, c *Config) {
			if c.Text.NumKeyValueHeads != 4 || c.Text.HeadDim != 16 {
				t.Errorf("NumKeyValueHeads %d HeadDim %d, want 4 16", c.Text.NumKeyValueHeads, c.Text.HeadDim)
			}
		}},
		{"llama eos list", "blip2-llama", func(m map[string]any) {
			sub(m, "text_config")["eos_token_id"] = []any{2, 7}
			sub(m, "text_config")["pad_token_id"] = nil
		}, func(t *testing.T, c *Config) {
			if c.Text.EOSTokenID != 2 || !reflect.DeepEqual(c.Text.EOSTokenIDs, []int{2, 7}) || c.Text.PadTokenID != -1 {
				t.Errorf("EOS %d %v pad %d", c.Text.EOSTokenID, c.Text.EOSTokenIDs, c.Text.PadTokenID)
			}
		}},
		{"opt word_embed_proj_dim defaults to hidden", "blip2-opt", func(m map[string]any) {
			tc := sub(m, "text_config")
			tc["hidden_size"] = 96
			delete(tc, "word_embed_proj_dim")
			delete(tc, "do_layer_norm_before")
			delete(tc, "enable_bias")
		}, func(t *testing.T, c *Config) {
			if c.Text.WordEmbedProjDim != 96 || !c.Text.DoLayerNormBefore || !c.Text.EnableBias || c.Text.HeadDim != 24 {
				t.Errorf("proj %d before %v bias %v headdim %d", c.Text.WordEmbedProjDim, c.Text.DoLayerNormBefore, c.Text.EnableBias, c.Text.HeadDim)
			}
		}},
		{"opt post-norm", "blip2-opt", func(m map[string]any) {
			sub(m, "text_config")["do_layer_norm_before"] = false
			sub(m, "text_config")["word_embed_proj_dim"] = 32
		}, func(t *testing.T, c *Config) {
			if c.Text.DoLayerNormBefore || c.Text.WordEmbedProjDim != 32 {
				t.Errorf("before %v proj %d", c.Text.DoLayerNormBefore, c.Text.WordEmbedProjDim)
			}
		}},
		{"t5 relu tied (original T5)", "blip2-t5", func(m map[string]any) {
			tc := sub(m, "text_config")
			tc["feed_forward_proj"] = "relu"
			delete(tc, "dense_act_fn") // as an original T5 config: derived
			delete(tc, "is_gated_act")
			delete(tc, "tie_word_embeddings")
			delete(tc, "scale_decoder_outputs")
			delete(tc, "num_decoder_layers")
			delete(tc, "decoder_start_token_id")
			tc["num_layers"] = 3
		}, func(t *testing.T, c *Config) {
			x := c.Text
			if x.IsGatedAct || x.DenseActFn != "relu" || !x.TieWordEmbeddings || !x.ScaleDecoderOutputs ||
				x.NumDecoderLayers != 3 || x.DecoderStartTokenID != 0 {
				t.Errorf("gated %v act %q tie %v scale %v declayers %d start %d", x.IsGatedAct, x.DenseActFn,
					x.TieWordEmbeddings, x.ScaleDecoderOutputs, x.NumDecoderLayers, x.DecoderStartTokenID)
			}
		}},
		{"t5 hub layout (no scale_decoder_outputs, untied)", "blip2-t5", func(m map[string]any) {
			delete(sub(m, "text_config"), "scale_decoder_outputs")
		}, func(t *testing.T, c *Config) {
			if c.Text.TieWordEmbeddings || c.Text.ScaleDecoderOutputs {
				t.Errorf("tie %v scale %v, want false false", c.Text.TieWordEmbeddings, c.Text.ScaleDecoderOutputs)
			}
		}},
		{"t5 gated-silu", "blip2-t5", func(m map[string]any) {
			sub(m, "text_config")["feed_forward_proj"] = "gated-silu"
			delete(sub(m, "text_config"), "dense_act_fn")
			delete(sub(m, "text_config"), "is_gated_act")
		}, func(t *testing.T, c *Config) {
			if !c.Text.IsGatedAct || c.Text.DenseActFn != "silu" {
				t.Errorf("gated %v act %q", c.Text.IsGatedAct, c.Text.DenseActFn)
			}
		}},
		{"t5 gated-gelu derives gelu_new", "blip2-t5", func(m map[string]any) {
			delete(sub(m, "text_config"), "dense_act_fn")
			delete(sub(m, "text_config"), "is_gated_act")
		}, func(t *testing.T, c *Config) {
			if !c.Text.IsGatedAct || c.Text.DenseActFn != "gelu_new" {
				t.Errorf("gated %v act %q, want true gelu_new", c.Text.IsGatedAct, c.Text.DenseActFn)
			}
		}},
		// BLIP-2 FlanT5's config: the stored dense_act_fn wins over the
		// one feed_forward_proj implies, as in transformers 4.
		{"t5 stored dense_act_fn gelu", "blip2-t5", func(m map[string]any) {
			sub(m, "text_config")["dense_act_fn"] = "gelu"
			delete(sub(m, "text_config"), "is_gated_act")
		}, func(t *testing.T, c *Config) {
			if !c.Text.IsGatedAct || c.Text.DenseActFn != "gelu" || c.Text.HiddenAct != "gelu" {
				t.Errorf("gated %v act %q hidden %q, want true gelu gelu", c.Text.IsGatedAct, c.Text.DenseActFn, c.Text.HiddenAct)
			}
		}},
		{"t5 attribute_map names", "blip2-t5", func(m map[string]any) {
			tc := sub(m, "text_config")
			for _, k := range []string{"d_model", "num_heads", "num_layers", "d_kv"} {
				delete(tc, k)
			}
			tc["hidden_size"], tc["num_attention_heads"], tc["num_hidden_layers"], tc["head_dim"] = 32, 2, 3, 8
		}, func(t *testing.T, c *Config) {
			x := c.Text
			if x.DModel != 32 || x.NumHeads != 2 || x.NumLayers != 3 || x.DKV != 8 || x.NumDecoderLayers != 2 {
				t.Errorf("d_model %d heads %d layers %d d_kv %d dec %d", x.DModel, x.NumHeads, x.NumLayers, x.DKV, x.NumDecoderLayers)
			}
		}},
		{"encoder_hidden_size follows vision", "blip2-opt", func(m map[string]any) {
			sub(m, "qformer_config")["encoder_hidden_size"] = 999
			sub(m, "vision_config")["hidden_size"] = 88
			sub(m, "vision_config")["num_attention_heads"] = 1
		}, func(t *testing.T, c *Config) {
			if c.QFormer.EncoderHiddenSize != 88 {
				t.Errorf("EncoderHiddenSize %d, want 88", c.QFormer.EncoderHiddenSize)
			}
		}},
		{"image_size as list, patch 16", "blip2-opt", func(m map[string]any) {
			sub(m, "vision_config")["image_size"] = []any{224, 224}
			sub(m, "vision_config")["patch_size"] = 16
			sub(m, "qformer_config")["cross_attention_frequency"] = 1
		}, func(t *testing.T, c *Config) {
			if c.Vision.ImageSize != 224 || c.Vision.PatchSize != 16 || c.Vision.NumPatches() != 196 || c.QFormer.CrossAttentionFrequency != 1 {
				t.Errorf("image %d patch %d patches %d freq %d", c.Vision.ImageSize, c.Vision.PatchSize, c.Vision.NumPatches(), c.QFormer.CrossAttentionFrequency)
			}
		}},
		{"integral float accepted", "blip2-opt", func(m map[string]any) {
			sub(m, "vision_config")["num_hidden_layers"] = 3.0
		}, func(t *testing.T, c *Config) {
			if c.Vision.NumHiddenLayers != 3 {
				t.Errorf("NumHiddenLayers %d", c.Vision.NumHiddenLayers)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := edit(t, tc.dir, tc.edit)
			c, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestErrors(t *testing.T) {
	opt, err := os.ReadFile(filepath.Join(goldenDir("blip2-opt"), "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		want string // substring of the error
	}{
		{"empty", nil, "invalid JSON"},
		{"truncated", opt[:len(opt)/2], "invalid JSON"},
		{"not an object", []byte(`[1,2]`), "want an object"},
		{"trailing data", []byte(`{"model_type":"blip-2"} {}`), "trailing data"},
		{"no model_type", []byte(`{}`), "no model_type"},
		{"unknown model_type", []byte(`{"model_type":"llava"}`), `"llava"`},
		{"model_type not string", []byte(`{"model_type":3}`), "model_type: want a string"},
		{"unknown text model", []byte(`{"model_type":"blip-2","text_config":{"model_type":"mistral"}}`), `text_config.model_type: unsupported language model "mistral"`},
		{"vision not object", []byte(`{"model_type":"blip-2","vision_config":7}`), "vision_config: want an object"},
		{"string size", []byte(`{"model_type":"blip-2","vision_config":{"hidden_size":"big"}}`), `vision_config.hidden_size: want an integer, got string "big"`},
		{"fractional size", []byte(`{"model_type":"blip-2","qformer_config":{"hidden_size":64.5}}`), "qformer_config.hidden_size: want an integer"},
		{"zero layers", []byte(`{"model_type":"blip-2","vision_config":{"num_hidden_layers":0}}`), "vision_config.num_hidden_layers: 0 must be positive"},
		{"negative queries", []byte(`{"model_type":"blip-2","num_query_tokens":-1}`), "num_query_tokens: -1 must be positive"},
		{"huge size", []byte(`{"model_type":"blip-2","vision_config":{"intermediate_size":1e300}}`), "vision_config.intermediate_size: want an integer"},
		{"heads do not divide", []byte(`{"model_type":"blip-2","vision_config":{"hidden_size":100,"num_attention_heads":3}}`), "not a multiple of num_attention_heads 3"},
		{"kv heads do not divide", []byte(`{"model_type":"blip-2","text_config":{"model_type":"llama","num_key_value_heads":5}}`), "text_config.num_key_value_heads: 5 does not divide"},
		{"patch larger than image", []byte(`{"model_type":"blip-2","vision_config":{"patch_size":300}}`), "vision_config.patch_size: 300 out of range"},
		{"non-square image", []byte(`{"model_type":"blip-2","vision_config":{"image_size":[224,256]}}`), "square"},
		{"bool as int", []byte(`{"model_type":"blip-2","vision_config":{"qkv_bias":1}}`), "vision_config.qkv_bias: want true or false"},
		{"zero eps", []byte(`{"model_type":"blip-2","vision_config":{"layer_norm_eps":0}}`), "layer_norm_eps: 0 must be positive"},
		{"bad feed_forward_proj", []byte(`{"model_type":"blip-2","text_config":{"model_type":"t5","feed_forward_proj":"fancy-gelu"}}`), "text_config.feed_forward_proj"},
		{"bad eos", []byte(`{"model_type":"blip-2","text_config":{"model_type":"llama","eos_token_id":[2,"x"]}}`), "text_config.eos_token_id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(tc.data)
			if err == nil {
				t.Fatalf("no error, got %+v", c)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "hfconfig: ") || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line starting with hfconfig:", err)
			}
		})
	}
}

func TestLoadErrorsNameFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("missing file: %v", err)
	}
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte(`{"model_type":"blip-2",`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	if err == nil || !strings.HasPrefix(err.Error(), path+": invalid JSON") {
		t.Errorf("bad file: %v", err)
	}
}

// FuzzParse: any input gives a config or an error, never a panic; an
// accepted config is internally consistent.
func FuzzParse(f *testing.F) {
	for _, c := range []string{"blip2-llama", "blip2-t5", "blip2-opt", "instructblip-llama", "blip2-itm"} {
		for _, name := range []string{"config.json", "preprocessor_config.json", "tokenizer_config.json", "generation_config.json"} {
			if data, err := os.ReadFile(filepath.Join(goldenDir(c), name)); err == nil {
				f.Add(data)
			}
		}
	}
	f.Add([]byte(`{"model_type":"blip-2"}`))
	f.Add([]byte(`{"num_query_tokens": 32, "processor_class": "InstructBlipVideoProcessor"}`))
	f.Add([]byte(`{"model_type":"instructblip","text_config":{"model_type":"t5","feed_forward_proj":"gated-gelu"}}`))
	f.Add([]byte(`{"model_type":"blip-2","text_config":{"model_type":"llama","rope_parameters":{"rope_theta":5e5}}}`))
	f.Add([]byte(`{"size":{"shortest_edge":224},"image_mean":0.5,"added_tokens_decoder":{"0":{"content":"<unk>"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if c, err := Parse(data); err == nil {
			v, q, x := c.Vision, c.QFormer, c.Text
			if v.HiddenSize <= 0 || v.HiddenSize%v.NumAttentionHeads != 0 || v.NumPatches() <= 0 ||
				q.HiddenSize%q.NumAttentionHeads != 0 || q.EncoderHiddenSize != v.HiddenSize ||
				q.CrossAttentionFrequency <= 0 || c.NumQueryTokens <= 0 {
				t.Fatalf("inconsistent vision/qformer: %+v %+v", v, q)
			}
			if x.VocabSize <= 0 || x.HiddenSize <= 0 || x.NumHiddenLayers <= 0 || x.HeadDim <= 0 ||
				x.NumKeyValueHeads <= 0 || x.NumAttentionHeads%x.NumKeyValueHeads != 0 {
				t.Fatalf("inconsistent text config: %+v", x)
			}
		} else if strings.Contains(err.Error(), "\n") {
			t.Fatalf("multi-line error %q", err)
		}
		if p, err := ParsePreprocessor(data, 224); err == nil {
			if p.Height <= 0 || p.Width <= 0 || p.Std[0] <= 0 || p.Std[1] <= 0 || p.Std[2] <= 0 {
				t.Fatalf("bad preprocessor %+v", p)
			}
		}
		ParseTokenizerConfig(data)
		ParseGenerationConfig(data)
		if p, err := ParseProcessor(data); err == nil && (p.NumQueryTokens < 0 || p.NumQueryTokens > MaxQueries) {
			t.Fatalf("bad processor config %+v", p)
		}
	})
}
