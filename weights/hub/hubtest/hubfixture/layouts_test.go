package hubfixture_test

// These tests convert every fixture in every layout and run the converted
// models through the engine's public API (engine/model, engine/lm) and the
// llama.cpp library: an external test package, the one place weights code
// may import engine.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/engine/model"
	"github.com/blip2chat/blip2chat/engine/model/modeltest"
	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
	"github.com/blip2chat/blip2chat/weights/hub"
	"github.com/blip2chat/blip2chat/weights/hub/hubtest"
	"github.com/blip2chat/blip2chat/weights/hub/hubtest/hubfixture"
	"github.com/blip2chat/blip2chat/weights/safetensors"
)

func TestMain(m *testing.M) { modeltest.Main(m) }

// answer is what a converted model does with the golden image and a
// prompt: the prompt's ids, the logits after it and a few greedy steps.
type answer struct {
	nVocab    int
	softMax   float64 // largest |soft token|, a sanity check
	soft      []float32
	promptIDs []int32
	logits    []float32
	greedy    []int32
	odd       []int32 // the ids of a prompt holding placeholder and special-token text
}

// golden is golden.json's prompt and image.
type golden struct {
	Prompt string `json:"prompt"`
	Image  string `json:"image"`
}

func readGolden(t *testing.T, s hubfixture.Spec) golden {
	t.Helper()
	var g golden
	data, err := os.ReadFile(filepath.Join(modeltest.GoldenDir(t), s.Golden(), "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

// run opens the model folder and answers the golden prompt on the golden
// image.
func run(t *testing.T, dir string, g golden) answer {
	t.Helper()
	m, err := model.Open(dir, model.Options{LlamaLib: modeltest.LibDir(t), Threads: 1, NCtx: 128, Exact: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	info := m.LM.Info()
	a := answer{nVocab: info.NVocab}
	instruction := ""
	if m.Info().Family == "instructblip" {
		instruction = g.Prompt
	}
	if a.soft, err = m.SoftTokens(context.Background(), filepath.Join(modeltest.GoldenDir(t), "images", g.Image), instruction); err != nil {
		t.Fatal(err)
	}
	for _, x := range a.soft {
		a.softMax = max(a.softMax, float64(abs(x)))
	}
	q := m.Info().NumQueryTokens
	if a.promptIDs, err = m.LM.Tokenize(g.Prompt, true); err != nil {
		t.Fatal(err)
	}
	if a.odd, err = m.LM.Tokenize("<image> [PAD] <video></s> <extra_id_0>", false); err != nil {
		t.Fatal(err)
	}
	c, err := m.LM.NewContext(lm.ContextOptions{Threads: 1, NCtx: 128, Exact: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if info.EncoderDecoder {
		emb, err := m.LM.TokenEmbeddings(a.promptIDs)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Encode(append(slices.Clone(a.soft), emb...), q+len(a.promptIDs)); err != nil {
			t.Fatal(err)
		}
		err = c.AppendTokens([]int32{info.DecoderStart}, false)
		if err != nil {
			t.Fatal(err)
		}
	} else {
		if err := c.AppendEmbeddings(a.soft, q, false); err != nil {
			t.Fatal(err)
		}
		if err := c.AppendTokens(a.promptIDs, false); err != nil {
			t.Fatal(err)
		}
	}
	a.logits = slices.Clone(c.Logits(-1))
	for i := 0; i < 8; i++ {
		next := int32(argmax(c.Logits(-1)))
		a.greedy = append(a.greedy, next)
		if err := c.AppendTokens([]int32{next}, false); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

func abs(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// convertFixture writes the fixture's checkpoint folder and converts it
// (vision f32, the language model as llmType) as `blip2chat convert`
// does; it returns the model folder and the checkpoint folder.
func convertFixture(t *testing.T, s hubfixture.Spec, l hubfixture.Layout, llmType string) (modelDir, hfDir string) {
	t.Helper()
	hfDir, modelDir = t.TempDir(), filepath.Join(t.TempDir(), "model")
	hubfixture.WriteDir(t, s, l, hfDir)
	if !s.HasLLM() {
		if _, err := convert.Convert(context.Background(), hfDir, modelDir, convert.Options{VisionType: "f32", VisionOnly: true}); err != nil {
			t.Fatal(err)
		}
		return modelDir, hfDir
	}
	if err := modeltest.BuildModelDir(hfDir, modelDir, llmType, modeltest.LibDir(t)); err != nil {
		t.Fatal(err)
	}
	return modelDir, hfDir
}

func visionMeta(t *testing.T, dir string) *gguf.File {
	t.Helper()
	f, err := gguf.Open(filepath.Join(dir, convert.VisionFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestLayoutsAnswerAlike converts each fixture in each layout and holds
// every layout's model to the old one's: the same vocabulary, prompt ids
// (the placeholder and special-token text of a prompt included), soft
// tokens, logits and greedy ids, bit for bit; and each layout's metadata
// to what the checkpoint says (placeholders, image size, Q-Former
// tokenizer, generation_config.json). The f32 language models are compared
// for every family; Vicuna and FlanT5 also after llama.cpp's q4_k_m
// quantizer, which must load the cut vocabulary.
func TestLayoutsAnswerAlike(t *testing.T) {
	for _, s := range hubfixture.Specs() {
		types := []string{"f32"}
		if s.Family == hubfixture.Vicuna || (s.Family == hubfixture.FlanT5 && !s.Coco) {
			types = append(types, "q4_k_m")
		}
		for _, typ := range types {
			t.Run(s.Name()+"/"+typ, func(t *testing.T) {
				if typ != "f32" && testing.Short() {
					t.Skip("quantized layouts: -short")
				}
				var ref answer
				for _, l := range hubfixture.Layouts() {
					dir, hf := convertFixture(t, s, l, typ)
					checkMetadata(t, s, l, dir, hf)
					if !s.HasLLM() {
						continue
					}
					a := run(t, dir, readGolden(t, s))
					if l == hubfixture.Old {
						ref = a
						checkOld(t, s, a)
						continue
					}
					compare(t, string(l), a, ref)
				}
			})
		}
	}
}

func compare(t *testing.T, layout string, got, want answer) {
	t.Helper()
	switch {
	case got.nVocab != want.nVocab:
		t.Errorf("%s: vocabulary of %d, old layout %d", layout, got.nVocab, want.nVocab)
	case !slices.Equal(got.promptIDs, want.promptIDs) || !slices.Equal(got.odd, want.odd):
		t.Errorf("%s: prompt ids %v / %v, old layout %v / %v", layout, got.promptIDs, got.odd, want.promptIDs, want.odd)
	case !slices.Equal(got.soft, want.soft):
		t.Errorf("%s: soft tokens differ from the old layout's (max |d| %g)", layout, modeltest.MaxAbsDiff(got.soft, want.soft))
	case !slices.Equal(got.logits, want.logits):
		t.Errorf("%s: logits differ from the old layout's (max |d| %g)", layout, modeltest.MaxAbsDiff(got.logits, want.logits))
	case !slices.Equal(got.greedy, want.greedy):
		t.Errorf("%s: greedy ids %v, old layout %v", layout, got.greedy, want.greedy)
	}
}

// checkOld holds the old layout's conversion to the golden checkpoint it
// was made from: the golden vocabulary (the unused rows cut), and the
// golden soft tokens for the fixtures whose vision side is the golden's.
func checkOld(t *testing.T, s hubfixture.Spec, a answer) {
	t.Helper()
	cfg, err := hfconfig.Load(filepath.Join(modeltest.GoldenDir(t), s.Golden(), "hf"))
	if err != nil {
		t.Fatal(err)
	}
	// Vicuna's tokenizer adds [PAD] to the golden LLaMA's, and begins a
	// text with </s> = 2, not <s> = 1.
	wantVocab, bos := cfg.Text.VocabSize, int32(-1)
	if s.Family == hubfixture.Vicuna {
		wantVocab, bos = wantVocab+1, 2
	}
	if a.nVocab != wantVocab {
		t.Errorf("old layout: vocabulary of %d, want %d", a.nVocab, wantVocab)
	}
	if a.softMax == 0 || len(a.greedy) == 0 {
		t.Errorf("old layout: no answer")
	}
	if s.Coco || s.Family == hubfixture.InstructFlanT5 {
		return
	}
	f, err := safetensors.Open(filepath.Join(modeltest.GoldenDir(t), s.Golden(), "golden.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, _ := modeltest.Float32(t, f, "language_model_inputs")
	if d := modeltest.MaxAbsDiff(a.soft, want); d > 1e-4 {
		t.Errorf("old layout: soft tokens %g from the golden ones", d)
	}
	var g struct {
		PromptIDs []int32 `json:"prompt_ids"`
	}
	data, _ := os.ReadFile(filepath.Join(modeltest.GoldenDir(t), s.Golden(), "golden.json"))
	json.Unmarshal(data, &g)
	if bos >= 0 && len(g.PromptIDs) > 0 {
		g.PromptIDs[0] = bos
	}
	if s.Family != hubfixture.FlanT5 && !slices.Equal(a.promptIDs, g.PromptIDs) {
		t.Errorf("old layout: prompt ids %v, golden %v", a.promptIDs, g.PromptIDs)
	}
}

// checkMetadata holds the converted folder to the checkpoint: the
// placeholders recorded and absent from the vocabulary, the image size,
// the Q-Former tokenizer, generation_config.json copied as it is.
func checkMetadata(t *testing.T, s hubfixture.Spec, l hubfixture.Layout, dir, hf string) {
	t.Helper()
	v := visionMeta(t, dir)
	cfg, err := hfconfig.Load(hf)
	if err != nil {
		t.Fatal(err)
	}
	image, _ := v.Int(convert.KeyImageTokenIndex)
	video, _ := v.Int(convert.KeyVideoTokenIndex)
	if image != cfg.ImageTokenIndex || video != cfg.VideoTokenIndex || (s.HasLLM() && (l == hubfixture.Old) != (image < 0)) {
		t.Errorf("%s: placeholders %d %d, config %d %d", l, image, video, cfg.ImageTokenIndex, cfg.VideoTokenIndex)
	}
	size, _ := v.Int(convert.KeyVisionImageSize)
	w, _ := v.Int(convert.KeyImageWidth)
	if want := map[bool]int{false: 224, true: 364}[s.Coco]; size != want || w != want {
		t.Errorf("%s: image size %d, resized to %d; want %d", l, size, w, want)
	}
	if info, _, ok := v.Tensor(convert.TensorPosEmbd); !ok || info.Dims[1] != uint64(map[bool]int{false: 257, true: 677}[s.Coco]) {
		t.Errorf("%s: position embeddings %v", l, info.Dims)
	}
	if s.Family == hubfixture.Vicuna || s.Family == hubfixture.InstructFlanT5 {
		vocab, _ := v.Strings(convert.KeyQFormerVocab)
		n, _ := v.Int(convert.KeyQFormerMaxLength)
		side, _ := v.String(convert.KeyQFormerTruncationSide)
		if len(vocab) != 1001 || vocab[1000] != "[DEC]" || n != 128 || side != "left" {
			t.Errorf("%s: Q-Former tokenizer of %d tokens (last %q), max length %d, truncation %q", l, len(vocab), vocab[len(vocab)-1], n, side)
		}
	}
	if !s.HasLLM() {
		return
	}
	want, werr := os.ReadFile(filepath.Join(hf, "generation_config.json"))
	got, gerr := os.ReadFile(filepath.Join(dir, "generation_config.json"))
	if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
		t.Errorf("%s: generation_config.json %q (%v), checkpoint's %q (%v)", l, got, gerr, want, werr)
	}
	llm, err := gguf.Open(filepath.Join(dir, "llm.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer llm.Close()
	tokens, _ := llm.Strings(gguf.KeyTokens)
	for _, id := range convert.Placeholders(cfg) {
		if id < len(tokens) {
			t.Errorf("%s: placeholder %d is in the vocabulary of %d (%q)", l, id, len(tokens), tokens[id])
		}
	}
	if s.Family == hubfixture.Vicuna {
		// </s> (2) begins and ends a text, whatever config.json's and
		// generation_config.json's bos 0 / eos 1 say.
		bos, _ := llm.Int(gguf.KeyBOSID)
		eos, _ := llm.Int(gguf.KeyEOSID)
		if bos != 2 || eos != 2 || tokens[2] != "</s>" {
			t.Errorf("%s: bos %d eos %d (%q), want </s> = 2", l, bos, eos, tokens[eos])
		}
	}
}

// TestCatalogueFixtures: every catalogue entry has a fixture, and each
// layout of it is a repository a pull takes: config.json, weights by the
// index (or one model.safetensors), tokenizer files; the shard counts are
// the repository's.
func TestCatalogueFixtures(t *testing.T) {
	for _, m := range hub.Catalogue() {
		s, err := hubfixture.SpecFor(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range []hubfixture.Layout{hubfixture.Old, hubfixture.New} {
			var files []hub.File
			shards := 0
			for _, f := range hubfixture.Files(t, s, l) {
				size := int64(len(f.Data))
				if f.Data == nil {
					size = f.Size
				}
				files = append(files, hub.File{Path: f.Path, Size: size})
				if strings.HasPrefix(f.Path, "model-") {
					shards++
				}
			}
			sel, err := hub.Select(files)
			if err != nil {
				t.Fatalf("%s/%s: %v", m.Name, l, err)
			}
			want := s.OldShards
			if l != hubfixture.Old {
				want = s.NewShards
			}
			var names []string
			for _, f := range sel {
				names = append(names, f.Path)
				if strings.HasSuffix(f.Path, ".bin") {
					t.Errorf("%s/%s: selects %s", m.Name, l, f.Path)
				}
			}
			if shards != want || !slices.Contains(names, "config.json") {
				t.Errorf("%s/%s: %d shards (want %d), selected %v", m.Name, l, shards, want, names)
			}
			if m.Name == "blip2-flan-t5-xxl" && fmt.Sprint(s.OldShards, s.NewShards) != "6 5" {
				t.Errorf("flan-t5-xxl shards %d -> %d, want 6 -> 5", s.OldShards, s.NewShards)
			}
		}
	}
}

// TestPullCatalogue pulls every catalogue entry from the fake Hub, both
// layouts in one repository (main on the new one, the old one by its
// commit), into an empty cache, and converts the snapshots: what `blip2chat
// pull` then `convert` do. The PyTorch pickles are never fetched.
func TestPullCatalogue(t *testing.T) {
	h := hubtest.New(t)
	cache := filepath.Join(t.TempDir(), "hub")
	c, err := hub.New(hub.Config{Endpoint: h.URL, CacheDir: cache, Timeout: 10 * time.Second}, hub.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range hub.Catalogue() {
		old := hubfixture.Commit(t, h, m, hubfixture.Old)
		hubfixture.Commit(t, h, m, hubfixture.New)
		for _, rev := range []string{old, ""} {
			p, err := c.Pull(context.Background(), hub.Ref{Repo: m.Repo, Revision: rev}, hub.FetchOptions{})
			if err != nil {
				t.Fatalf("%s@%s: %v", m.Name, rev, err)
			}
			out := filepath.Join(t.TempDir(), "model")
			res, err := convert.Convert(context.Background(), p.Dir, out, convert.Options{VisionType: "f16", LLMType: "f16", VisionOnly: !m.HasLLM()})
			if err != nil {
				t.Fatalf("%s@%s: convert: %v", m.Name, rev, err)
			}
			if len(res.Unused) > 0 && m.HasLLM() {
				t.Errorf("%s@%s: unused tensors %v", m.Name, rev, res.Unused)
			}
		}
	}
	for _, r := range h.Requests() {
		if strings.HasSuffix(r.File, ".bin") {
			t.Errorf("fetched %s", r.File)
		}
	}
}
