// Package synth writes random-weight models with the shapes of the real
// BLIP-2 checkpoints, in the files blip2chat loads (vision.gguf, llm.gguf),
// so that speed can be measured at real sizes without downloading them
// (`blip2chat bench --synthetic NAME`). Their outputs are noise; their
// speed and memory are the real models'.
//
// Files are written once into a cache folder (by default
// os.UserCacheDir()/blip2chat/synthetic/) under names that hold everything
// that changes their bytes: the checkpoint, the weight type, the seed and
// a format version.
//
//	files, err := synth.Ensure(ctx, "vision", synth.Options{VisionType: "f32"})
//	m, err := vision.Load(files.Vision, vision.Options{})
package synth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/blip2chat/blip2chat/engine/lm/opt"
	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
	"github.com/blip2chat/blip2chat/weights/lmconv"
)

// Version changes whenever this package writes different bytes for the same
// name, type and seed, so that cached files are rewritten.
const Version = 1

// The synthetic models. Vision is BLIP-2 OPT-2.7b's vision side alone (ViT-g,
// Q-Former, projection to 2560); the others add the language model of the
// checkpoint named, and their vision side projects to its width.
const (
	Vision   = "vision"     // Salesforce/blip2-opt-2.7b without its LLM
	OPT27B   = "opt-2.7b"   // Salesforce/blip2-opt-2.7b
	FlanT5XL = "flan-t5-xl" // Salesforce/blip2-flan-t5-xl
	Vicuna7B = "vicuna-7b"  // Salesforce/instructblip-vicuna-7b
)

// model is one synthetic model: the checkpoint it imitates and its
// config.json (the fields that set shapes; transformers' defaults fill the
// rest, which for the vision side are the real ViT-g and Q-Former).
type model struct {
	checkpoint string
	config     string
	hasLLM     bool
}

// The vision and Q-Former sizes are spelled out although they are
// transformers' defaults: they are what is being measured.
const visionConfig = `"vision_config": {"hidden_size": 1408, "intermediate_size": 6144, "num_hidden_layers": 39,
	"num_attention_heads": 16, "image_size": 224, "patch_size": 14, "hidden_act": "gelu", "qkv_bias": true},
	"num_query_tokens": 32`

const qformerBLIP2 = `"qformer_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
	"num_attention_heads": 12, "cross_attention_frequency": 2, "encoder_hidden_size": 1408, "hidden_act": "gelu"}`

var models = map[string]model{
	Vision: {checkpoint: "blip2-opt-2.7b", config: optConfig},
	OPT27B: {checkpoint: "blip2-opt-2.7b", config: optConfig, hasLLM: true},
	FlanT5XL: {checkpoint: "blip2-flan-t5-xl", hasLLM: true, config: `{"model_type": "blip-2",
	"architectures": ["Blip2ForConditionalGeneration"], ` + visionConfig + `, ` + qformerBLIP2 + `,
	"text_config": {"model_type": "t5", "d_model": 2048, "d_ff": 5120, "d_kv": 64, "num_heads": 32,
		"num_layers": 24, "num_decoder_layers": 24, "vocab_size": 32128, "feed_forward_proj": "gated-gelu",
		"relative_attention_num_buckets": 32, "relative_attention_max_distance": 128,
		"layer_norm_epsilon": 1e-6, "tie_word_embeddings": false, "decoder_start_token_id": 0,
		"eos_token_id": 1, "pad_token_id": 0}}`},
	Vicuna7B: {checkpoint: "instructblip-vicuna-7b", hasLLM: true, config: `{"model_type": "instructblip",
	"architectures": ["InstructBlipForConditionalGeneration"], ` + visionConfig + `,
	"qformer_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
		"num_attention_heads": 12, "cross_attention_frequency": 2, "encoder_hidden_size": 1408,
		"hidden_act": "gelu", "vocab_size": 30523, "max_position_embeddings": 512},
	"text_config": {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008,
		"num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32001,
		"max_position_embeddings": 2048, "rms_norm_eps": 1e-6, "bos_token_id": 1, "eos_token_id": 2,
		"pad_token_id": 0, "tie_word_embeddings": false}}`},
}

