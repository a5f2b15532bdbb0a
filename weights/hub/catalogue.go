package hub

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/lmconv"
)

// The converter's default weight types: the catalogue converts with them.
const (
	defaultVisionType = convert.DefaultVisionType
	defaultOPTType    = lmconv.OPTDefaultType
	defaultLLMType    = lmconv.DefaultType
)

// Model is one checkpoint of the catalogue.
type Model struct {
	Name   string // short name: "blip2-opt-2.7b"
	Repo   string // Hub repository: "Salesforce/blip2-opt-2.7b"
	Family string // config.json model_type: "blip-2" or "instructblip"
	// LLM is the language model's text_config.model_type: "opt", "t5" or
	// "llama"; "" for the retrieval checkpoints, which cannot answer.
	LLM       string
	ImageSize int // vision input, pixels a side: 224, or 364 for the -coco fine-tunes
	// VisionType and LLMType are the converter's default weight types for
	// this checkpoint (convert --vision-type / --llm-type); LLMType is ""
	// without a language model.
	VisionType, LLMType string
	// Params counts the parameters conversion writes (vision, Q-Former,
	// projection, language model).
	Params int64
	// DownloadBytes is what a pull fetches: the float32 safetensors shards
	// of the layout listed for the repository's main branch (see Layout),
	// computed from the parameter count; tokenizer and config files add a
	// few MB more.
	DownloadBytes int64
	// ConvertedBytes is the size of vision.gguf + llm.gguf at VisionType
	// and LLMType, estimated from the tensor shapes (see sizes.go).
	ConvertedBytes int64
	// RAMBytes estimates the memory a chat needs: the converted weights, the
	// language model's KV cache at its default context, and 512 MiB for
	// activations and buffers.
	RAMBytes int64
	// Layout is the checkpoint layout main held when the repository was
	// last seen: "new" (the Nov 2024 - Feb 2025 "Update for transformers"
	// rewrite: <image> tokens, padded embeddings) or "old" (2023).
	Layout string
	About  string // one line for people
}

// HasLLM reports whether the checkpoint has a language model, i.e. can
// answer questions (the retrieval checkpoints cannot).
func (m Model) HasLLM() bool { return m.LLM != "" }

// entry is one catalogue row: the facts, from which Model's sizes are
// computed.
type entry struct {
	name, repo, about string
	arch              arch
}

// entries is the catalogue. Shapes are those of the Hugging Face configs
// (../shared/reference/hub-checkpoints.md §1); layout is what each
// repository's main branch held when captured, and "old" where that is
// unknown (the -coco repositories, instructblip-vicuna-13b, the
// instructblip-flan-t5 ones).
var entries = []entry{
	{"blip2-opt-2.7b", "Salesforce/blip2-opt-2.7b", "BLIP-2, OPT 2.7B: short answers and captions",
		opt(224, 2560, 32, 10240, layoutNew)},
	{"blip2-opt-6.7b", "Salesforce/blip2-opt-6.7b", "BLIP-2, OPT 6.7B: short answers and captions",
		opt(224, 4096, 32, 16384, layoutNew)},
	{"blip2-opt-2.7b-coco", "Salesforce/blip2-opt-2.7b-coco", "BLIP-2, OPT 2.7B fine-tuned on COCO captions (364 px)",
		opt(364, 2560, 32, 10240, layoutOld)},
	{"blip2-opt-6.7b-coco", "Salesforce/blip2-opt-6.7b-coco", "BLIP-2, OPT 6.7B fine-tuned on COCO captions (364 px)",
		opt(364, 4096, 32, 16384, layoutOld)},
	{"blip2-flan-t5-xl", "Salesforce/blip2-flan-t5-xl", "BLIP-2, Flan-T5-XL: follows instructions, short answers",
		t5(224, 2048, 32, 5120, false, 2, layoutNew)},
	{"blip2-flan-t5-xl-coco", "Salesforce/blip2-flan-t5-xl-coco", "BLIP-2, Flan-T5-XL fine-tuned on COCO captions (364 px)",
		t5(364, 2048, 32, 5120, false, 2, layoutOld)},
	{"blip2-flan-t5-xxl", "Salesforce/blip2-flan-t5-xxl", "BLIP-2, Flan-T5-XXL: the largest BLIP-2",
		t5(224, 4096, 64, 10240, false, 2, layoutNew)},
	{"instructblip-vicuna-7b", "Salesforce/instructblip-vicuna-7b", "InstructBLIP, Vicuna 7B: longer, detailed answers",
		llama(4096, 32, 11008, layoutNew)},
	{"instructblip-vicuna-13b", "Salesforce/instructblip-vicuna-13b", "InstructBLIP, Vicuna 13B: longer, detailed answers",
		llama(5120, 40, 13824, layoutOld)},
	{"instructblip-flan-t5-xl", "Salesforce/instructblip-flan-t5-xl", "InstructBLIP, Flan-T5-XL: instructions, short answers",
		t5(224, 2048, 32, 5120, true, 2, layoutOld)},
	{"instructblip-flan-t5-xxl", "Salesforce/instructblip-flan-t5-xxl", "InstructBLIP, Flan-T5-XXL: instructions, short answers",
		t5(224, 4096, 64, 10240, true, 2, layoutOld)},
	{"blip2-itm-vit-g", "Salesforce/blip2-itm-vit-g", "BLIP-2 image-text matching (retrieval only, no answers)",
		retrieval(224)},
	{"blip2-itm-vit-g-coco", "Salesforce/blip2-itm-vit-g-coco", "BLIP-2 image-text matching fine-tuned on COCO (retrieval only)",
		retrieval(364)},
}

