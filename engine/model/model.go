// Package model opens a blip2chat model folder (MODEL_DIR, written by
// `blip2chat convert`): vision.gguf for the ViT, Q-Former and projection,
// and llm.gguf (or another GGUF of the same language model) run by the
// backend for its architecture (OpenLLM): engine/lm/opt for OPT,
// engine/lm/llamacpp (llama.cpp) for the others (LLaMA, T5).
//
//	m, err := model.Open("models/blip2-opt-2.7b", model.Options{})
//	defer m.Close()
//	c, err := m.NewChat(m.DefaultSettings())
//	defer c.Close()
//	img, err := imageprep.Load(ctx, "cat.jpg")
//	err = c.SetImage(ctx, img, "cat.jpg")
//	turn, err := c.Ask(ctx, "what is in the image?", func(s string) { fmt.Print(s) })
package model

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/blip2chat/blip2chat/engine/chat"
	"github.com/blip2chat/blip2chat/engine/imageprep"
	"github.com/blip2chat/blip2chat/engine/kernels"
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/engine/lm/llamacpp"
	"github.com/blip2chat/blip2chat/engine/lm/opt"
	"github.com/blip2chat/blip2chat/engine/vision"
	"github.com/blip2chat/blip2chat/internal/safefile"
	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/lmconv"
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
	// Threads are the vision side's; Threads, NCtx and Exact are also the
	// defaults of the chats' settings (see chat.Settings).
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

// ErrNoLLM is returned for a model folder without llm.gguf; commands add
// what the user can do (ask: give one with --llm).
var ErrNoLLM = errors.New("no " + LLMFile + " (was it converted with --vision-only?)")

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
var archFamily = map[string]string{"llama": "llama", "t5": "t5", lmconv.OPTArch: "opt"}

// checkDir checks that dir is a folder.
func checkDir(dir string) error {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: no such model folder (make one with 'blip2chat convert')", safefile.Name(dir))
	}
	if err != nil {
		return fmt.Errorf("model folder: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a model folder (it should hold %s and %s, written by 'blip2chat convert')", safefile.Name(dir), VisionFile, LLMFile)
	}
	return nil
}

// statFile checks that the model file p is there: nil, ErrNotExist for a
// missing one, and any other error (permission denied, a loop of links)
// as it is, so that it is not reported as missing.
func statFile(p string) error {
	_, err := os.Stat(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot read %s: %w", safefile.Name(p), errors.Unwrap(err))
	}
	return err
}

// VisionPath returns the vision file of the model folder dir, checking
// that it is there.
func VisionPath(dir string) (string, error) {
	if err := checkDir(dir); err != nil {
		return "", err
	}
	p := filepath.Join(dir, VisionFile)
	if err := statFile(p); errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s: no %s: convert a checkpoint into it with 'blip2chat convert'", safefile.Name(dir), VisionFile)
	} else if err != nil {
		return "", err
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
	if err := statFile(p); errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s: %w", safefile.Name(dir), ErrNoLLM)
	} else if err != nil {
		return "", err
	}
	return p, nil
}

// OpenLLM opens the language model GGUF at path with the backend for its
// general.architecture: OPT in Go, the others in llama.cpp (found in the
// folder llamaLib, "" searches). The file is opened once: the backend
// takes it over.
func OpenLLM(path, llamaLib string, o lm.OpenOptions) (lm.Model, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	arch, _ := f.String(gguf.KeyArchitecture)
	switch arch {
	case "":
		f.Close()
		return nil, fmt.Errorf("%s: no general.architecture: not a language model GGUF", path)
	case "blip2-vision":
		f.Close()
		return nil, fmt.Errorf("%s is a vision file, not a language model (give the folder's %s)", path, LLMFile)
	case lmconv.OPTArch:
		return opt.OpenFile(f, path)
	}
	return llamacpp.OpenFile(f, path, llamacpp.Options{OpenOptions: o, LibDir: llamaLib})
}

// OpenVision loads only the vision side of the model folder dir.
func OpenVision(dir string, o vision.Options) (*vision.Model, error) {
	p, err := VisionPath(dir)
	if err != nil {
		return nil, err
	}
	return vision.Load(p, o)
}