const optConfig = `{"model_type": "blip-2", "architectures": ["Blip2ForConditionalGeneration"], ` +
	visionConfig + `, ` + qformerBLIP2 + `,
	"text_config": {"model_type": "opt", "hidden_size": 2560, "ffn_dim": 10240, "num_hidden_layers": 32,
		"num_attention_heads": 32, "vocab_size": 50272, "word_embed_proj_dim": 2560,
		"max_position_embeddings": 2048, "do_layer_norm_before": true, "activation_function": "relu",
		"bos_token_id": 2, "eos_token_id": 50118, "pad_token_id": 1}}`

// Names lists the synthetic models, sorted.
func Names() []string {
	var s []string
	for k := range models {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

func lookup(name string) (model, error) {
	m, ok := models[name]
	if !ok {
		return m, fmt.Errorf("no synthetic model %q (want %s)", name, strings.Join(Names(), ", "))
	}
	return m, nil
}

// Config returns the parsed config.json of the checkpoint whose shapes the
// synthetic model name has.
func Config(name string) (*hfconfig.Config, error) {
	m, err := lookup(name)
	if err != nil {
		return nil, err
	}
	return hfconfig.Parse([]byte(m.config))
}

// HasLLM reports whether the synthetic model name has a language model.
func HasLLM(name string) bool { return models[name].hasLLM }

// Options configure Ensure. The zero value uses the default cache folder,
// seed 0, the converter's default weight types and prints nothing.
type Options struct {
	CacheDir   string // "" means DefaultCacheDir()
	Seed       uint64
	VisionType string // "f32", "f16", "q8_0"; "" is `convert`'s default
	LLMType    string // the language model's weight type; "" is `convert`'s default for the family
	LlamaLib   string // folder of the llama.cpp library, to quantize (q4_k_m); "" searches
	// Progress receives what is being written and a progress bar while a
	// file is generated (nil: nothing); Terminal redraws it in place.
	Progress io.Writer
	Terminal bool
}

// Files are the paths of a synthetic model's files.
type Files struct {
	Vision string // vision.gguf
	LLM    string // llm.gguf; "" for Vision
}

// DefaultCacheDir is os.UserCacheDir()/blip2chat/synthetic.
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("synthetic models: no cache folder (%v); give one with --cache", err)
	}
	return filepath.Join(d, "blip2chat", "synthetic"), nil
}

// Ensure returns the files of the synthetic model name, writing those that
// are not in the cache yet (the ViT-g alone is 4 GB in f32, 2 GB in f16;
// the language models 2-13 GB). Before writing it checks that the cache's
// file system has room, and says how much is missing if not.
func Ensure(ctx context.Context, name string, o Options) (Files, error) {
	m, err := lookup(name)
	if err != nil {
		return Files{}, err
	}
	cfg, err := Config(name)
	if err != nil {
		return Files{}, err
	}
	dir := o.CacheDir
	if dir == "" {
		if dir, err = DefaultCacheDir(); err != nil {
			return Files{}, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Files{}, fmt.Errorf("synthetic models: %v", err)
	}
	// The language model first: its refusals (a bad type, no llama.cpp to
	// quantize) come before gigabytes of vision weights are written.
	var f Files
	if m.hasLLM {
		if f.LLM, err = ensureLLM(ctx, dir, name, cfg, o); err != nil {
			return Files{}, err
		}
	}
	if f.Vision, err = ensureVision(ctx, dir, m.checkpoint, cfg, o); err != nil {
		return Files{}, err
	}
	return f, nil
}

// typeName normalizes a weight type option for file names.
func typeName(t gguf.Type) string { return strings.ToLower(t.String()) }

func ensureVision(ctx context.Context, dir, checkpoint string, cfg *hfconfig.Config, o Options) (string, error) {
	wt, err := convert.ParseWeightType(o.VisionType)
	if err != nil {
		return "", err
	}
	modelDir := filepath.Join(dir, fmt.Sprintf("%s-vision-%s-seed%d-v%d", checkpoint, typeName(wt), o.Seed, Version))
	path := filepath.Join(modelDir, convert.VisionFile)
	if ok, err := exists(path); ok || err != nil {
		return path, err
	}
	plan, err := convert.PlanSyntheticVision(cfg, typeName(wt), o.Seed)
	if err != nil {
		return "", err
	}
	need, err := plan.Bytes()
	if err != nil {
		return "", err
	}
	if err := checkSpace(dir, need); err != nil {
		return "", err
	}
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "writing synthetic %s vision side (%s, %d tensors, %s) to %s\n",
			checkpoint, typeName(wt), len(plan.Tensors), convert.FormatBytes(need), modelDir)
	}
	if err := plan.Write(ctx, modelDir, convert.Options{Progress: o.Progress, Terminal: o.Terminal}); err != nil {
		return "", err
	}
	return path, nil
}

