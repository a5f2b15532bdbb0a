// Package convert turns a downloaded Hugging Face BLIP-2-family checkpoint
// (Salesforce/blip2-opt-2.7b, blip2-flan-t5-xl, instructblip-vicuna-7b, ...)
// into a model folder that blip2chat loads:
//
//	MODEL_DIR/vision.gguf  ViT, Q-Former, query tokens, language projection,
//	                       Q-Former text embeddings and WordPiece vocab
//	                       (InstructBLIP), preprocessing, family, prompt format
//	MODEL_DIR/llm.gguf     the language model, written by the converter
//	                       registered for its family (RegisterLLM)
//
// A conversion is planned before anything is written: every side builds a
// Plan (metadata plus a list of output tensors, each with the checkpoint
// tensors it reads), and planning checks every tensor's presence, dtype and
// shape against the config. Only then are the files streamed tensor by
// tensor from the memory-mapped safetensors into temporary files in
// MODEL_DIR, which are renamed into place at the very end; an error or an
// interruption leaves MODEL_DIR as it was.
//
// The language-model side follows the layout of ollama's convert package: one
// LLMConverter per text model_type ("llama", "t5", "opt"), registered from
// the converter's init, so that `blip2chat convert` stays one command.
package convert

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
	"sync"

	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
	"github.com/blip2chat/blip2chat/weights/plan"
	"github.com/blip2chat/blip2chat/weights/safetensors"
)

// Options control a conversion. The zero value converts both sides with the
// default weight types and prints nothing.
type Options struct {
	// VisionType is the type of the vision side's matrix weights: "f32",
	// "f16" or "q8_0"; "" means DefaultVisionType. Norms, biases, embeddings and small
	// tensors stay f32 whatever is asked; q8_0 applies only to 2-D matrices
	// whose input size is a multiple of 32 (the others become f16).
	VisionType string
	// LLMType is passed on to the language model's converter; "" lets it
	// choose its default.
	LLMType string
	// VisionOnly converts only the vision side (no llm.gguf), whatever the
	// language model's family.
	VisionOnly bool
	// Progress receives the progress bar (nil: none). Terminal says it is a
	// terminal, where one line is redrawn in place; otherwise plain lines
	// are printed from time to time.
	Progress io.Writer
	Terminal bool
	// Warnings receives warnings, one line each (nil: discarded).
	Warnings io.Writer
}

// Result describes a finished conversion.
type Result struct {
	Files     []string // the files written, in MODEL_DIR
	Family    string   // "blip-2" or "instructblip"
	LLMFamily string   // the text model_type ("opt", "t5", "llama"), "" if none
	Tensors   int      // tensors written
	Bytes     int64    // tensor bytes written
	Unused    []string // checkpoint tensors that no output reads, sorted
}

// Source is an opened checkpoint folder: its config and its tensors.
type Source struct {
	Dir          string
	Config       *hfconfig.Config
	Architecture string // config.json "architectures"[0]; "" when absent
	Checkpoint   *safetensors.Checkpoint
}

// Plan is one output file, fully validated: its metadata and its tensors in
// file order. Planning must not write anything; the writer calls each
// tensor's Values once, in order.
type Plan struct {
	File    string // file name inside MODEL_DIR, e.g. "llm.gguf"
	KV      []gguf.KV
	Tensors []Tensor
}

// Tensor is one output tensor: its GGUF name, type (F32, F16, BF16 or
// Q8_0) and PyTorch-order shape, the checkpoint tensors it is made from (a
// checkpoint tensor in no plan's Sources is reported as unused) and its
// values, computed when written.
type Tensor = plan.Tensor

// LLMConverter plans MODEL_DIR/llm.gguf for one language-model family.
type LLMConverter interface {
	// PlanLLM checks the text config and the checkpoint's language-model
	// tensors (those under "language_model.") and returns the plan of the
	// language model's file. It must not write anything: a plan error
	// refuses the whole conversion before any file is touched.
	PlanLLM(src *Source, opt Options) (*Plan, error)
}

// LLMConverterFunc lets a plain function be an LLMConverter.
type LLMConverterFunc func(src *Source, opt Options) (*Plan, error)

// PlanLLM calls f.
func (f LLMConverterFunc) PlanLLM(src *Source, opt Options) (*Plan, error) { return f(src, opt) }

var (
	registryMu sync.RWMutex
	registry   = map[string]LLMConverter{}
)

