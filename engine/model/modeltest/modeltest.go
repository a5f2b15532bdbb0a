// Package modeltest holds test helpers shared by blip2chat's language-model
// packages: the golden cases of testdata/golden, model folders converted
// from them (cached for the test process) and the loaded llama.cpp library
// (the folder and tiny random models come from engine/llamacpp/llamatest).
// Only tests import it.
package modeltest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/blip2chat/blip2chat/engine/llamacpp/capi"
	"github.com/blip2chat/blip2chat/engine/llamacpp/llamatest"
	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
	"github.com/blip2chat/blip2chat/weights/lmconv"
	"github.com/blip2chat/blip2chat/weights/safetensors"
)

// GoldenDir is testdata/golden inside the repository.
func GoldenDir(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(llamatest.RepoRoot(tb), "testdata", "golden")
}

// Lib loads the llama.cpp library (once per process).
func Lib(tb testing.TB) *capi.Library {
	tb.Helper()
	l, err := capi.Load(capi.Options{Dir: LibDir(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// Case is one golden case.
type Case struct {
	Name     string
	Dir      string // testdata/golden/<name>
	HF       string // its checkpoint folder
	Family   string // "blip-2" or "instructblip"
	TextType string // text_config.model_type: "llama", "t5", "opt"
	NEmbd    int    // the language model's embedding width (the soft tokens')
	Golden   Golden
}

// OtherWidth is an embedding width that differs from the case's, for
// mismatch tests.
func (c *Case) OtherWidth() int {
	if c.NEmbd == 256 {
		return 512
	}
	return 256
}

// Golden is golden.json.
type Golden struct {
	Prompt          string  `json:"prompt"`
	PromptIDs       []int32 `json:"prompt_ids"`
	QFormerInputIDs []int   `json:"qformer_input_ids"`
	GreedyIDs       []int32 `json:"greedy_ids"`
	GreedySteps     []struct {
		Token   int32   `json:"token"`
		Top2Gap float64 `json:"top2_gap"`
	} `json:"greedy_steps"`
	ForcedDecoderInputIDs []int32 `json:"forced_decoder_input_ids"`
	DecoderStartTokenID   *int32  `json:"decoder_start_token_id"`
	Image                 string  `json:"image"`
}

// MinGap is the top-2 logit margin below which a greedy step may flip
// under a different summation order (testdata/golden/README.md).
const MinGap = 0.05

// ComparableSteps is the number of leading greedy steps whose tokens must
// match: up to the first step with a top-2 gap below MinGap.
func (g *Golden) ComparableSteps() int {
	for i, s := range g.GreedySteps {
		if s.Top2Gap < MinGap {
			return i
		}
	}
	return len(g.GreedySteps)
}

// Cases lists the golden cases whose language model is one of textTypes
// (all with a language model when none are given), sorted by name.
func Cases(tb testing.TB, textTypes ...string) []Case {
	tb.Helper()
	root := GoldenDir(tb)
	ents, err := os.ReadDir(root)
	if err != nil {
		tb.Fatal(err)
	}
	var out []Case
	for _, e := range ents {
		dir := filepath.Join(root, e.Name())
		hf := filepath.Join(dir, "hf")
		data, err := os.ReadFile(filepath.Join(dir, "golden.json"))
		if err != nil || !e.IsDir() {
			continue
		}
		cfg, err := hfconfig.Load(hf)
		if err != nil {
			tb.Fatalf("%s: %v", hf, err)
		}
		c := Case{Name: e.Name(), Dir: dir, HF: hf, Family: cfg.ModelType, TextType: cfg.Text.ModelType, NEmbd: cfg.Text.HiddenSize}
		if c.TextType == "t5" {
			c.NEmbd = cfg.Text.DModel
		}
		if err := json.Unmarshal(data, &c.Golden); err != nil {
			tb.Fatalf("%s/golden.json: %v", dir, err)
		}
		if len(c.Golden.GreedyIDs) == 0 || c.TextType == "" {
			continue // no language model (image-text matching)
		}
		if len(textTypes) > 0 && !contains(textTypes, c.TextType) {
			continue
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if len(out) == 0 {
		tb.Fatalf("no golden case with a %v language model in %s", textTypes, root)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Tensors opens the case's golden.safetensors (closed at the end of the test).
func (c *Case) Tensors(tb testing.TB) *safetensors.File {
	tb.Helper()
	f, err := safetensors.Open(filepath.Join(c.Dir, "golden.safetensors"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}

// Float32 reads a golden tensor as float32 with its shape.
func Float32(tb testing.TB, f *safetensors.File, name string) ([]float32, []int) {
	tb.Helper()
	t, ok := f.Tensor(name)
	if !ok {
		tb.Fatalf("golden tensor %s missing", name)
	}
	v, err := t.Float32()
	if err != nil {
		tb.Fatalf("golden tensor %s: %v", name, err)
	}
	return v, t.Shape
}

var (
	cacheMu  sync.Mutex
	cacheDir string
	built    = map[string]string{}
	building = map[string]*sync.Mutex{}
)

// ModelDir converts the case's checkpoint into a model folder (vision.gguf
// with f32 weights, llm.gguf of llmType: "f32", "f16", "q8_0" or
// "q4_k_m"), once per process; the folder must not be modified. Run
// the tests with Main, which removes the folders.
func ModelDir(tb testing.TB, c Case, llmType string) string {
	tb.Helper()
	key := c.Name + "/" + llmType
	cacheMu.Lock()
	if cacheDir == "" {
		d, err := os.MkdirTemp("", "blip2chat-modeltest-")
		if err != nil {
			cacheMu.Unlock()
			tb.Fatal(err)
		}
		cacheDir = d
	}
	mu := building[key]
	if mu == nil {
		mu = &sync.Mutex{}
		building[key] = mu
	}
	cacheMu.Unlock()

	mu.Lock()
	defer mu.Unlock()
	cacheMu.Lock()
	dir, ok := built[key]
	cacheMu.Unlock()
	if ok {
		return dir
	}
	dir = filepath.Join(cacheDir, c.Name+"-"+llmType)
	if err := BuildModelDir(c.HF, dir, llmType, LibDir(tb)); err != nil {
		tb.Fatalf("converting %s (%s): %v", c.Name, llmType, err)
	}
	cacheMu.Lock()
	built[key] = dir
	cacheMu.Unlock()
	return dir
}

// BuildModelDir converts the checkpoint hfDir into dir as `blip2chat
// convert --vision-type f32 --llm-type llmType` does, quantizing through
// the llama.cpp library in libDir when the type needs it.
func BuildModelDir(hfDir, dir, llmType, libDir string) error {
	_, err := convert.Convert(context.Background(), hfDir, dir, convert.Options{VisionType: "f32", LLMType: llmType})
	if err != nil {
		return err
	}
	t, err := lmconv.ParseType(llmType)
	if err != nil {
		return err
	}
	if !t.Quantize {
		return nil
	}
	lib, err := capi.Load(capi.Options{Dir: libDir})
	if err != nil {
		return err
	}
	return lmconv.Finish(filepath.Join(dir, "llm.gguf"), t, func(in, out string, ftype int32) error {
		p := lib.DefaultQuantizeParams()
		p.FType = ftype
		p.NThread = 2
		return lib.Quantize(in, out, p)
	})
}

// Main runs a package's tests, then removes the model folders ModelDir
// made; call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// Cleanup removes the model folders ModelDir made.
func Cleanup() {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if cacheDir != "" {
		os.RemoveAll(cacheDir)
		cacheDir = ""
		built = map[string]string{}
	}
}

// MaxAbsDiff is the largest |a[i]-b[i]|; lengths must match.
func MaxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		panic(fmt.Sprintf("MaxAbsDiff: lengths %d and %d", len(a), len(b)))
	}
	var m float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		if d < 0 {
			d = -d
		}
		if d > m || d != d {
			m = d
		}
	}
	return m
}

// LinkModelDir makes a temporary model folder holding the files of the
// model folder dir (symbolic links) and, when genConfig is not nil, a
// generation_config.json with that content, replacing dir's.
func LinkModelDir(tb testing.TB, dir string, genConfig []byte) string {
	tb.Helper()
	out := tb.TempDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range ents {
		if genConfig != nil && e.Name() == "generation_config.json" {
			continue
		}
		if err := os.Symlink(filepath.Join(dir, e.Name()), filepath.Join(out, e.Name())); err != nil {
			tb.Fatal(err)
		}
	}
	if genConfig != nil {
		if err := os.WriteFile(filepath.Join(out, "generation_config.json"), genConfig, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

// GenerationConfig is the case's generation_config.json (what convert
// copies into the model folder).
func (c *Case) GenerationConfig(tb testing.TB) []byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(c.HF, "generation_config.json"))
	if err != nil {
		tb.Fatal(err)
	}
	return data
}
