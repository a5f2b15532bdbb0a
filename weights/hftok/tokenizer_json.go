package hftok

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// TokenizerJSON is a tokenizer.json, the fast tokenizer's file: its added
// tokens, and its normalizer, pre-tokenizer and model still encoded, to be
// read by BPE or WordPieceVocab when the model is of that kind. Reading
// only the added tokens of any tokenizer.json (a SentencePiece one's, say)
// thus never fails on a model this package does not know.
type TokenizerJSON struct {
	AddedTokens  []AddedToken
	Normalizer   json.RawMessage // "null" or absent: none
	PreTokenizer json.RawMessage
	Model        json.RawMessage
}

// ParseTokenizerJSON parses a tokenizer.json. Added-token ids must be
// non-negative, as tokenizers' u32 ids are.
func ParseTokenizerJSON(data []byte) (*TokenizerJSON, error) {
	var tj struct {
		AddedTokens  []AddedToken    `json:"added_tokens"`
		Normalizer   json.RawMessage `json:"normalizer"`
		PreTokenizer json.RawMessage `json:"pre_tokenizer"`
		Model        json.RawMessage `json:"model"`
	}
	if err := json.Unmarshal(data, &tj); err != nil {
		return nil, fmt.Errorf("not a tokenizer.json: %v", err)
	}
	for _, a := range tj.AddedTokens {
		if a.ID < 0 {
			return nil, fmt.Errorf("added token %q has a negative id", clip(a.Content))
		}
	}
	return &TokenizerJSON{AddedTokens: tj.AddedTokens, Normalizer: tj.Normalizer, PreTokenizer: tj.PreTokenizer, Model: tj.Model}, nil
}

// LoadTokenizerJSON reads a tokenizer.json.
func LoadTokenizerJSON(path string) (*TokenizerJSON, error) {
	return load(path, ParseTokenizerJSON)
}

func isNull(m json.RawMessage) bool {
	m = bytes.TrimSpace(m)
	return len(m) == 0 || string(m) == "null"
}

// modelType is model.type; "" when the model does not say.
func (t *TokenizerJSON) modelType() (string, error) {
	if isNull(t.Model) {
		return "", fmt.Errorf("no model")
	}
	var m struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(t.Model, &m); err != nil {
		return "", fmt.Errorf("model: %v", err)
	}
	return m.Type, nil
}

// BPE reads a byte-level BPE tokenizer: model.vocab, model.merges (as "a
// b" strings or ["a", "b"] pairs) and the model's options. Only the
// ByteLevel pre-tokenizer (alone or as the one member of a Sequence) and no
// normalizer are accepted, since anything else encodes differently; the
// pre-tokenizer's options take tokenizers' defaults (add_prefix_space and
// use_regex true). dropout is ignored: encoding is then deterministic, as
// tokenizers' is with dropout unset.
func (t *TokenizerJSON) BPE() (*BPE, error) {
	typ, err := t.modelType()
	if err != nil {
		return nil, err
	}
	if typ != "" && typ != "BPE" {
		return nil, fmt.Errorf("model type %q is not BPE", typ)
	}
	var m struct {
		Vocab                   json.RawMessage `json:"vocab"`
		Merges                  json.RawMessage `json:"merges"`
		UnkToken                *string         `json:"unk_token"`
		ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
		EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
		FuseUnk                 bool            `json:"fuse_unk"`
		ByteFallback            bool            `json:"byte_fallback"`
		IgnoreMerges            bool            `json:"ignore_merges"`
	}
	if err := json.Unmarshal(t.Model, &m); err != nil {
		return nil, fmt.Errorf("model: %v", err)
	}
	if isNull(m.Vocab) || isNull(m.Merges) {
		return nil, fmt.Errorf("model has no vocab or no merges")
	}
	if !isNull(t.Normalizer) {
		return nil, fmt.Errorf("normalizer %s is not supported (byte-level BPE has none)", clip(string(t.Normalizer)))
	}
	b := &BPE{Added: t.AddedTokens, FuseUnk: m.FuseUnk, ByteFallback: m.ByteFallback, IgnoreMerges: m.IgnoreMerges}
	if m.UnkToken != nil {
		b.UnkToken = *m.UnkToken
	}
	if m.ContinuingSubwordPrefix != nil {
		b.ContinuingSubwordPrefix = *m.ContinuingSubwordPrefix
	}
	if m.EndOfWordSuffix != nil {
		b.EndOfWordSuffix = *m.EndOfWordSuffix
	}
	if err := t.byteLevel(b); err != nil {
		return nil, err
	}
	if b.Vocab, err = ParseVocabJSON(m.Vocab); err != nil {
		return nil, fmt.Errorf("model.vocab: %v", err)
	}
	if b.Merges, err = parseMergesJSON(m.Merges); err != nil {
		return nil, fmt.Errorf("model.merges: %v", err)
	}
	return b, nil
}

