// Package model opens a blip2chat model folder (MODEL_DIR, written by
// `blip2chat convert`): vision.gguf for the ViT, Q-Former and projection,
// and llm.gguf (or another GGUF of the same language model) run by the
// backend registered for its architecture: engine/lm/llamacpp (llama.cpp) for
// LLaMA and T5, engine/lm/opt for OPT.
//
//	m, err := model.Open("models/blip2-opt-2.7b", model.Options{})
//	defer m.Close()
//	c, err := m.NewChat(chat.Settings{})
//	defer c.Close()
//	err = c.SetImage("cat.jpg")
//	turn, err := c.Ask(ctx, "what is in the image?", func(s string) { fmt.Print(s) })
package model

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/blip2chat/blip2chat/engine/chat"
	"github.com/blip2chat/blip2chat/engine/imageprep"
	"github.com/blip2chat/blip2chat/engine/lm"
	_ "github.com/blip2chat/blip2chat/engine/lm/llamacpp" // llama.cpp backend (LLaMA, T5)
	_ "github.com/blip2chat/blip2chat/engine/lm/opt"      // Go backend (OPT)
	"github.com/blip2chat/blip2chat/engine/vision"
)

// File names inside a model folder.
const (
	VisionFile = "vision.gguf"
	LLMFile    = "llm.gguf"
)

// Options configure Open. Zero values pick defaults.
type Options struct {
	LlamaLib string // llama.cpp library folder (--llama-lib); "" searches
	LLMPath  string // language model GGUF; "" is MODEL_DIR/llm.gguf
	// Threads, NCtx and Exact are the defaults of the chats' settings
	// (see chat.Settings).
	Threads int
	NCtx    int
	Exact   bool
	// GPULayers is how many language-model layers go to a GPU when the
	// llama.cpp build and the machine have one: 0 none, lm.AllLayers all
	// (the CLI's default). Changing it means opening the model again.
	GPULayers int
	Log       io.Writer // the backends' log (llama.cpp's messages); nil discards it
	// Progress, if set, is told which stage is loading ("vision",
	// "language model") and how far it is (0..1).
	Progress func(stage string, frac float64)
}

// Model is an opened model folder.
type Model struct {
	Dir     string
	LLMPath string
	Vision  *vision.Model
	LM      lm.Model
	opts    Options
}

// Info summarizes the model for display.
type Info struct {
	Family    string // "blip-2" or "instructblip"
	LLMFamily string // "opt", "t5", "llama"
	Arch      string // the language model's GGUF architecture
	Desc      string // e.g. "llama 7B Q4_K_M"
	// NumQueryTokens soft tokens of NEmbd floats precede the prompt.
	NumQueryTokens, NEmbd int
	NCtxTrain, NVocab     int
	PromptFormat          string
}

// archFamily maps a language model architecture to the text model_type the
// vision side records.
var archFamily = map[string]string{"llama": "llama", "t5": "t5", "blip2-opt": "opt"}

// checkDir checks that dir is a folder.
func checkDir(dir string) error {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: no such model folder (make one with 'blip2chat convert')", dir)
	}
	if err != nil {
		return fmt.Errorf("model folder: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a model folder (it should hold %s and %s, written by 'blip2chat convert')", dir, VisionFile, LLMFile)
	}
	return nil
}

// VisionPath returns the vision file of the model folder dir, checking
// that it is there.
func VisionPath(dir string) (string, error) {
	if err := checkDir(dir); err != nil {
		return "", err
	}
	p := filepath.Join(dir, VisionFile)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s: no %s: convert a checkpoint into it with 'blip2chat convert'", dir, VisionFile)
	}
	return p, nil
}

// LLMPath returns the language model file: llm if not "" (a GGUF given
// instead of the folder's), else dir/llm.gguf, checking that it is there.
func LLMPath(dir, llm string) (string, error) {
	if llm != "" {
		return llm, nil
	}
	if err := checkDir(dir); err != nil {
		return "", err
	}
	p := filepath.Join(dir, LLMFile)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s: no %s (was it converted with --vision-only?); give one with --llm", dir, LLMFile)
	}
	return p, nil
}

// OpenVision loads only the vision side of the model folder dir.
func OpenVision(dir string) (*vision.Model, error) {
	p, err := VisionPath(dir)
	if err != nil {
		return nil, err
	}
	return vision.Load(p)
}

// Check reports whether the files of the model folder dir (with o.LLMPath
// replacing its llm.gguf) load and belong together, as Open would, but
// loads only the language model's vocabulary.
func Check(dir string, o Options) error {
	v, err := OpenVision(dir)
	if err != nil {
		return err
	}
	defer v.Close()
	vi := v.Info()
	vpath := filepath.Join(dir, VisionFile)
	if vi.LLMFamily == "" || vi.ProjectionSize == 0 {
		return fmt.Errorf("%s has no language projection (%s): it cannot answer questions", vpath, vi.Architecture)
	}
	llmPath, err := LLMPath(dir, o.LLMPath)
	if err != nil {
		return err
	}
	m, err := lm.Open(llmPath, lm.OpenOptions{LlamaLib: o.LlamaLib, Log: o.Log, VocabOnly: true})
	if err != nil {
		return err
	}
	defer m.Close()
	return check(vpath, vi, llmPath, m.Info())
}

