package synth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
	"github.com/blip2chat/blip2chat/weights/lmconv"
	"github.com/blip2chat/blip2chat/weights/plan"
)

// The real-shape synthetic models of `blip2chat bench --synthetic NAME`:
// their outputs are noise, their speed and memory are the real models'.
// Files are written once into a cache folder (by default
// os.UserCacheDir()/blip2chat/synthetic/) under names that hold everything
// that changes their bytes: the checkpoint, the weight type, the seed and
// Version.
//
//	files, err := synth.Ensure(ctx, "vision", synth.Options{VisionType: "f32"})
//	m, err := vision.Load(files.Vision, vision.Options{})

// Version changes whenever this package writes different bytes for the same
// name, type and seed, so that cached files are rewritten.
const Version = 2

// The real-shape models. Vision is BLIP-2 OPT-2.7b's vision side alone
// (ViT-g, Q-Former, projection to 2560); the others add the language model
// of the checkpoint named, and their vision side projects to its width.
const (
	Vision   = "vision"     // Salesforce/blip2-opt-2.7b without its LLM
	OPT27B   = "opt-2.7b"   // Salesforce/blip2-opt-2.7b
	FlanT5XL = "flan-t5-xl" // Salesforce/blip2-flan-t5-xl
	Vicuna7B = "vicuna-7b"  // Salesforce/instructblip-vicuna-7b
	ITM      = "itm-vit-g"  // Salesforce/blip2-itm-vit-g: retrieval, no LLM
)