// byteLevel reads the ByteLevel pre-tokenizer's options into b.
func (t *TokenizerJSON) byteLevel(b *BPE) error {
	if isNull(t.PreTokenizer) {
		return fmt.Errorf("no pre_tokenizer: a byte-level BPE needs ByteLevel")
	}
	type preTokenizer struct {
		Type           string         `json:"type"`
		AddPrefixSpace *bool          `json:"add_prefix_space"`
		UseRegex       *bool          `json:"use_regex"`
		PreTokenizers  []preTokenizer `json:"pretokenizers"`
	}
	var p preTokenizer
	if err := json.Unmarshal(t.PreTokenizer, &p); err != nil {
		return fmt.Errorf("pre_tokenizer: %v", err)
	}
	if p.Type == "Sequence" && len(p.PreTokenizers) == 1 {
		p = p.PreTokenizers[0]
	}
	if p.Type != "ByteLevel" {
		return fmt.Errorf("pre_tokenizer %s is not supported (only ByteLevel)", clip(string(t.PreTokenizer)))
	}
	b.AddPrefixSpace = p.AddPrefixSpace == nil || *p.AddPrefixSpace
	b.UseRegex = p.UseRegex == nil || *p.UseRegex
	return nil
}

// parseMergesJSON reads model.merges in either of tokenizers' formats.
func parseMergesJSON(raw json.RawMessage) ([][2]string, error) {
	var lines []string
	if err := json.Unmarshal(raw, &lines); err == nil {
		return ParseMergeLines(lines)
	}
	var pairs [][]string
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return nil, fmt.Errorf("neither a list of \"a b\" strings nor of [a, b] pairs")
	}
	out := make([][2]string, len(pairs))
	for i, p := range pairs {
		if len(p) != 2 {
			return nil, fmt.Errorf("merge %d has %d tokens, not 2", i+1, len(p))
		}
		out[i] = [2]string{p[0], p[1]}
	}
	return out, nil
}

// WordPieceVocab reads a WordPiece tokenizer's model.vocab (token -> id)
// as an id-indexed list; the ids must be 0..n-1, and the vocabulary must
// hold BERT's [CLS], [SEP] and [UNK] (see CheckWordPiece).
func (t *TokenizerJSON) WordPieceVocab() ([]string, error) {
	typ, err := t.modelType()
	if err != nil {
		return nil, err
	}
	if typ != "" && typ != "WordPiece" {
		return nil, fmt.Errorf("model type %q is not WordPiece", typ)
	}
	var m struct {
		Vocab map[string]int `json:"vocab"`
	}
	if err := json.Unmarshal(t.Model, &m); err != nil {
		return nil, fmt.Errorf("model: %v", err)
	}
	vocab := make([]string, len(m.Vocab))
	seen := make([]bool, len(vocab))
	for tok, id := range m.Vocab {
		if id < 0 || id >= len(vocab) || seen[id] {
			return nil, fmt.Errorf("vocab ids are not 0..%d", len(vocab)-1)
		}
		vocab[id], seen[id] = tok, true
	}
	if err := CheckWordPiece(vocab); err != nil {
		return nil, err
	}
	return vocab, nil
}
