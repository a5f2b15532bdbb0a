package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
)

// LoadBPETokenizerJSON reads a Hugging Face tokenizer.json whose model is a
// byte-level BPE (GPT-2, OPT): model.vocab, model.merges (as "a b" strings or
// ["a","b"] pairs) and added_tokens. Only the ByteLevel pre-tokenizer and no
// normalizer are accepted, since anything else would encode differently.
// As with LoadBPE, Encode does not look for added tokens in the text.
func LoadBPETokenizerJSON(path string) (*BPE, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := parseBPETokenizerJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return t, nil
}

type tokenizerJSON struct {
	AddedTokens  []addedToken    `json:"added_tokens"`
	Normalizer   json.RawMessage `json:"normalizer"`
	PreTokenizer json.RawMessage `json:"pre_tokenizer"`
	Model        *struct {
		Type                    string          `json:"type"`
		Vocab                   json.RawMessage `json:"vocab"`
		Merges                  json.RawMessage `json:"merges"`
		UnkToken                *string         `json:"unk_token"`
		ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
		EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
		FuseUnk                 bool            `json:"fuse_unk"`
		ByteFallback            bool            `json:"byte_fallback"`
		IgnoreMerges            bool            `json:"ignore_merges"`
		// dropout is ignored: encoding is always deterministic, which is
		// what tokenizers does with dropout unset.
	} `json:"model"`
}

type preTokenizerJSON struct {
	Type           string             `json:"type"`
	AddPrefixSpace *bool              `json:"add_prefix_space"`
	UseRegex       *bool              `json:"use_regex"`
	PreTokenizers  []preTokenizerJSON `json:"pretokenizers"`
}

func isNull(m json.RawMessage) bool {
	m = bytes.TrimSpace(m)
	return len(m) == 0 || string(m) == "null"
}

func parseBPETokenizerJSON(data []byte) (*BPE, error) {
	var tj tokenizerJSON
	if err := json.Unmarshal(data, &tj); err != nil {
		return nil, fmt.Errorf("not a tokenizer.json: %v", err)
	}
	if tj.Model == nil {
		return nil, fmt.Errorf("no model")
	}
	m := tj.Model
	if m.Type != "" && m.Type != "BPE" {
		return nil, fmt.Errorf("model type %q is not BPE", m.Type)
	}
	if isNull(m.Vocab) || isNull(m.Merges) {
		return nil, fmt.Errorf("model has no vocab or no merges")
	}
	if !isNull(tj.Normalizer) {
		return nil, fmt.Errorf("normalizer %s is not supported (byte-level BPE has none)", truncate(string(tj.Normalizer)))
	}
	o := bpeOptions{added: tj.AddedTokens, fuseUnk: m.FuseUnk, byteFallback: m.ByteFallback, ignoreMerges: m.IgnoreMerges}
	if m.UnkToken != nil {
		o.unk = *m.UnkToken
	}
	if m.ContinuingSubwordPrefix != nil {
		o.prefix = *m.ContinuingSubwordPrefix
	}
	if m.EndOfWordSuffix != nil {
		o.suffix = *m.EndOfWordSuffix
	}
	if err := parseByteLevel(tj.PreTokenizer, &o); err != nil {
		return nil, err
	}
	vocab, err := parseVocabJSON(m.Vocab)
	if err != nil {
		return nil, fmt.Errorf("model.vocab: %v", err)
	}
	merges, err := parseMergesJSON(m.Merges)
	if err != nil {
		return nil, fmt.Errorf("model.merges: %v", err)
	}
	return newBPE(vocab, merges, o)
}

// parseByteLevel accepts a ByteLevel pre-tokenizer, alone or as the only
// member of a Sequence, and reads its options (tokenizers' defaults:
// add_prefix_space true, use_regex true).
func parseByteLevel(raw json.RawMessage, o *bpeOptions) error {
	if isNull(raw) {
		return fmt.Errorf("no pre_tokenizer: a byte-level BPE needs ByteLevel")
	}
	var p preTokenizerJSON
	if err := json.Unmarshal(raw, &p); err != nil {
		return fmt.Errorf("pre_tokenizer: %v", err)
	}
	if p.Type == "Sequence" && len(p.PreTokenizers) == 1 {
		p = p.PreTokenizers[0]
	}
	if p.Type != "ByteLevel" {
		return fmt.Errorf("pre_tokenizer %s is not supported (only ByteLevel)", truncate(string(raw)))
	}
	o.addPrefixSpace = p.AddPrefixSpace == nil || *p.AddPrefixSpace
	o.useRegex = p.UseRegex == nil || *p.UseRegex
	return nil
}

// parseMergesJSON reads model.merges in either of tokenizers' formats.
func parseMergesJSON(raw json.RawMessage) ([][2]string, error) {
	var lines []string
	if err := json.Unmarshal(raw, &lines); err == nil {
		return splitMerges(lines)
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