func ensureLLM(ctx context.Context, dir, name string, cfg *hfconfig.Config, o Options) (string, error) {
	switch cfg.Text.ModelType {
	case "opt":
		t, err := lmconv.ParseOPTType(o.LLMType)
		if err != nil {
			return "", err
		}
		hp, ok := opt.SyntheticShape(name)
		if !ok {
			return "", fmt.Errorf("engine/lm/opt has no synthetic shape %q", name)
		}
		path := filepath.Join(dir, fmt.Sprintf("%s-llm-%s-seed%d-v%d", name, t.Name, o.Seed, Version), "llm.gguf")
		if ok, err := exists(path); ok || err != nil {
			return path, err
		}
		need := optBytes(hp, t.Write)
		if err := checkSpace(dir, need); err != nil {
			return "", err
		}
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "writing synthetic %s language model (%s, %s) to %s\n", name, t.Name, convert.FormatBytes(need), path)
		}
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return "", err
		}
		if err := opt.WriteSynthetic(path, hp, t.Write, o.Seed); err != nil {
			return "", err
		}
		return path, nil
	}
	return ensureLlamaCppLLM(ctx, dir, name, cfg, o)
}

// optBytes estimates an OPT file's tensor bytes (matrices of type t, the
// rest f32).
func optBytes(hp opt.Hyper, t gguf.Type) int64 {
	H, E, F := int64(hp.Hidden), int64(hp.WordEmbed), int64(hp.FFN)
	mat := func(rows, cols int64) int64 {
		rb, err := t.RowBytes(int(cols))
		if err != nil {
			rb = int(2 * cols)
		}
		return rows * int64(rb)
	}
	n := mat(int64(hp.Vocab), E) + 4*int64(hp.MaxPositions+hp.PosOffset)*H
	per := 4*mat(H, H) + mat(F, H) + mat(H, F) + 4*(4*H+F+H+4*H)
	return n + int64(hp.Layers)*per
}

// exists reports whether path is a regular file.
func exists(path string) (bool, error) {
	st, err := os.Stat(path)
	switch {
	case err == nil && st.Mode().IsRegular():
		return true, nil
	case err == nil:
		return false, fmt.Errorf("%s: not a regular file", path)
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, err
}

// checkSpace refuses to start writing need bytes (plus a 5% margin) into
// dir when its file system has less free space.
func checkSpace(dir string, need int64) error {
	free, ok := freeBytes(dir)
	if !ok {
		return nil
	}
	if want := need + need/20; free < want {
		return fmt.Errorf("not enough disk space in %s for the synthetic model: need %s, %s free; free some space or give another folder with --cache",
			dir, convert.FormatBytes(want), convert.FormatBytes(free))
	}
	return nil
}
