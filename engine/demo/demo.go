// Package demo builds the demo model: a tiny BLIP-2 (ViT, Q-Former and a
// LLaMA language model) with random weights, so that anyone can try
// blip2chat without downloading a checkpoint.
//
// The model is made the way a real one is: a Hugging Face checkpoint folder
// (config.json, model.safetensors with the tensor names of
// Salesforce/blip2-* checkpoints, a SentencePiece tokenizer) is written to a
// temporary folder and run through the real converter (weights/convert).
// Its answers are meaningless; what it shows is the interface.
package demo

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/safetensors"
)

// Version is the demo model's version: a cached model of another version is
// rebuilt. Bump it whenever the shapes, the seed or the formats change.
const Version = 1

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
	data, err := os.ReadFile(filepath.Join(dir, stamp))
	if err != nil {
		return false
	}
	var s stampFile
	if json.Unmarshal(data, &s) != nil || s.Version != Version {
		return false
	}
	for _, f := range []string{"vision.gguf", "llm.gguf", SampleName} {
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

// Build writes a complete demo model folder into dir (which must exist):
// the checkpoint is written to dir/hf, converted into dir, then removed.
func Build(ctx context.Context, dir string) error {
	hf := filepath.Join(dir, "hf")
	if err := WriteCheckpoint(hf); err != nil {
		return err
	}
	defer os.RemoveAll(hf)
	// f16 everywhere: no quantizer run (that needs llama.cpp), half the size.
	if _, err := convert.Convert(ctx, hf, dir, convert.Options{VisionType: "f16", LLMType: "f16"}); err != nil {
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

// WriteCheckpoint writes the demo model as a Hugging Face checkpoint folder
// (created if needed), with the layout of Salesforce/blip2-* on the hub.
func WriteCheckpoint(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("demo model: %w", err)
	}
	files := map[string]any{
		"config.json":              config(),
		"preprocessor_config.json": preprocessor(),
		"tokenizer_config.json": map[string]any{
			"add_bos_token": true, "add_eos_token": false, "bos_token": "<s>", "eos_token": "</s>",
			"unk_token": "<unk>", "legacy": true, "tokenizer_class": "LlamaTokenizer",
		},
	}
	for name, v := range files {
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("demo model: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.model"), tokenizerModel, 0o644); err != nil {
		return fmt.Errorf("demo model: %w", err)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), tensors(), map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("demo model: %w", err)
	}
	return nil
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

// tensors makes every tensor of the checkpoint from a fixed seed, so that
// every build of one Version is the same model.
func tensors() []safetensors.WriteTensor {
	r := rand.New(rand.NewPCG(seed, Version))
	var ts []safetensors.WriteTensor
	// add appends a tensor of N(0, std^2) values (zeros for std 0); ones a
	// vector of ones (norm weights).
	add := func(name string, std float64, shape ...int) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64() * std)
		}
		ts = append(ts, safetensors.F32Tensor(name, shape, v))
	}
	ones := func(name string, n int) {
		v := make([]float32, n)
		for i := range v {
			v[i] = 1
		}
		ts = append(ts, safetensors.F32Tensor(name, []int{n}, v))
	}
	// Xavier-like scales keep activations O(1) through the layers.
	w := func(name string, out, in int) { add(name, 1/math.Sqrt(float64(in)), out, in) }
	const b = 0.02 // biases

	// Vision (EVA ViT-g layout of the hub checkpoints: q_bias and v_bias).
	vp := "vision_model."
	add(vp+"embeddings.class_embedding", 0.5, 1, 1, visionHidden)
	add(vp+"embeddings.patch_embedding.weight", 1/math.Sqrt(3*patchSize*patchSize), visionHidden, 3, patchSize, patchSize)
	add(vp+"embeddings.patch_embedding.bias", b, visionHidden)
	nTok := (imageSize/patchSize)*(imageSize/patchSize) + 1
	add(vp+"embeddings.position_embedding", 0.5, 1, nTok, visionHidden)
	for i := range visionLayers {
		p := fmt.Sprintf("%sencoder.layers.%d.", vp, i)
		ones(p+"layer_norm1.weight", visionHidden)
		add(p+"layer_norm1.bias", 0, visionHidden)
		ones(p+"layer_norm2.weight", visionHidden)
		add(p+"layer_norm2.bias", 0, visionHidden)
		w(p+"mlp.fc1.weight", visionInter, visionHidden)
		add(p+"mlp.fc1.bias", b, visionInter)
		w(p+"mlp.fc2.weight", visionHidden, visionInter)
		add(p+"mlp.fc2.bias", b, visionHidden)
		w(p+"self_attn.projection.weight", visionHidden, visionHidden)
		add(p+"self_attn.projection.bias", b, visionHidden)
		add(p+"self_attn.q_bias", b, visionHidden)
		w(p+"self_attn.qkv.weight", 3*visionHidden, visionHidden)
		add(p+"self_attn.v_bias", b, visionHidden)
	}
	ones(vp+"post_layernorm.weight", visionHidden)
	add(vp+"post_layernorm.bias", 0, visionHidden)

	// Q-Former: cross-attention to the image every cross_attention_frequency
	// layers (layers 0, 2, ...).
	add("query_tokens", 0.5, 1, numQueries, qfHidden)
	ones("qformer.layernorm.weight", qfHidden)
	add("qformer.layernorm.bias", 0, qfHidden)
	for i := range qfLayers {
		p := fmt.Sprintf("qformer.encoder.layer.%d.", i)
		attn := func(q string, kvIn int) {
			w(p+q+"attention.query.weight", qfHidden, qfHidden)
			add(p+q+"attention.query.bias", b, qfHidden)
			w(p+q+"attention.key.weight", qfHidden, kvIn)
			add(p+q+"attention.key.bias", b, qfHidden)
			w(p+q+"attention.value.weight", qfHidden, kvIn)
			add(p+q+"attention.value.bias", b, qfHidden)
			w(p+q+"output.dense.weight", qfHidden, qfHidden)
			add(p+q+"output.dense.bias", b, qfHidden)
			ones(p+q+"output.LayerNorm.weight", qfHidden)
			add(p+q+"output.LayerNorm.bias", 0, qfHidden)
		}
		attn("attention.", qfHidden)
		if i%2 == 0 {
			attn("crossattention.", visionHidden)
		}
		w(p+"intermediate_query.dense.weight", qfInter, qfHidden)
		add(p+"intermediate_query.dense.bias", b, qfInter)
		w(p+"output_query.dense.weight", qfHidden, qfInter)
		add(p+"output_query.dense.bias", b, qfHidden)
		ones(p+"output_query.LayerNorm.weight", qfHidden)
		add(p+"output_query.LayerNorm.bias", 0, qfHidden)
	}
	w("language_projection.weight", lmHidden, qfHidden)
	add("language_projection.bias", b, lmHidden)

	// LLaMA language model.
	lp := "language_model."
	kvDim := lmHidden / lmHeads * lmKVHeads
	add(lp+"model.embed_tokens.weight", 1, lmVocab, lmHidden)
	add(lp+"lm_head.weight", 0.5/math.Sqrt(lmHidden), lmVocab, lmHidden)
	ones(lp+"model.norm.weight", lmHidden)
	for i := range lmLayers {
		p := fmt.Sprintf("%smodel.layers.%d.", lp, i)
		ones(p+"input_layernorm.weight", lmHidden)
		ones(p+"post_attention_layernorm.weight", lmHidden)
		w(p+"self_attn.q_proj.weight", lmHidden, lmHidden)
		w(p+"self_attn.k_proj.weight", kvDim, lmHidden)
		w(p+"self_attn.v_proj.weight", kvDim, lmHidden)
		w(p+"self_attn.o_proj.weight", lmHidden, lmHidden)
		w(p+"mlp.gate_proj.weight", lmInter, lmHidden)
		w(p+"mlp.up_proj.weight", lmInter, lmHidden)
		w(p+"mlp.down_proj.weight", lmHidden, lmInter)
	}
	return ts
}