// Open loads the model folder dir. Errors are one line naming the file.
func Open(dir string, o Options) (*Model, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	// Each stage is reported from 0 to 1, once each, however often a
	// backend reports.
	last := map[string]float64{}
	progress := func(stage string, f float64) {
		if prev, seen := last[stage]; o.Progress == nil || (seen && f <= prev) {
			return
		}
		last[stage] = f
		o.Progress(stage, f)
	}
	vpath, err := VisionPath(dir)
	if err != nil {
		return nil, err
	}
	llmPath, err := LLMPath(dir, o.LLMPath)
	if err != nil {
		return nil, err
	}
	progress("vision", 0)
	v, err := vision.Load(vpath)
	if err != nil {
		return nil, err
	}
	progress("vision", 1)
	vi := v.Info()
	if vi.LLMFamily == "" || vi.ProjectionSize == 0 {
		v.Close()
		return nil, fmt.Errorf("%s has no language projection (%s): it cannot answer questions", vpath, vi.Architecture)
	}
	progress("language model", 0)
	m, err := lm.Open(llmPath, lm.OpenOptions{LlamaLib: o.LlamaLib, Log: o.Log, GPULayers: o.GPULayers,
		Progress: func(f float64) { progress("language model", f) }})
	if err != nil {
		v.Close()
		return nil, err
	}
	progress("language model", 1)
	if err := check(vpath, vi, llmPath, m.Info()); err != nil {
		m.Close()
		v.Close()
		return nil, err
	}
	return &Model{Dir: dir, LLMPath: llmPath, Vision: v, LM: m, opts: o}, nil
}

// check verifies that the language model is the one the vision side was
// trained with: same family and the projection's width.
func check(vpath string, vi *vision.Info, llmPath string, li lm.Info) error {
	if fam, ok := archFamily[li.Arch]; ok && fam != vi.LLMFamily {
		return fmt.Errorf("%s is a %s model but %s was made for %s: the files come from different checkpoints", llmPath, li.Arch, vpath, vi.LLMFamily)
	}
	if li.NEmbd != vi.ProjectionSize {
		return fmt.Errorf("%s takes %d-wide embeddings but %s projects to %d: the files come from different checkpoints", llmPath, li.NEmbd, vpath, vi.ProjectionSize)
	}
	return nil
}

// Info summarizes the model.
func (m *Model) Info() Info {
	vi, li := m.Vision.Info(), m.LM.Info()
	return Info{Family: vi.Family, LLMFamily: vi.LLMFamily, Arch: li.Arch, Desc: li.Desc,
		NumQueryTokens: vi.NumQueryTokens, NEmbd: li.NEmbd, NCtxTrain: li.NCtxTrain, NVocab: li.NVocab,
		PromptFormat: vi.PromptFormat}
}

// DefaultSettings are the chat settings this model starts with: greedy
// answers (BLIP-2's evaluation setting), the family's template and the
// Open options' threads, context size and Exact.
func (m *Model) DefaultSettings() chat.Settings {
	vi := m.Vision.Info()
	return chat.Settings{
		Sampling:  lm.GreedyParams(),
		MaxTokens: chat.DefaultMaxTokens,
		Template:  chat.TemplateFor(vi.Family, vi.PromptFormat),
		Threads:   m.opts.Threads,
		NCtx:      m.opts.NCtx,
		Exact:     m.opts.Exact,
	}
}

// NewChat starts a conversation. Zero fields of s take DefaultSettings'
// values (the sampling parameters are taken as given unless all zero).
func (m *Model) NewChat(s chat.Settings) (*chat.Chat, error) {
	d := m.DefaultSettings()
	if s.Sampling == (lm.SamplingParams{}) {
		s.Sampling = d.Sampling
	}
	if s.MaxTokens == 0 {
		s.MaxTokens = d.MaxTokens
	}
	if s.Template == (chat.Template{}) {
		s.Template = d.Template
	}
	if s.Threads == 0 {
		s.Threads = d.Threads
	}
	if s.NCtx == 0 {
		s.NCtx = d.NCtx
	}
	s.Exact = s.Exact || d.Exact
	return chat.New(m.Vision, m.LM, s)
}

// Close frees both models.
func (m *Model) Close() error {
	return errors.Join(m.LM.Close(), m.Vision.Close())
}

// SoftTokens runs the vision side on the image file at path: the ViT, the
// Q-Former (reading instruction for InstructBLIP; BLIP-2 ignores it) and the
// projection. It returns NumQueryTokens x NEmbd floats.
func (m *Model) SoftTokens(path, instruction string) ([]float32, error) {
	vi := m.Vision.Info()
	px, err := imageprep.PixelValues(path, vi.ImageOptions())
	if err != nil {
		return nil, err
	}
	feat, err := m.Vision.EncodeImage(px)
	if err != nil {
		return nil, err
	}
	var ids []int
	if vi.QFormer.TextInput {
		if ids, err = m.Vision.Tokenize(instruction); err != nil {
			return nil, err
		}
	}
	q, err := m.Vision.QFormer(feat, ids)
	if err != nil {
		return nil, err
	}
	return m.Vision.Project(q)
}