// realShape is one real-shape model: the checkpoint it imitates and its
// config.json (the fields that set shapes; transformers' defaults fill the
// rest, which for the vision side are the real ViT-g and Q-Former).
type realShape struct {
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

const optConfig = `{"model_type": "blip-2", "architectures": ["Blip2ForConditionalGeneration"], ` +
	visionConfig + `, ` + qformerBLIP2 + `,
	"text_config": {"model_type": "opt", "hidden_size": 2560, "ffn_dim": 10240, "num_hidden_layers": 32,
		"num_attention_heads": 32, "vocab_size": 50272, "word_embed_proj_dim": 2560,
		"max_position_embeddings": 2048, "do_layer_norm_before": true, "activation_function": "relu",
		"bos_token_id": 2, "eos_token_id": 50118, "pad_token_id": 1}}`

var realShapes = map[string]realShape{
	ITM: {checkpoint: "blip2-itm-vit-g", config: `{"model_type": "blip-2", "architectures": ["Blip2ForImageTextRetrieval"], ` +
		visionConfig + `, "image_text_hidden_size": 256,
	"qformer_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
		"num_attention_heads": 12, "cross_attention_frequency": 2, "encoder_hidden_size": 1408,
		"hidden_act": "gelu", "vocab_size": 30523, "max_position_embeddings": 512, "use_qformer_text_input": true},
	"text_config": {"model_type": "opt"}}`},
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

// Names lists the real-shape models, sorted.
func Names() []string { return slices.Sorted(maps.Keys(realShapes)) }

func lookup(name string) (realShape, error) {
	m, ok := realShapes[name]
	if !ok {
		return m, fmt.Errorf("no synthetic model %q (want %s)", name, strings.Join(Names(), ", "))
	}
	return m, nil
}

// Config returns the parsed config.json of the checkpoint whose shapes the
// real-shape model name has.
func Config(name string) (*hfconfig.Config, error) {
	m, err := lookup(name)
	if err != nil {
		return nil, err
	}
	return hfconfig.Parse([]byte(m.config))
}

// HasLLM reports whether the real-shape model name has a language model.
func HasLLM(name string) bool { return realShapes[name].hasLLM }

// Options configure Ensure. The zero value uses the default cache folder,
// seed 0, the converter's default weight types and prints nothing.
type Options struct {
	CacheDir   string // "" means DefaultCacheDir()
	Seed       uint64
	VisionType string // "f32", "f16", "q8_0"; "" is `convert`'s default
	LLMType    string // the language model's weight type; "" is `convert`'s default for the family
	// Quantizer returns llama.cpp's quantizer, for the types it makes
	// (q4_k_m, the LLaMA and T5 default); it is called before anything is
	// written, and only for those types. nil: they are refused.
	Quantizer func() (lmconv.Quantizer, error)
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

// Ensure returns the files of the real-shape model name, writing those that
// are not in the cache yet (the ViT-g alone is 4 GB in f32, 2 GB in f16;
// the language models 2-13 GB). Before writing it checks that the cache's
// file system has room, and says how much is missing if not.
func Ensure(ctx context.Context, name string, o Options) (Files, error) {
	r, err := lookup(name)
	if err != nil {
		return Files{}, err
	}
	m := &Model{Config: []byte(r.config), Seed: o.Seed}
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
	if r.hasLLM {
		if f.LLM, err = ensureLLM(ctx, dir, name, m, o); err != nil {
			return Files{}, err
		}
	}
	if f.Vision, err = ensureVision(ctx, dir, r.checkpoint, m, o); err != nil {
		return Files{}, err
	}
	return f, nil
}

func ensureVision(ctx context.Context, dir, checkpoint string, m *Model, o Options) (string, error) {
	wt, err := convert.ParseWeightType(o.VisionType)
	if err != nil {
		return "", err
	}
	typ := strings.ToLower(wt.String())
	modelDir := filepath.Join(dir, fmt.Sprintf("%s-vision-%s-seed%d-v%d", checkpoint, typ, o.Seed, Version))
	path := filepath.Join(modelDir, convert.VisionFile)
	if ok, err := exists(path); ok || err != nil {
		return path, err
	}
	files, err := m.Plan(convert.Options{VisionType: typ, VisionOnly: true})
	if err != nil {
		return "", err
	}
	need, err := files[0].Bytes()
	if err != nil {
		return "", err
	}
	if err := checkSpace(dir, need); err != nil {
		return "", err
	}
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "writing synthetic %s vision side (%s, %d tensors, %s) to %s\n",
			checkpoint, typ, len(files[0].Tensors), plan.FormatBytes(need), modelDir)
	}
	_, err = plan.WriteFiles(ctx, modelDir, files, plan.WriteOptions{Progress: o.Progress, Terminal: o.Terminal})
	return path, err
}

// ensureLLM returns the cached language model, writing it first: planned
// as `convert` does, then, for a type made by llama.cpp's quantizer,
// quantized.
func ensureLLM(ctx context.Context, dir, name string, m *Model, o Options) (string, error) {
	cfg, err := hfconfig.Parse(m.Config)
	if err != nil {
		return "", err
	}
	t, err := lmconv.ParseFamilyType(cfg.Text.ModelType, o.LLMType)
	if err != nil {
		return "", err
	}
	modelDir := filepath.Join(dir, fmt.Sprintf("%s-llm-%s-seed%d-v%d", name, t.Name, o.Seed, Version))
	path := filepath.Join(modelDir, lmconv.FileName)
	if ok, err := exists(path); ok || err != nil {
		return path, err
	}
	f, err := m.PlanLLM(t.Name)
	if err != nil {
		return "", err
	}
	need, err := f.Bytes()
	if err != nil {
		return "", err
	}
	// Quantizing writes the smaller file beside the f16 one.
	if t.Quantize {
		need += need / 3
	}
	if err := checkSpace(dir, need); err != nil {
		return "", err
	}
	var q lmconv.Quantizer
	if t.Quantize {
		// Fail now rather than after writing the f16 file.
		err := fmt.Errorf("no quantizer given")
		if o.Quantizer != nil {
			q, err = o.Quantizer()
		}
		if err != nil {
			return "", fmt.Errorf("a synthetic %s language model is made with llama.cpp's quantizer: %v (or choose --llm-type f16 or q8_0)", t.Name, err)
		}
	}
	if o.Progress != nil {
		how := t.Name
		if t.Quantize {
			how = "f16, then quantized to " + t.Name
		}
		fmt.Fprintf(o.Progress, "writing synthetic %s language model (%s, %d tensors, %s) to %s\n",
			name, how, len(f.Tensors), plan.FormatBytes(need), modelDir)
	}
	// A quantized type is made in place: write under a temporary folder
	// name so that an interrupted quantization leaves no f16 file under
	// the q4_k_m name.
	work := modelDir
	if t.Quantize {
		work = modelDir + ".partial"
		os.RemoveAll(work)
	}
	if _, err := plan.WriteFiles(ctx, work, []*plan.File{f}, plan.WriteOptions{Progress: o.Progress, Terminal: o.Terminal}); err != nil {
		return "", err
	}
	if t.Quantize {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "quantizing it to %s with llama.cpp (a few minutes for 7B)...\n", t.Name)
		}
		err := lmconv.Finish(filepath.Join(work, lmconv.FileName), t, q)
		if err == nil {
			err = os.Rename(work, modelDir)
		}
		if err != nil {
			os.RemoveAll(work)
			return "", err
		}
	}
	return path, nil
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
	free, ok := plan.FreeSpace(dir)
	if !ok {
		return nil
	}
	if want := need + need/20; free < want {
		return fmt.Errorf("not enough disk space in %s for the synthetic model: need %s, %s free; free some space or give another folder with --cache",
			dir, plan.FormatBytes(want), plan.FormatBytes(free))
	}
	return nil
}