// RegisterLLM makes c the converter of the language models whose
// text_config.model_type is modelType ("llama", "t5", "opt", ...). It is
// meant to be called from an init function and panics on a duplicate.
func RegisterLLM(modelType string, c LLMConverter) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if c == nil {
		panic("convert: RegisterLLM with nil converter for " + modelType)
	}
	if _, dup := registry[modelType]; dup {
		panic("convert: RegisterLLM called twice for " + modelType)
	}
	registry[modelType] = c
}

// LLMFamilies lists the registered language-model families, sorted.
func LLMFamilies() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	var s []string
	for k := range registry {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

func llmConverter(modelType string) (LLMConverter, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	c, ok := registry[modelType]
	return c, ok
}

// Open opens a checkpoint folder: config.json and its safetensors. A folder
// with only PyTorch pickle files is refused (see safetensors.ErrPickle).
func Open(dir string) (*Source, error) {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s: no such folder", dir)
	case err != nil:
		return nil, err
	case !st.IsDir():
		return nil, fmt.Errorf("%s is a file; give the checkpoint's folder (the one holding config.json and the *.safetensors)", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "config.json")); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s has no config.json: not a Hugging Face checkpoint folder (download it with its *.json files, see the README)", dir)
	}
	cfg, err := hfconfig.Load(dir)
	if err != nil {
		return nil, err
	}
	arch := ""
	if len(cfg.Architectures) > 0 {
		arch = cfg.Architectures[0]
	}
	ck, err := safetensors.OpenCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	return &Source{Dir: dir, Config: cfg, Architecture: arch, Checkpoint: ck}, nil
}

// Close releases the checkpoint's memory maps.
func (s *Source) Close() error { return s.Checkpoint.Close() }

// HasLanguageModel reports whether the checkpoint holds a language model
// (tensors under "language_model.").
func (s *Source) HasLanguageModel() bool {
	for _, n := range s.Checkpoint.Names() {
		if strings.HasPrefix(n, "language_model.") {
			return true
		}
	}
	return false
}

// Expect returns the checkpoint tensor called name after checking that it
// exists, is a floating-point tensor and has exactly the given shape. The
// error names the tensor, what was expected and what was found.
func (s *Source) Expect(name string, shape ...int) (safetensors.Tensor, error) {
	return plan.Expect(s.Checkpoint, s.Dir, name, shape...)
}

// Float32 reads a checkpoint tensor as float32 (a new slice), then lets the
// kernel drop its mapped pages from this process.
func (s *Source) Float32(name string) ([]float32, error) {
	t, ok := s.Checkpoint.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("checkpoint %s: tensor %s is missing", s.Dir, name)
	}
	v, err := t.Float32()
	release(t.Data)
	return v, err
}

// Copy plans an output tensor that is the checkpoint tensor src, checked
// against srcShape and stored with the given shape (same number of
// elements: a reshape, as of a [1,N,D] parameter to [N,D]) and type.
func (s *Source) Copy(name string, typ gguf.Type, shape []int, src string, srcShape ...int) (Tensor, error) {
	if _, err := s.Expect(src, srcShape...); err != nil {
		return Tensor{}, err
	}
	if product(shape) != product(srcShape) {
		return Tensor{}, fmt.Errorf("convert: %s: shape %v does not hold %s %v", name, shape, src, srcShape)
	}
	return Tensor{Name: name, Type: typ, Shape: shape, Sources: []string{src},
		Values: func() ([]float32, error) { return s.Float32(src) }}, nil
}