// Check reports whether the files of the model folder dir (with o.LLMPath
// replacing its llm.gguf) load and belong together, as Open would, but
// loads only the language model's vocabulary.
func Check(dir string, o Options) error {
	v, err := OpenVision(dir, vision.Options{Threads: 1}) // only its metadata is read
	if err != nil {
		return err
	}
	defer v.Close()
	vi := v.Info()
	vpath := filepath.Join(dir, VisionFile)
	if vi.IsRetrieval() {
		return fmt.Errorf("%s is %w", dir, ErrRetrievalModel)
	}
	if err := answers(vpath, vi); err != nil {
		return err
	}
	llmPath, err := LLMPath(dir, o.LLMPath)
	if err != nil {
		return err
	}
	m, err := OpenLLM(llmPath, o.LlamaLib, lm.OpenOptions{Log: o.Log, VocabOnly: true})
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
	if err := refuseRetrieval(dir, vpath); err != nil {
		return nil, err
	}
	llmPath, err := LLMPath(dir, o.LLMPath)
	if err != nil {
		return nil, err
	}
	progress("vision", 0)
	v, err := vision.Load(vpath, vision.Options{Threads: o.Threads})
	if err != nil {
		return nil, err
	}
	progress("vision", 1)
	vi := v.Info()
	if err := answers(vpath, vi); err != nil {
		v.Close()
		return nil, err
	}
	progress("language model", 0)
	m, err := OpenLLM(llmPath, o.LlamaLib, lm.OpenOptions{Log: o.Log, GPULayers: o.GPULayers,
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

// answers checks that the vision file makes soft tokens for a language
// model.
func answers(vpath string, vi *vision.Info) error {
	if vi.LLMFamily == "" || vi.ProjectionSize == 0 {
		return fmt.Errorf("%s has no language projection (%s): it cannot answer questions", vpath, vi.Architecture)
	}
	return nil
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

// Row is one fact about the model for display: {"Vision", "ViT 39 layers
// × 1408, ..."}.
type Row struct{ Label, Value string }

// Details describe the model for /info: the vision side, the language
// model and the CPU features the kernels use (lm.Info.Backend says what
// runs the language model).
func (m *Model) Details() []Row {
	vi, li := m.Vision.Info(), m.LM.Info()
	return []Row{
		{"Vision", fmt.Sprintf("ViT %d layers × %d, %d px, patch %d, %s weights; Q-Former %d queries",
			vi.Vision.Layers, vi.Vision.HiddenSize, vi.Vision.ImageSize, vi.Vision.PatchSize, vi.WeightType, vi.NumQueryTokens)},
		{"Language", fmt.Sprintf("%s, %d-wide, vocab %d, trained context %d", li.Arch, li.NEmbd, li.NVocab, li.NCtxTrain)},
		{"CPU", kernels.Features()},
	}
}

// Template is the model family's prompt template, with the vision file's
// prompt format.
func (m *Model) Template() chat.Template {
	vi := m.Vision.Info()
	return chat.TemplateFor(vi.Family, vi.PromptFormat)
}

// DefaultSettings are the chat settings this model starts with: greedy
// answers (BLIP-2's evaluation setting), the family's template and the
// Open options' threads, context size and Exact.
func (m *Model) DefaultSettings() chat.Settings {
	s := chat.DefaultSettings()
	s.Template = m.Template().Turn
	s.Threads, s.NCtx, s.Exact = m.opts.Threads, m.opts.NCtx, m.opts.Exact
	return s
}

// NewChat starts a conversation with settings s (start from
// DefaultSettings); zero Template, Threads and NCtx take DefaultSettings'
// values, and Exact is on when Open's options say so.
func (m *Model) NewChat(s chat.Settings) (*chat.Chat, error) {
	d := m.DefaultSettings()
	if s.Template == "" {
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
// projection. It returns NumQueryTokens x NEmbd floats. It stops when ctx
// is done (between the stages of preparing the image and the layers).
func (m *Model) SoftTokens(ctx context.Context, path, instruction string) ([]float32, error) {
	img, err := imageprep.Load(ctx, path)
	if err != nil {
		return nil, err
	}
	px, err := imageprep.PixelValues(ctx, img, m.Vision.Info().ImageOptions())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	feat, err := m.Vision.EncodeImage(ctx, px)
	if err != nil {
		return nil, err
	}
	return m.Vision.SoftTokens(ctx, feat, instruction)
}
