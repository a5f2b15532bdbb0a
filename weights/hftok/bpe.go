package hftok

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// BPE is a byte-level byte-pair-encoding tokenizer (GPT-2, OPT) as its
// files describe it: vocabulary, merges and, from tokenizer.json, added
// tokens and the model's and pre-tokenizer's options. vocab.json and
// merges.txt give GPT-2's settings: no prefix space, the GPT-2 split regex.
type BPE struct {
	Vocab  map[string]int
	Merges [][2]string // in rank order
	Added  []AddedToken

	// tokenizer.json's BPE model options.
	UnkToken                string // "" when none: unknown symbols are dropped
	FuseUnk                 bool
	ByteFallback            bool
	IgnoreMerges            bool
	ContinuingSubwordPrefix string
	EndOfWordSuffix         string

	// The ByteLevel pre-tokenizer's options.
	AddPrefixSpace bool
	UseRegex       bool
}

// GPT2 reports whether b encodes as GPT-2's tokenizer does (byte-level
// BPE, the split regex, no prefix space and none of tokenizer.json's
// model options), which is all a GGUF "gpt2" vocabulary can say.
func (b *BPE) GPT2() bool {
	return b.UseRegex && !b.AddPrefixSpace && b.UnkToken == "" && !b.FuseUnk && !b.ByteFallback &&
		!b.IgnoreMerges && b.ContinuingSubwordPrefix == "" && b.EndOfWordSuffix == ""
}

// ParseVocabJSON parses a vocab.json ({"token": id, ...}) as tokenizers
// does: entries whose value is not a number are skipped; a number must be
// a non-negative integer below 2^31.
func ParseVocabJSON(data []byte) (map[string]int, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("not a JSON object of token ids: %v", err)
	}
	if raw == nil {
		return nil, fmt.Errorf("not a JSON object of token ids")
	}
	vocab := make(map[string]int, len(raw))
	for tok, v := range raw {
		v = bytes.TrimSpace(v)
		if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
			continue // not a number
		}
		id, err := strconv.ParseUint(string(v), 10, 31)
		if err != nil {
			return nil, fmt.Errorf("token %q: id %s is not a non-negative integer below 2^31", clip(tok), v)
		}
		vocab[tok] = int(id)
	}
	return vocab, nil
}

// ParseMergesTXT parses a merges.txt: one "a b" pair per line in rank
// order; lines starting with "#version" are skipped. As in tokenizers,
// every other line, a blank one included, must be two tokens separated by
// one space.
func ParseMergesTXT(data []byte) ([][2]string, error) {
	lines, err := splitLines(data)
	if err != nil {
		return nil, err
	}
	return ParseMergeLines(lines)
}

// ParseMergeLines parses merges written as "a b" strings (the lines of
// merges.txt, tokenizer.json's string form, GGUF's tokenizer.ggml.merges),
// skipping "#version" lines.
func ParseMergeLines(lines []string) ([][2]string, error) {
	out := make([][2]string, 0, len(lines))
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "#version") {
			continue
		}
		n++
		a, b, ok := strings.Cut(l, " ")
		if !ok || strings.Contains(b, " ") {
			return nil, fmt.Errorf("merge %d (%q) is not two tokens separated by one space", n, clip(l))
		}
		out = append(out, [2]string{a, b})
	}
	return out, nil
}

// LoadBPE reads a GPT-2 style vocab.json and merges.txt.
func LoadBPE(vocabJSON, mergesTXT string) (*BPE, error) {
	vocab, err := load(vocabJSON, ParseVocabJSON)
	if err != nil {
		return nil, err
	}
	merges, err := load(mergesTXT, ParseMergesTXT)
	if err != nil {
		return nil, err
	}
	return &BPE{Vocab: vocab, Merges: merges, UseRegex: true}, nil
}

// LoadBPEDir reads the byte-level BPE tokenizer of a checkpoint folder:
// vocab.json and merges.txt when both are there (then tokenizer.json, if
// present too, gives only its added tokens), else tokenizer.json. from is
// the file the vocabulary came from, for messages. The error matches
// fs.ErrNotExist when the folder has none of these files.
func LoadBPEDir(dir string) (b *BPE, from string, err error) {
	vPath, mPath, tPath := filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt"), filepath.Join(dir, "tokenizer.json")
	if isFile(vPath) && isFile(mPath) {
		if b, err = LoadBPE(vPath, mPath); err != nil {
			return nil, "", err
		}
		if isFile(tPath) {
			tj, err := LoadTokenizerJSON(tPath)
			if err != nil {
				return nil, "", err
			}
			b.Added = tj.AddedTokens
		}
		return b, "vocab.json", nil
	}
	tj, err := LoadTokenizerJSON(tPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("%s: no byte-level BPE tokenizer (vocab.json and merges.txt, or tokenizer.json): %w", dir, fs.ErrNotExist)
	}
	if err != nil {
		return nil, "", err
	}
	if b, err = tj.BPE(); err != nil {
		return nil, "", fmt.Errorf("%s: %v", tPath, err)
	}
	return b, "tokenizer.json", nil
}

func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// ByteLevelRune is the printable rune that stands for byte b in a
// byte-level BPE vocabulary (GPT-2's bytes_to_unicode): printable Latin-1
// bytes stand for themselves; the other 68 (controls, space, 0x7F-0xA0,
// 0xAD) map to U+0100 upwards in byte order, so that every vocabulary entry
// is visible text.
func ByteLevelRune(b byte) rune {
	printable := func(b int) bool {
		return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
	}
	if printable(int(b)) {
		return rune(b)
	}
	n := 0 // non-printable bytes before b
	for c := 0; c < int(b); c++ {
		if !printable(c) {
			n++
		}
	}
	return rune(256 + n)
}
