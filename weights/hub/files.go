package hub

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// configFiles are the non-weight files conversion reads, at the top of the
// repository; the tokenizer ones also under qformer_tokenizer/
// (InstructBLIP's Q-Former tokenizer).
var (
	configFiles = []string{
		"config.json", "generation_config.json", "preprocessor_config.json", "processor_config.json",
	}
	tokenizerFiles = []string{
		"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
		"tokenizer.model", "spiece.model", // SentencePiece: LLaMA, T5
		"vocab.json", "merges.txt", // GPT-2 BPE: OPT
		"vocab.txt", // WordPiece: the Q-Former's BERT
	}
)

// indexFile is the index of a sharded safetensors checkpoint.
const indexFile = "model.safetensors.index.json"

// Needed reports whether conversion needs the repository file at path (a
// slash-separated path as the tree API lists it): the configs, the
// tokenizer files (also in qformer_tokenizer/), and the top-level
// safetensors weights and index. PyTorch pickles (*.bin, *.pt), TensorFlow
// (*.h5), Flax (*.msgpack), Rust (*.ot) weights and everything else are
// skipped. Which safetensors files are taken is decided by Select.
func Needed(p string) bool {
	dir, base := path.Split(p)
	switch dir {
	case "":
		return slices.Contains(configFiles, base) || slices.Contains(tokenizerFiles, base) ||
			base == indexFile || strings.HasSuffix(base, ".safetensors")
	case "qformer_tokenizer/":
		return slices.Contains(tokenizerFiles, base)
	}
	return false
}

// Select picks the files to download from a commit's listing: every file
// Needed, with the weights chosen as transformers (and the converter)
// load them: model.safetensors alone when present, otherwise every
// top-level *.safetensors file (the shards the index names; their names are
// never assumed). It fails when the listing has no config.json or no
// safetensors weights.
func Select(files []File) ([]File, error) {
	var out []File
	single, config, weights := false, false, false
	for _, f := range files {
		switch f.Path {
		case "model.safetensors":
			single = true
		case "config.json":
			config = true
		}
		if !strings.Contains(f.Path, "/") && strings.HasSuffix(f.Path, ".safetensors") {
			weights = true
		}
	}
	if !config {
		return nil, fmt.Errorf("no config.json: not a transformers checkpoint")
	}
	if !weights {
		var others []string
		for _, f := range files {
			if isOtherWeights(f.Path) {
				others = append(others, f.Path)
			}
		}
		if len(others) > 0 {
			return nil, fmt.Errorf("no .safetensors weights, only %s, which blip2chat does not load (PyTorch pickles can run code)", strings.Join(others, ", "))
		}
		return nil, fmt.Errorf("no .safetensors weights")
	}
	for _, f := range files {
		if !Needed(f.Path) {
			continue
		}
		if single && strings.HasSuffix(f.Path, ".safetensors") && f.Path != "model.safetensors" {
			continue
		}
		if single && f.Path == indexFile {
			continue
		}
		out = append(out, f)
	}
	return out, nil
}

func isOtherWeights(p string) bool {
	for _, ext := range []string{".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".ot"} {
		if strings.HasSuffix(p, ext) {
			return true
		}
	}
	return false
}

// checkPath refuses a listed path that could land outside the snapshot
// folder or means different files on different systems: absolute paths,
// "..", ".", empty segments, backslashes, drive letters and colons, control
// characters.
func checkPath(p string) error {
	bad := func(why string) error { return fmt.Errorf("unsafe file path %q in the listing (%s)", p, why) }
	switch {
	case p == "":
		return bad("empty")
	case strings.HasPrefix(p, "/"):
		return bad("absolute")
	case strings.ContainsAny(p, `\:`):
		return bad(`'\' or ':'`)
	case len(p) > 1024:
		return bad("too long")
	}
	for _, r := range p {
		if r < ' ' || r == 0x7f {
			return bad("control character")
		}
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return bad("'..', '.' or an empty segment")
		}
	}
	if !filepath.IsLocal(filepath.FromSlash(p)) {
		return bad("not a local path")
	}
	return nil
}
