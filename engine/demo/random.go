package demo

import (
	"context"
	_ "embed"
	"encoding/json"
	"path/filepath"

	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/synth"
)

// RandomLabel is what the app shows wherever the random-weight model is in
// use.
const RandomLabel = "demo model: random weights, answers are meaningless"

// RandomDir is where the random-weight model lives in the data folder.
func RandomDir(dataDir string) string { return filepath.Join(dataDir, "demo-random") }

// ReadyRandom is Ready for the random-weight model.
func ReadyRandom(dir string) bool { return ready(dir, RandomLabel) }

// EnsureRandom is Ensure for the random-weight model: a tiny BLIP-2 of the
// same kind as the trained one, with every part a real model has (257 ViT
// tokens, 32 queries) and random weights, built in about a second. Its
// answers are meaningless and run on until MaxTokens, which is what speed
// and interface tests of long answers need.
func EnsureRandom(ctx context.Context, dataDir string) (string, error) {
	return ensure(ctx, RandomDir(dataDir), RandomLabel, BuildRandom)
}

// tokenizer.model is the project's own small SentencePiece BPE model (2000
// pieces, byte fallback; testdata/golden/tokenizers/llama_spm.model).
//
//go:embed tokenizer.model
var tokenizerModel []byte

// Shapes of the demo model: small enough to build in about a second and to
// answer at hundreds of tokens per second, but with every part a real
// model has (patch 14 at 224 px gives the ViT its 257 tokens).
const (
	visionHidden = 96
	visionInter  = 192
	visionLayers = 2
	visionHeads  = 2
	imageSize    = 224
	patchSize    = 14
	numQueries   = 32
	qfHidden     = 64
	qfInter      = 128
	qfLayers     = 2
	qfHeads      = 2
	lmHidden     = 64
	lmInter      = 160
	lmLayers     = 2
	lmHeads      = 4
	lmKVHeads    = 2
	lmVocab      = 2000
	lmMaxPos     = 2048
	seed         = 20240521
)

// BuildRandom writes a complete random-weight model folder into dir (which
// must exist).
func BuildRandom(ctx context.Context, dir string) error {
	m, err := randomModel()
	if err != nil {
		return err
	}
	// f16 everywhere: no quantizer run (that needs llama.cpp), half the size.
	if _, err := m.Write(ctx, dir, convert.Options{VisionType: "f16", LLMType: "f16"}); err != nil {
		return err
	}
	return writeSamples(dir)
}

// randomModel is the random-weight model: the checkpoint it stands for (the layout of
// Salesforce/blip2-* on the hub, with the project's SentencePiece
// tokenizer) and its seed.
func randomModel() (*synth.Model, error) {
	files := map[string]any{
		"config.json":              config(),
		"preprocessor_config.json": preprocessor(),
		"tokenizer_config.json": map[string]any{
			"add_bos_token": true, "add_eos_token": false, "bos_token": "<s>", "eos_token": "</s>",
			"unk_token": "<unk>", "legacy": true, "tokenizer_class": "LlamaTokenizer",
		},
	}
	m := &synth.Model{Files: map[string][]byte{"tokenizer.model": tokenizerModel}, Name: "demo", Seed: seed}
	for name, v := range files {
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return nil, err
		}
		if name == "config.json" {
			m.Config = data
		} else {
			m.Files[name] = data
		}
	}
	return m, nil
}

func config() map[string]any {
	return map[string]any{
		"architectures":          []string{"Blip2ForConditionalGeneration"},
		"model_type":             "blip-2",
		"num_query_tokens":       numQueries,
		"image_text_hidden_size": 256,
		"initializer_factor":     1.0,
		"initializer_range":      0.02,
		"torch_dtype":            "float32",
		"vision_config": map[string]any{
			"model_type": "blip_2_vision_model", "hidden_act": "gelu",
			"hidden_size": visionHidden, "intermediate_size": visionInter,
			"num_hidden_layers": visionLayers, "num_attention_heads": visionHeads,
			"image_size": imageSize, "patch_size": patchSize, "layer_norm_eps": 1e-6, "qkv_bias": true,
		},
		"qformer_config": map[string]any{
			"model_type": "blip_2_qformer", "hidden_act": "gelu",
			"hidden_size": qfHidden, "intermediate_size": qfInter,
			"num_hidden_layers": qfLayers, "num_attention_heads": qfHeads,
			"cross_attention_frequency": 2, "encoder_hidden_size": visionHidden,
			"layer_norm_eps": 1e-12, "max_position_embeddings": 512, "pad_token_id": 0,
			"vocab_size": 30522, "use_qformer_text_input": false,
		},
		"text_config": map[string]any{
			"model_type": "llama", "hidden_act": "silu",
			"hidden_size": lmHidden, "intermediate_size": lmInter,
			"num_hidden_layers": lmLayers, "num_attention_heads": lmHeads, "num_key_value_heads": lmKVHeads,
			"head_dim": lmHidden / lmHeads, "max_position_embeddings": lmMaxPos, "vocab_size": lmVocab,
			"rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": false,
			"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
			"attention_bias": false, "mlp_bias": false,
		},
		"use_decoder_only_language_model": true,
	}
}

func preprocessor() map[string]any {
	return map[string]any{
		"do_convert_rgb": true, "do_normalize": true, "do_rescale": true, "do_resize": true,
		"image_mean":           []float64{0.48145466, 0.4578275, 0.40821073},
		"image_std":            []float64{0.26862954, 0.26130258, 0.27577711},
		"image_processor_type": "BlipImageProcessor", "processor_class": "Blip2Processor",
		"resample": 3, "rescale_factor": 1.0 / 255,
		"size": map[string]int{"height": imageSize, "width": imageSize},
	}
}
