// Package hftok reads the tokenizer files of a Hugging Face checkpoint:
//
//	vocab.json + merges.txt   GPT-2 byte-level BPE (OPT)
//	tokenizer.json            the same BPE, a BERT WordPiece vocabulary, and
//	                          the added tokens of any tokenizer
//	vocab.txt                 BERT WordPiece (the Q-Former's, InstructBLIP)
//	added_tokens.json         tokens added to a slow tokenizer
//
// It follows the Hugging Face tokenizers library: what it skips, what it
// refuses and how ids are read are tokenizers' rules, which the golden tests
// in engine/tokenizer pin id for id. This package only reads files: the
// algorithms over a vocabulary are engine/tokenizer's, and the converters
// (weights/lmconv, weights/convert) store what is read here in GGUF.
// tokenizer_config.json and special_tokens_map.json, the tokenizer's
// settings, are read by weights/hfconfig with the other config files.
package hftok

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/blip2chat/blip2chat/internal/safefile"
)

// AddedToken is a token added to a tokenizer's vocabulary: an entry of
// tokenizer.json's added_tokens or of added_tokens.json.
type AddedToken struct {
	ID      int    `json:"id"`
	Content string `json:"content"`
	Special bool   `json:"special"` // added_tokens.json does not say: false
}

// maxFileBytes bounds a tokenizer file (tokenizer.json of a large
// vocabulary is tens of MB).
const maxFileBytes = 1 << 30

// load reads the regular file path (a FIFO is refused, never waited on) and
// parses it, naming the file in errors.
func load[T any](path string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	data, err := safefile.ReadFile(path, maxFileBytes)
	if err != nil {
		return zero, err
	}
	v, err := parse(data)
	if err != nil {
		return zero, fmt.Errorf("%s: %v", path, err)
	}
	return v, nil
}

// splitLines splits a text file into lines like Rust's BufRead::lines,
// which the tokenizers readers use: "\n" or "\r\n" ends a line and a final
// line ending does not start an empty line.
func splitLines(data []byte) ([]string, error) {
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("not valid UTF-8")
	}
	if len(data) == 0 {
		return nil, nil
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines, nil
}

// clip shortens s for an error message: a damaged file's token may be long.
func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}
