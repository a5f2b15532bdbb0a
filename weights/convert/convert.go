// Package convert turns a downloaded Hugging Face BLIP-2-family checkpoint
// (Salesforce/blip2-opt-2.7b, blip2-flan-t5-xl, instructblip-vicuna-7b, ...)
// into a model folder that blip2chat loads:
//
//	MODEL_DIR/vision.gguf  ViT, Q-Former, query tokens, language projection,
//	                       Q-Former text embeddings and WordPiece vocab
//	                       (InstructBLIP), preprocessing, family, prompt format
//	MODEL_DIR/llm.gguf     the language model, written by weights/lmconv
//
// A conversion is planned before anything is written: every file is a
// plan.File (metadata plus a list of output tensors, each with the
// checkpoint tensors it reads), and planning checks every tensor's
// presence, dtype and shape against the config. Only then does
// plan.WriteFiles stream the files tensor by tensor from the
// memory-mapped safetensors into temporary files in MODEL_DIR, which are
// renamed into place at the very end; an error or an interruption leaves
// MODEL_DIR as it was.
//
// This package plans the vision side; the language model's family
// (text_config.model_type) picks weights/lmconv's converter for it, as
// ollama's convert package dispatches on the architecture with a switch.
package convert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
	"github.com/blip2chat/blip2chat/weights/lmconv"
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
	// Quantizer, when set, makes a language model of a type only
	// llama.cpp's quantizer makes (q4_k_m) within Convert: the f16
	// llm.gguf it writes first is quantized before anything is renamed
	// into place, so a failure (a full disk, Ctrl-C) leaves the model
	// folder as it was and no f16 file behind. Without it llm.gguf is left
	// f16 for the caller to finish with lmconv.Finish.
	Quantizer lmconv.Quantizer

	// planLLM, when set, plans llm.gguf instead of weights/lmconv: a test
	// seam for a stand-in language model.
	planLLM func(src *Source, opt Options) (*plan.File, error)
	// freeSpace replaces the file system's free-space measure: a test seam.
	freeSpace func(dir string) (int64, bool)
}

// Result describes a finished conversion.
type Result struct {
	Files     []string // the files written, in MODEL_DIR
	Family    string   // "blip-2" or "instructblip"
	LLMFamily string   // the text model_type ("opt", "t5", "llama"), "" if none
	Tensors   int      // tensors written
	Bytes     int64    // tensor bytes written
	Unused    []string // checkpoint tensors that no output reads, sorted
	// Quantized says llm.gguf was quantized by Options.Quantizer; false
	// when it is written in its final type or left f16 for the caller.
	Quantized bool
}