func product(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// DefaultVisionType is the vision weight type when none is asked for: q8_0
// runs the ViT about 2.7x faster than f32 or f16 on CPUs with AVX-512 VNNI
// (int8 dot products; f16 runs at f32 speed) and 1.25x on plain AVX2, at
// about 1.7e-2 relative deviation from transformers on the golden cases
// (f16: 5e-4). `convert --vision-type f16` keeps the closer numbers.
const DefaultVisionType = "q8_0"

// ParseWeightType parses a weight type option: "f32", "f16", "bf16" or
// "q8_0"; "" is DefaultVisionType.
func ParseWeightType(s string) (gguf.Type, error) {
	if s == "" {
		s = DefaultVisionType
	}
	switch strings.ToLower(s) {
	case "f32":
		return gguf.TypeF32, nil
	case "f16":
		return gguf.TypeF16, nil
	case "bf16":
		return gguf.TypeBF16, nil
	case "q8_0":
		return gguf.TypeQ8_0, nil
	}
	return 0, fmt.Errorf("unknown weight type %q (want f32, f16 or q8_0)", s)
}

// MatrixType is the type a matrix weight of the given shape gets when want
// is asked: block-quantized types need the row length (the input size) to be
// a multiple of the block size, else the matrix falls back to F16; vectors
// (1-D) always stay F32.
func MatrixType(want gguf.Type, shape []int) gguf.Type {
	if len(shape) < 2 {
		return gguf.TypeF32
	}
	if bs := want.BlockSize(); bs > 1 && shape[len(shape)-1]%bs != 0 {
		return gguf.TypeF16
	}
	return want
}

// Convert converts the checkpoint in hfDir into modelDir (created if
// needed). Everything is planned and validated first; the files are then
// written under temporary names and renamed at the end, so that on any
// error, or when ctx is cancelled, modelDir is left as it was.
func Convert(ctx context.Context, hfDir, modelDir string, opt Options) (*Result, error) {
	visionType, err := ParseWeightType(opt.VisionType)
	if err != nil {
		return nil, err
	}
	if visionType == gguf.TypeBF16 {
		// The vision kernels read F32, F16 and Q8_0 only.
		return nil, fmt.Errorf("vision weight type bf16 is not supported (want f32, f16 or q8_0)")
	}
	src, err := Open(hfDir)
	if err != nil {
		return nil, err
	}
	defer src.Close()

	res := &Result{Family: src.Config.ModelType}
	var plans []*Plan

	// The language model first: refusing an unsupported family is cheaper
	// than validating the vision side.
	if !opt.VisionOnly {
		if !src.HasLanguageModel() {
			arch := src.Architecture
			if arch == "" {
				arch = "no architectures in config.json"
			}
			return nil, fmt.Errorf("checkpoint %s has no language model (%s); use --vision-only to convert the vision side", hfDir, arch)
		}
		family := src.Config.Text.ModelType
		c, ok := llmConverter(family)
		if !ok {
			return nil, fmt.Errorf("language model %q is not supported yet; use --vision-only to convert the vision side", family)
		}
		res.LLMFamily = family
		lp, err := c.PlanLLM(src, opt)
		if err != nil {
			return nil, err
		}
		plans = append(plans, lp)
	}
	warn := func(msg string) {
		if opt.Warnings != nil {
			fmt.Fprintf(opt.Warnings, "warning: %s\n", msg)
		}
	}
	vp, err := planVision(src, visionType, warn)
	if err != nil {
		return nil, err
	}
	plans = append([]*Plan{vp}, plans...)

	res.Unused = unused(src.Checkpoint.Names(), plans)
	if len(res.Unused) > 0 {
		warn(describeUnused(res.Unused))
	}

	files, n, b, err := writePlans(ctx, modelDir, plans, opt)
	if err != nil {
		return nil, err
	}
	res.Files, res.Tensors, res.Bytes = files, n, b
	return res, nil
}

// unused lists the checkpoint tensors that no plan reads.
func unused(names []string, plans []*Plan) []string {
	used := map[string]bool{}
	for _, p := range plans {
		for _, t := range p.Tensors {
			for _, s := range t.Sources {
				used[s] = true
			}
		}
	}
	var out []string
	for _, n := range names {
		if !used[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// describeUnused is the one warning line about unused tensors: how many,
// and the first few names.
func describeUnused(names []string) string {
	const show = 4
	s := fmt.Sprintf("%d checkpoint tensor(s) not used by this conversion: ", len(names))
	if len(names) <= show {
		return s + strings.Join(names, ", ")
	}
	return s + strings.Join(names[:show], ", ") + fmt.Sprintf(", ... (%d more)", len(names)-show)
}

// errStop is returned when ctx is cancelled between two tensors.
var errStop = errors.New("conversion interrupted")

// interrupted is the error of a cancelled conversion: it matches errStop
// and the context's error (errors.Is(err, context.Canceled)).
type interrupted struct {
	dir   string
	cause error
}

func (e *interrupted) Error() string {
	return fmt.Sprintf("%v; nothing written to %s", errStop, e.dir)
}

func (e *interrupted) Unwrap() []error { return []error{errStop, e.cause} }