var catalogue = sync.OnceValue(func() []Model {
	out := make([]Model, len(entries))
	for i, e := range entries {
		a := e.arch
		m := Model{
			Name: e.name, Repo: e.repo, About: e.about,
			Family: "blip-2", LLM: a.llm, ImageSize: a.image,
			VisionType: defaultVisionType,
			Layout:     a.layout,
		}
		if a.instruct {
			m.Family = "instructblip"
		}
		switch a.llm {
		case "opt":
			m.LLMType = defaultOPTType
		case "t5", "llama":
			m.LLMType = defaultLLMType
		}
		s := a.sizes(m.VisionType, m.LLMType)
		m.Params, m.DownloadBytes, m.ConvertedBytes, m.RAMBytes = s.params, s.download, s.converted, s.ram
		out[i] = m
	}
	return out
})

// Catalogue returns the known checkpoints, in a stable order (by family,
// then size).
func Catalogue() []Model { return append([]Model(nil), catalogue()...) }

// Lookup finds a catalogue entry by its short name (any case) or its
// repository ("Salesforce/blip2-opt-2.7b", any case).
func Lookup(name string) (Model, bool) {
	for _, m := range catalogue() {
		if strings.EqualFold(m.Name, name) || strings.EqualFold(m.Repo, name) {
			return m, true
		}
	}
	return Model{}, false
}

// Ref names a revision of a model repository on the Hub.
type Ref struct {
	Repo     string // "ORG/NAME"
	Revision string // branch, tag or commit; "" means DefaultRevision
}

// DefaultRevision is the revision pulled when none is named.
const DefaultRevision = "main"

// Rev returns the revision, DefaultRevision when none is set.
func (r Ref) Rev() string {
	if r.Revision == "" {
		return DefaultRevision
	}
	return r.Revision
}

// String is "ORG/NAME" or "ORG/NAME@REVISION".
func (r Ref) String() string {
	if r.Revision == "" {
		return r.Repo
	}
	return r.Repo + "@" + r.Revision
}

// Resolve turns what a user typed into a Ref: a catalogue name
// ("blip2-opt-2.7b", optionally "@REVISION") or "ORG/NAME[@REVISION]". The
// catalogue entry is returned too when the repository is in it.
func Resolve(name string) (Ref, *Model, error) {
	base, rev, hasRev := strings.Cut(strings.TrimSpace(name), "@")
	if hasRev {
		if err := checkRevision(rev); err != nil {
			return Ref{}, nil, fmt.Errorf("%q: %v", name, err)
		}
	}
	if m, ok := Lookup(base); ok {
		return Ref{Repo: m.Repo, Revision: rev}, &m, nil
	}
	if !strings.Contains(base, "/") {
		return Ref{}, nil, fmt.Errorf("unknown model %q: give a catalogue name (blip2chat models) or a Hub repository as ORG/NAME[@REVISION]", name)
	}
	ref, err := ParseRef(name)
	if err != nil {
		return Ref{}, nil, err
	}
	return ref, nil, nil
}

// ParseRef parses "ORG/NAME[@REVISION]".
func ParseRef(s string) (Ref, error) {
	repo, rev, hasRev := strings.Cut(s, "@")
	if err := checkRepo(repo); err != nil {
		return Ref{}, fmt.Errorf("%q: %v", s, err)
	}
	if hasRev {
		if err := checkRevision(rev); err != nil {
			return Ref{}, fmt.Errorf("%q: %v", s, err)
		}
	}
	return Ref{Repo: repo, Revision: rev}, nil
}

// repoPart is one half of a repository id, as the Hub allows them
// (huggingface_hub's validate_repo_id): letters, digits, '-', '_', '.',
// starting and ending with a letter or digit.
var repoPart = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$`)

func checkRepo(repo string) error {
	org, name, ok := strings.Cut(repo, "/")
	switch {
	case !ok:
		return fmt.Errorf("a Hub repository is ORG/NAME")
	case !repoPart.MatchString(org) || !repoPart.MatchString(name):
		return fmt.Errorf("invalid repository name %q (letters, digits, '-', '_' and '.' only)", repo)
	case strings.Contains(repo, "--") || strings.Contains(repo, ".."):
		return fmt.Errorf("invalid repository name %q ('--' and '..' are not allowed)", repo)
	}
	return nil
}

// checkRevision accepts what a git branch, tag or commit can be named that
// is also safe as a path under refs/ ("refs/pr/6" included).
func checkRevision(rev string) error {
	if rev == "" {
		return fmt.Errorf("empty revision after '@'")
	}
	for _, seg := range strings.Split(rev, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.HasPrefix(seg, ".") {
			return fmt.Errorf("invalid revision %q", rev)
		}
	}
	for _, r := range rev {
		if r <= ' ' || r == 0x7f || strings.ContainsRune(`\:*?"<>|~^[`, r) {
			return fmt.Errorf("invalid revision %q", rev)
		}
	}
	if len(rev) > 255 {
		return fmt.Errorf("revision too long")
	}
	return nil
}

// isCommit reports a full commit hash (40 lowercase hex digits).
func isCommit(s string) bool { return isHex(s, 40) }

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
