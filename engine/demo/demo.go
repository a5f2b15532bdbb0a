// Package demo builds the demo model: a tiny BLIP-2 (ViT, Q-Former and a
// LLaMA language model) with random weights, so that anyone can try
// blip2chat without downloading a checkpoint.
//
// The model is a synthetic model (weights/synth): what the real converter
// writes for a Hugging Face checkpoint of the demo's config, with its
// SentencePiece tokenizer, and random weights. Its answers are
// meaningless; what it shows is the interface.
package demo

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/blip2chat/blip2chat/internal/safefile"
	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/lmconv"
	"github.com/blip2chat/blip2chat/weights/synth"
)

// Version is the demo model's version: a cached model of another version is
// rebuilt. Bump it whenever the shapes, the seed or the formats change.
const Version = 2

// Label is what the app shows wherever the demo model is in use.
const Label = "demo model: random weights, answers are meaningless"

// SampleName is the file name of the bundled sample image.
const SampleName = "sample.jpg"

//go:embed sample.jpg
var sampleJPEG []byte

// tokenizer.model is the project's own small SentencePiece BPE model (2000
// pieces, byte fallback; testdata/golden/tokenizers/llama_spm.model).
//
//go:embed tokenizer.model
var tokenizerModel []byte

// SampleImage returns the bundled sample image (a JPEG).
func SampleImage() []byte { return sampleJPEG }

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

// stamp is written last into a built model folder; a folder without it, or
// with another version, is rebuilt.
const stamp = "demo.json"

type stampFile struct {
	Version int    `json:"version"`
	Label   string `json:"label"`
}

// Dir is where the demo model lives in the data folder.
func Dir(dataDir string) string { return filepath.Join(dataDir, "demo") }

// Ready reports whether dir holds a demo model of this Version.
func Ready(dir string) bool {
	data, err := safefile.ReadFile(filepath.Join(dir, stamp), 1<<20) // a FIFO in the data folder must not block
	if err != nil {
		return false
	}
	var s stampFile
	if json.Unmarshal(data, &s) != nil || s.Version != Version {
		return false
	}
	for _, f := range []string{convert.VisionFile, lmconv.FileName, SampleName} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || !st.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// Ensure returns the demo model folder under dataDir (dataDir/demo, with
// vision.gguf, llm.gguf and the sample image), building it first when it is
// missing or of another version. The folder is built beside its final place
// and renamed into it, so an interrupted build leaves nothing half-written;
// two processes building at once both end with a complete folder.
func Ensure(ctx context.Context, dataDir string) (string, error) {
	dir := Dir(dataDir)
	if Ready(dir) {
		return dir, nil
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return "", fmt.Errorf("demo model: %w", err)
	}
	tmp, err := os.MkdirTemp(dataDir, ".demo-build-")
	if err != nil {
		return "", fmt.Errorf("demo model: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := Build(ctx, tmp); err != nil {
		return "", err
	}
	// Move an old folder aside, then put the new one in place.
	if _, err := os.Stat(dir); err == nil {
		old := dir + ".old-" + strconv.Itoa(os.Getpid())
		if err := os.Rename(dir, old); err == nil {
			defer os.RemoveAll(old)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if Ready(dir) { // another process won the race
			return dir, nil
		}
		return "", fmt.Errorf("demo model: %w", err)
	}
	return dir, nil
}

// Build writes a complete demo model folder into dir (which must exist).
func Build(ctx context.Context, dir string) error {
	m, err := model()
	if err != nil {
		return fmt.Errorf("demo model: %w", err)
	}
	// f16 everywhere: no quantizer run (that needs llama.cpp), half the size.
	if _, err := m.Write(ctx, dir, convert.Options{VisionType: "f16", LLMType: "f16"}); err != nil {
		return fmt.Errorf("demo model: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, SampleName), sampleJPEG, 0o644); err != nil {
		return fmt.Errorf("demo model: %w", err)
	}
	data, _ := json.MarshalIndent(stampFile{Version: Version, Label: Label}, "", "  ")
	if err := writeSynced(filepath.Join(dir, stamp), data); err != nil {
		return fmt.Errorf("demo model: %w", err)
	}
	return nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// model is the demo model: the checkpoint it stands for (the layout of
// Salesforce/blip2-* on the hub, with the project's SentencePiece
// tokenizer) and its seed.
func model() (*synth.Model, error) {
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