// Source is an opened checkpoint folder: its config and its tensors.
type Source struct {
	Dir          string
	Config       *hfconfig.Config
	Architecture string // config.json "architectures"[0]; "" when absent
	// Checkpoint is the *safetensors.Checkpoint Open maps, or a stand-in
	// of names and shapes whose tensors are never read (weights/synth).
	Checkpoint plan.Checkpoint
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
func (s *Source) Close() error {
	if c, ok := s.Checkpoint.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

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
	t.Release()
	return v, err
}

// Copy plans an output tensor that is the checkpoint tensor src, checked
// against srcShape and stored with the given shape (same number of
// elements: a reshape, as of a [1,N,D] parameter to [N,D]) and type.
func (s *Source) Copy(name string, typ gguf.Type, shape []int, src string, srcShape ...int) (plan.Tensor, error) {
	if _, err := s.Expect(src, srcShape...); err != nil {
		return plan.Tensor{}, err
	}
	if product(shape) != product(srcShape) {
		return plan.Tensor{}, fmt.Errorf("convert: %s: shape %v does not hold %s %v", name, shape, src, srcShape)
	}
	return plan.Tensor{Name: name, Type: typ, Shape: shape, Sources: []string{src},
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

// visionWeightType parses --vision-type: f32, f16 or q8_0, the types the
// vision kernels read.
func visionWeightType(s string) (gguf.Type, error) {
	t, err := ParseWeightType(s)
	if err == nil && t == gguf.TypeBF16 {
		err = fmt.Errorf("vision weight type bf16 is not supported (want f32, f16 or q8_0)")
	}
	return t, err
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
	if _, err := visionWeightType(opt.VisionType); err != nil {
		return nil, err
	}
	src, err := Open(hfDir)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	files, err := PlanFiles(src, opt)
	if err != nil {
		return nil, err
	}
	res := &Result{Family: src.Config.ModelType}
	if !opt.VisionOnly && !isRetrieval(src) {
		res.LLMFamily = src.Config.Text.ModelType
	}
	// The language model's warnings first, as it was planned first.
	for i := len(files) - 1; i >= 0; i-- {
		for _, w := range files[i].Warnings {
			warn(opt, w)
		}
	}
	res.Unused = unused(src.Checkpoint.Names(), files)
	if len(res.Unused) > 0 {
		warn(opt, describeUnused(res.Unused))
	}
	wo := plan.WriteOptions{Progress: opt.Progress, Terminal: opt.Terminal, FreeSpace: opt.freeSpace}
	if llm := llmFile(files); llm != nil && opt.planLLM == nil {
		// The quantized file is written while the f16 one exists, whether
		// here or by the caller: the space check counts both.
		t, err := lmconv.ParseFamilyType(res.LLMFamily, opt.LLMType)
		if err != nil {
			return nil, err
		}
		wo.Extra = lmconv.QuantizedBytes(llm, t)
		if t.Quantize && opt.Quantizer != nil {
			wo.Finish = func(f *plan.File, path string) error {
				if f != llm {
					return nil
				}
				return lmconv.Finish(path, t, opt.Quantizer)
			}
			res.Quantized = true
		}
	}
	w, err := plan.WriteFiles(ctx, modelDir, files, wo)
	if err != nil {
		return nil, err
	}
	res.Files, res.Tensors, res.Bytes = w.Paths, w.Tensors, w.Bytes
	return res, nil
}

// PlanFiles validates the checkpoint src against its config and plans the
// files of its model folder: vision.gguf, then unless opt.VisionOnly
// llm.gguf and generation_config.json (see planGenerationConfig). It reads
// the config files and the tensors' headers, no weight, and writes
// nothing.
func PlanFiles(src *Source, opt Options) ([]*plan.File, error) {
	visionType, err := visionWeightType(opt.VisionType)
	if err != nil {
		return nil, err
	}
	// The language model first: refusing an unsupported family is cheaper
	// than validating the vision side.
	var llm *plan.File
	if !opt.VisionOnly && !isRetrieval(src) { // a retrieval checkpoint has no language model
		if llm, err = planLLM(src, opt); err != nil {
			return nil, err
		}
	}
	vision, err := planVision(src, visionType)
	if err != nil {
		return nil, err
	}
	if llm == nil {
		return []*plan.File{vision}, nil
	}
	gen, err := planGenerationConfig(src)
	if err != nil {
		return nil, err
	}
	return []*plan.File{vision, llm, gen}, nil
}

// planLLM plans llm.gguf with weights/lmconv, at the family's --llm-type
// default when opt.LLMType is "". For q4_k_m (the llama.cpp families'
// default) the file is written as f16; the convert command then quantizes
// it in place with lmconv.Finish and engine/llamacpp/capi's quantizer. OPT
// takes f32, f16 or q8_0 (its default).
func planLLM(src *Source, opt Options) (*plan.File, error) {
	if !src.HasLanguageModel() {
		arch := src.Architecture
		if arch == "" {
			arch = "no architectures in config.json"
		}
		return nil, fmt.Errorf("checkpoint %s has no language model (%s); use --vision-only to convert the vision side", src.Dir, arch)
	}
	if opt.planLLM != nil {
		return opt.planLLM(src, opt)
	}
	family := src.Config.Text.ModelType
	if !slices.Contains(lmconv.Families(), family) {
		return nil, fmt.Errorf("language model %q is not supported yet; use --vision-only to convert the vision side", family)
	}
	t, err := lmconv.ParseFamilyType(family, opt.LLMType)
	if err != nil {
		return nil, err
	}
	return lmconv.PlanFile(lmconv.Source{Dir: src.Dir, Text: &src.Config.Text, Tensors: src.Checkpoint,
		Placeholders: Placeholders(src.Config)}, t)
}

// Placeholders are the ids of a checkpoint's image and video placeholder
// tokens (image_token_index, video_token_index: the 2024 layout), none in
// the 2023 layout. blip2chat never puts them in a prompt: it feeds the
// projected queries as embeddings before the prompt's tokens, which is
// what the placeholders stand for.
func Placeholders(cfg *hfconfig.Config) []int {
	var ids []int
	for _, id := range []int{cfg.ImageTokenIndex, cfg.VideoTokenIndex} {
		if id >= 0 {
			ids = append(ids, id)
		}
	}
	return ids
}

// GenerationConfigFile is the checkpoint's decoding settings, copied into
// the model folder as they are (engine/generate reads them from there).
const GenerationConfigFile = "generation_config.json"

// planGenerationConfig plans the model folder's generation_config.json:
// the checkpoint's, copied verbatim once it parses, or, when the
// checkpoint has none (the 2023 layout), the removal of one a former
// conversion into the same folder left.
func planGenerationConfig(src *Source) (*plan.File, error) {
	path := filepath.Join(src.Dir, GenerationConfigFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &plan.File{Name: GenerationConfigFile, Absent: true}, nil
	}
	if err != nil {
		return nil, err
	}
	if _, err := hfconfig.ParseGenerationConfig(data); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return &plan.File{Name: GenerationConfigFile, Data: data}, nil
}

// llmFile is the planned llm.gguf among files, nil if none.
func llmFile(files []*plan.File) *plan.File {
	for _, f := range files {
		if f.Name == lmconv.FileName {
			return f
		}
	}
	return nil
}

func warn(opt Options, msg string) {
	if opt.Warnings != nil {
		fmt.Fprintf(opt.Warnings, "warning: %s\n", msg)
	}
}

// unused lists the checkpoint tensors that no file reads or knowingly
// skips.
func unused(names []string, files []*plan.File) []string {
	used := map[string]bool{}
	for _, f := range files {
		for _, s := range f.Used() {
			used[s] = true
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
