// Package hubfixture makes test copies of the real Salesforce BLIP-2 and
// InstructBLIP repositories on the Hugging Face Hub, in each of their
// layouts, with tiny weights: the golden checkpoints of testdata/golden
// rewritten into the repository's file list, configs, tokenizer files,
// shards and tensor names (../shared/reference/hub-checkpoints.md).
//
// Every catalogue entry (weights/hub.Catalogue) maps to a Spec; Files gives
// the repository's files at a Layout, Commit puts them in a fake Hub
// (weights/hub/hubtest) and WriteDir into a folder, for the converter:
//
//	h := hubtest.New(t)
//	m, _ := hub.Lookup("blip2-opt-2.7b")
//	hubfixture.Commit(t, h, m, hubfixture.New) // main -> the 2024 layout
//
// The layouts differ as the real repositories do. Old (2023): a full
// config.json without image_token_index (InstructBLIP-Vicuna's with its
// wrong bos 0 / eos 1 and torch_dtype float16 over float32 shards), no
// processor_config.json, added_tokens.json only where the tokenizer had
// added tokens (Vicuna's [PAD]), no generation_config.json, a legacy
// tokenizer_config.json (Vicuna's special tokens only in
// special_tokens_map.json), tied and duplicate tensors stored
// (OPT's lm_head, T5's three embedding copies), the vocabulary as the
// language model had it (OPT's 8 unused rows past the tokenizer; T5's 52;
// Vicuna's one [PAD] row). New (Nov 2024 - Feb 2025 "update for
// transformers"): a short config with image_token_index (and
// video_token_index for InstructBLIP), processor_config.json,
// added_tokens.json with <image> (and <video>), generation_config.json,
// tokenizer.json, embeddings resized to the tokenizer plus the
// placeholders and padded to a multiple of 64 (the new rows initialized to
// the mean row, as resize_token_embeddings does), OPT's lm_head and one T5
// embedding copy gone, other shard counts. NewUnpadded is New with the
// embeddings not padded (the Vicuna rows are UNCERTAIN). Saved is a copy
// re-saved by transformers 5 from New: one model.safetensors, the fused
// vision qkv.bias, "dtype" for "torch_dtype", rope_parameters.
//
// Every layout of a Spec holds the same weights: the converted models must
// answer alike. The old layout's are the golden checkpoint's (plus unused
// rows), so its conversion also meets the golden reference outputs.
package hubfixture

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/blip2chat/blip2chat/weights/hub"
	"github.com/blip2chat/blip2chat/weights/hub/hubtest"
)

// Layout is a revision's layout.
type Layout string

// The layouts of a repository.
const (
	Old         Layout = "old"
	New         Layout = "new"
	NewUnpadded Layout = "new-unpadded"
	Saved       Layout = "saved"
)

// Layouts lists every layout.
func Layouts() []Layout { return []Layout{Old, New, NewUnpadded, Saved} }

// Family names a kind of fixture: its golden checkpoint, language model and
// tokenizer files.
type Family string

// The fixture families.
const (
	OPT            Family = "opt"              // BLIP-2 OPT (golden blip2-opt)
	FlanT5         Family = "flan-t5"          // BLIP-2 FlanT5 (golden blip2-t5)
	LLaMA          Family = "llama"            // BLIP-2 with a LLaMA (golden blip2-llama; no Salesforce repository)
	Vicuna         Family = "vicuna"           // InstructBLIP-Vicuna (golden instructblip-llama)
	InstructFlanT5 Family = "instruct-flan-t5" // InstructBLIP-FlanT5 (instructblip-llama's vision, blip2-t5's language model)
	ITM            Family = "itm"              // BLIP-2 image-text matching (golden blip2-itm; no language model)
)

// Spec is one fixture: a family, its image size and its shard counts.
type Spec struct {
	Family Family
	// Coco says the -coco fine-tune: 364-pixel images (677 vision
	// positions, interpolated from the golden 257).
	Coco bool
	// OldShards and NewShards are the numbers of safetensors shards of the
	// old and new layouts (0: one model.safetensors).
	OldShards, NewShards int
}

// Name is a short name for test names: "opt", "flan-t5-coco", ...
func (s Spec) Name() string {
	if s.Coco {
		return string(s.Family) + "-coco"
	}
	return string(s.Family)
}

// Golden is the golden case the weights come from (the language model's,
// for InstructFlanT5).
func (s Spec) Golden() string {
	switch s.Family {
	case OPT:
		return "blip2-opt"
	case FlanT5, InstructFlanT5:
		return "blip2-t5"
	case LLaMA:
		return "blip2-llama"
	case Vicuna:
		return "instructblip-llama"
	}
	return "blip2-itm"
}

