// Package synth makes synthetic models: random weights in exactly the files
// `blip2chat convert` writes for a BLIP-2 checkpoint of a given config. It
// is the one place that makes models: the real-shape models of `blip2chat
// bench --synthetic` (Ensure), the demo model (engine/demo) and the tiny
// models of the tests.
//
// A synthetic model is planned by the converter itself (weights/convert and
// weights/lmconv) over a stand-in for the checkpoint: a folder holding its
// config.json and small files (tokenizers, given or generated for the
// language model's family) and, in memory, the tensor names and shapes a
// Hugging Face checkpoint of that config has, without data. So its files
// have a converted model's metadata, tensor names, types and order; only the
// values differ, drawn from a seeded generator (Values) when the files are
// written.
//
//	m := synth.Model{Config: configJSON, Seed: 1}
//	paths, err := m.Write(ctx, "model", convert.Options{VisionType: "f16", LLMType: "f16"})
package synth

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
	"github.com/blip2chat/blip2chat/weights/lmconv"
	"github.com/blip2chat/blip2chat/weights/plan"
)

// Model is a synthetic model: the checkpoint it stands for and how its
// weights are drawn.
type Model struct {
	// Config is the checkpoint's config.json.
	Config []byte
	// Files are the checkpoint folder's other files, by path in the folder
	// (preprocessor_config.json, tokenizer.model, tokenizer_config.json,
	// qformer_tokenizer/vocab.txt, ...). When the language model's tokenizer
	// is missing, one is generated; a missing preprocessor_config.json is
	// BlipImageProcessor's default at the model's image size.
	Files map[string][]byte
	// Name is general.name; "" is "synthetic (random weights)".
	Name string
	Seed uint64
	Init Init
}

// Plan plans the files `convert` would write for the checkpoint, with opt's
// VisionType, LLMType and VisionOnly (its other fields are not used), and
// random weights. The same model gives the same bytes. Nothing is written
// but the stand-in folder in os.TempDir(), removed before returning.
func (m *Model) Plan(opt convert.Options) ([]*plan.File, error) {
	src, done, err := m.standIn(!opt.VisionOnly)
	if err != nil {
		return nil, err
	}
	defer done()
	files, err := convert.PlanFiles(src, convert.Options{VisionType: opt.VisionType, LLMType: opt.LLMType, VisionOnly: opt.VisionOnly})
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		m.randomize(f)
	}
	return files, nil
}

// PlanLLM plans the language model's file alone, of type llmType ("" is
// the family's default; a type made by llama.cpp's quantizer, q4_k_m, is
// planned as f16, to be finished by lmconv.Finish).
func (m *Model) PlanLLM(llmType string) (*plan.File, error) {
	src, done, err := m.standIn(true)
	if err != nil {
		return nil, err
	}
	defer done()
	tc := &src.Config.Text
	t, err := lmconv.ParseFamilyType(tc.ModelType, llmType)
	if err != nil {
		return nil, err
	}
	f, err := lmconv.PlanFile(lmconv.Source{Dir: src.Dir, Text: tc, Tensors: src.Checkpoint, Placeholders: convert.Placeholders(src.Config)}, t)
	if err != nil {
		return nil, err
	}
	m.randomize(f)
	return f, nil
}

// Write writes the model folder dir (created if needed) as `convert`
// would, through plan.WriteFiles, and returns the paths written.
func (m *Model) Write(ctx context.Context, dir string, opt convert.Options) ([]string, error) {
	files, err := m.Plan(opt)
	if err != nil {
		return nil, err
	}
	w, err := plan.WriteFiles(ctx, dir, files, plan.WriteOptions{Progress: opt.Progress, Terminal: opt.Terminal})
	return w.Paths, err
}

// WriteLLM writes the language model alone to path (see PlanLLM).
func (m *Model) WriteLLM(ctx context.Context, path, llmType string) error {
	f, err := m.PlanLLM(llmType)
	if err != nil {
		return err
	}
	f.Name = filepath.Base(path)
	_, err = plan.WriteFiles(ctx, filepath.Dir(path), []*plan.File{f}, plan.WriteOptions{})
	return err
}

// randomize gives f's tensors random values and its synthetic name.
func (m *Model) randomize(f *plan.File) {
	name := m.Name
	if name == "" {
		name = "synthetic (random weights)"
	}
	for i := range f.KV {
		if f.KV[i].Key == gguf.KeyName {
			f.KV[i].Value = name
		}
	}
	for i := range f.Tensors {
		t := &f.Tensors[i]
		t.Sources = nil
		t.Values = Values(t.Name, t.Shape, m.Seed, m.Init)
	}
}

// standIn writes the stand-in checkpoint folder (with the language model's
// tokenizer when withLLM) and opens it as a convert.Source over the
// checkpoint's tensor names and shapes; done removes the folder.
func (m *Model) standIn(withLLM bool) (src *convert.Source, done func(), err error) {
	cfg, err := hfconfig.Parse(m.Config)
	if err != nil {
		return nil, nil, fmt.Errorf("synthetic model: %v", err)
	}
	ck, err := checkpointTensors(cfg)
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "blip2chat-synthetic-*")
	if err != nil {
		return nil, nil, err
	}
	done = func() { os.RemoveAll(dir) }
	files := map[string][]byte{"config.json": m.Config}
	if withLLM && !hasTokenizer(m.Files, cfg.Text.ModelType) {
		gen, err := tokenizerFiles(&cfg.Text)
		if err != nil {
			done()
			return nil, nil, err
		}
		for name, data := range gen {
			files[name] = data
		}
	}
	if isRetrieval(cfg) {
		if _, ok := m.Files["vocab.txt"]; !ok {
			files["vocab.txt"] = wordPieceVocab(cfg.QFormer.VocabSize - 1)
		}
	}
	for name, data := range m.Files {
		files[name] = data
	}
	for name, data := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		err := os.MkdirAll(filepath.Dir(path), 0o755)
		if err == nil {
			err = os.WriteFile(path, data, 0o644)
		}
		if err != nil {
			done()
			return nil, nil, err
		}
	}
	arch := "Blip2ForConditionalGeneration"
	if cfg.ModelType == "instructblip" {
		arch = "InstructBlipForConditionalGeneration"
	}
	if len(cfg.Architectures) > 0 {
		arch = cfg.Architectures[0]
	}
	return &convert.Source{Dir: dir, Config: cfg, Architecture: arch, Checkpoint: ck}, done, nil
}

// hasTokenizer reports whether files hold a tokenizer for a language model
// of the given family.
func hasTokenizer(files map[string][]byte, family string) bool {
	has := func(name string) bool { _, ok := files[name]; return ok }
	switch family {
	case "llama":
		return has("tokenizer.model")
	case "t5":
		return has("spiece.model") || has("tokenizer.model")
	case "opt":
		return has("vocab.json") || has("tokenizer.json")
	}
	return false
}

// wordPieceVocab is a BERT vocab.txt of n entries: the special tokens, the
// lower-case letters and their "##" continuations, then filler words (as
// bert-base-uncased's, which the retrieval checkpoints ship, one entry
// short of the Q-Former's vocab_size).
func wordPieceVocab(n int) []byte {
	var b []byte
	add := func(s string) {
		if n > 0 {
			b = append(b, s+"\n"...)
			n--
		}
	}
	for _, s := range []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"} {
		add(s)
	}
	for c := 'a'; c <= 'z'; c++ {
		add(string(c))
		add("##" + string(c))
	}
	for i := 0; n > 0; i++ {
		add(fmt.Sprintf("w%d", i))
	}
	return b
}