// HasLLM reports whether the fixture has a language model.
func (s Spec) HasLLM() bool { return s.Family != ITM }

// Specs lists one Spec per family and image size, for converter tests.
func Specs() []Spec {
	return []Spec{
		{Family: OPT, OldShards: 2, NewShards: 2},
		{Family: OPT, Coco: true, OldShards: 2, NewShards: 2},
		{Family: FlanT5, OldShards: 6, NewShards: 5},
		{Family: FlanT5, Coco: true, OldShards: 2, NewShards: 2},
		{Family: LLaMA, OldShards: 2, NewShards: 2},
		{Family: Vicuna, OldShards: 4, NewShards: 4},
		{Family: InstructFlanT5, OldShards: 2, NewShards: 2},
		{Family: ITM},
		{Family: ITM, Coco: true},
	}
}

// SpecFor maps a catalogue entry to its fixture, with the repository's
// shard counts (hub-checkpoints.md §1).
func SpecFor(m hub.Model) (Spec, error) {
	s := Spec{Coco: m.ImageSize == 364, OldShards: 2, NewShards: 2}
	switch {
	case m.LLM == "":
		s.Family, s.OldShards, s.NewShards = ITM, 0, 0
	case m.LLM == "opt":
		s.Family = OPT
		if strings.Contains(m.Name, "6.7b") {
			s.OldShards, s.NewShards = 4, 4
		}
	case m.LLM == "t5" && m.Family == "instructblip":
		s.Family = InstructFlanT5
		if strings.Contains(m.Name, "xxl") {
			s.OldShards, s.NewShards = 5, 5
		}
	case m.LLM == "t5":
		s.Family = FlanT5
		if strings.Contains(m.Name, "xxl") {
			s.OldShards, s.NewShards = 6, 5
		}
	case m.LLM == "llama" && m.Family == "instructblip":
		s.Family, s.OldShards, s.NewShards = Vicuna, 4, 4
		if strings.Contains(m.Name, "13b") {
			s.OldShards, s.NewShards = 6, 6
		}
	default:
		return Spec{}, fmt.Errorf("hubfixture: no fixture for %s (%s, %s)", m.Name, m.Family, m.LLM)
	}
	return s, nil
}

// Files returns the repository's files at layout l: every path the real
// repository lists (PyTorch .bin files, README.md and .gitattributes
// included, with made-up contents), small files as Data, the weights as
// LFS files. Built once per process for each Spec and Layout.
func Files(tb testing.TB, s Spec, l Layout) []hubtest.File {
	tb.Helper()
	files, err := build(tb, s, l)
	if err != nil {
		tb.Fatalf("hubfixture %s/%s: %v", s.Name(), l, err)
	}
	return files
}

// Commit commits the fixture of catalogue entry m at layout l to the fake
// Hub under m.Repo, points main at it, and returns the commit. Committing
// two layouts gives the repository both revisions, as the real ones have:
// pull the other as "NAME@COMMIT".
func Commit(tb testing.TB, h *hubtest.Hub, m hub.Model, l Layout) string {
	tb.Helper()
	s, err := SpecFor(m)
	if err != nil {
		tb.Fatal(err)
	}
	return h.Commit(m.Repo, Files(tb, s, l), "main")
}

// WriteDir writes the fixture's files into dir as a downloaded checkpoint
// folder (qformer_tokenizer/ included); the LFS files that are not
// safetensors (.bin) are left out.
func WriteDir(tb testing.TB, s Spec, l Layout, dir string) {
	tb.Helper()
	for _, f := range Files(tb, s, l) {
		if f.Data == nil {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

type key struct {
	spec   Spec
	layout Layout
}

var (
	cacheMu sync.Mutex
	cache   = map[key][]hubtest.File{}
)

func build(tb testing.TB, s Spec, l Layout) ([]hubtest.File, error) {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if f, ok := cache[key{s, l}]; ok {
		return f, nil
	}
	root, err := goldenDir()
	if err != nil {
		return nil, err
	}
	b := &builder{spec: s, layout: l, golden: root}
	files, err := b.build()
	if err != nil {
		return nil, err
	}
	cache[key{s, l}] = files
	return files, nil
}

// goldenDir finds testdata/golden in the module holding the working
// directory (tests run in their package's folder).
func goldenDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "testdata", "golden"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}
