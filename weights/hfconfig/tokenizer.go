package hfconfig

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
)

// TokenizerConfig is the part of tokenizer_config.json that changes how text
// becomes ids. Pointer fields are nil when the file leaves them out, since
// the tokenizer class decides the default (LlamaTokenizer adds BOS, GPT2
// does not, ...).
type TokenizerConfig struct {
	TokenizerClass                         string // e.g. "LlamaTokenizer", "T5Tokenizer", "GPT2Tokenizer", "BertTokenizer"
	AddBOSToken, AddEOSToken               *bool
	BOSToken, EOSToken, UNKToken, PadToken string // "" when absent or null
	Legacy                                 *bool
	// ExtraIDs is the number of T5 <extra_id_N> sentinels; T5Tokenizer's
	// default 100 when a T5 tokenizer config leaves it out.
	ExtraIDs       int
	DoLowerCase    *bool
	AddPrefixSpace *bool
	// ModelMaxLength is 0 when absent or "unlimited" (transformers writes
	// 1e30 for that).
	ModelMaxLength int
	// TruncationSide is "left" or "right" (transformers' default, and ""
	// when absent): which end a too long text loses.
	TruncationSide          string
	AdditionalSpecialTokens []string
	AddedTokens             []AddedToken // from added_tokens_decoder, sorted by ID
}

// AddedToken is one entry of added_tokens_decoder.
type AddedToken struct {
	ID      int
	Content string
	Special bool
}

// LoadTokenizerConfig reads dir/tokenizer_config.json with the special
// tokens of dir/special_tokens_map.json, as transformers combines them: the
// map's bos/eos/unk/pad tokens replace the config's when the config has no
// added_tokens_decoder (files saved before transformers 4.34, such as the
// 2023 Salesforce uploads), and otherwise only fill in the ones it lacks.
// Absent files give the zero value and no error.
func LoadTokenizerConfig(dir string) (*TokenizerConfig, error) {
	t, err := LoadFile(filepath.Join(dir, "tokenizer_config.json"),
		func() *TokenizerConfig { return &TokenizerConfig{} }, parseTokenizerConfig)
	if err != nil {
		return nil, err
	}
	m, err := LoadFile(filepath.Join(dir, "special_tokens_map.json"),
		func() *TokenizerConfig { return &TokenizerConfig{} }, parseTokenizerConfig)
	if err != nil {
		return nil, err
	}
	legacy := len(t.AddedTokens) == 0
	for _, p := range []struct {
		dst *string
		src string
	}{
		{&t.BOSToken, m.BOSToken}, {&t.EOSToken, m.EOSToken}, {&t.UNKToken, m.UNKToken}, {&t.PadToken, m.PadToken},
	} {
		if p.src != "" && (legacy || *p.dst == "") {
			*p.dst = p.src
		}
	}
	return t, nil
}

// ParseTokenizerConfig parses the contents of a tokenizer_config.json.
func ParseTokenizerConfig(data []byte) (*TokenizerConfig, error) {
	t, err := parseTokenizerConfig(data)
	if err != nil {
		return nil, fmt.Errorf("hfconfig: tokenizer config: %w", err)
	}
	return t, nil
}

func parseTokenizerConfig(data []byte) (*TokenizerConfig, error) {
	m, err := decodeObject(data)
	if err != nil {
		return nil, err
	}
	r := &reader{}
	o := r.root(m)
	t := &TokenizerConfig{
		TokenizerClass: o.str("tokenizer_class", ""),
		AddBOSToken:    o.optBool("add_bos_token"),
		AddEOSToken:    o.optBool("add_eos_token"),
		BOSToken:       token(o, "bos_token"),
		EOSToken:       token(o, "eos_token"),
		UNKToken:       token(o, "unk_token"),
		PadToken:       token(o, "pad_token"),
		Legacy:         o.optBool("legacy"),
		DoLowerCase:    o.optBool("do_lower_case"),
		AddPrefixSpace: o.optBool("add_prefix_space"),
		TruncationSide: o.str("truncation_side", ""),
	}
	if t.TruncationSide != "" && t.TruncationSide != "left" && t.TruncationSide != "right" {
		o.fail("truncation_side", "%q is not \"left\" or \"right\"", t.TruncationSide)
	}
	defExtra := 0
	if t.TokenizerClass == "T5Tokenizer" || t.TokenizerClass == "T5TokenizerFast" {
		defExtra = 100
	}
	t.ExtraIDs = o.int("extra_ids", defExtra)
	o.checkRange("extra_ids", t.ExtraIDs, 0, MaxVocab)
	if n := o.float("model_max_length", 0); n >= 1 && n < MaxPositions {
		t.ModelMaxLength = int(n)
	}
	if list, ok := o.get("additional_special_tokens"); ok {
		if l, isList := list.([]any); isList {
			for i := range l {
				t.AdditionalSpecialTokens = append(t.AdditionalSpecialTokens, tokenValue(o, "additional_special_tokens", l[i]))
			}
		} else {
			o.fail("additional_special_tokens", "want a list, got %s", describe(list))
		}
	}
	if dec, ok := o.sub("added_tokens_decoder"); ok {
		for k := range dec.m {
			id, err := strconv.Atoi(k)
			if err != nil || id < 0 || id >= MaxVocab {
				dec.fail(k, "key is not a token id")
				break
			}
			e, _ := dec.sub(k)
			t.AddedTokens = append(t.AddedTokens, AddedToken{ID: id, Content: e.str("content", ""), Special: e.bool("special", false)})
		}
		sort.Slice(t.AddedTokens, func(i, j int) bool { return t.AddedTokens[i].ID < t.AddedTokens[j].ID })
	}
	if r.err != nil {
		return nil, r.err
	}
	return t, nil
}

// token reads a special token, written either as a string or as a
// serialized AddedToken object {"content": ..., ...}.
func token(o obj, key string) string {
	v, ok := o.get(key)
	if !ok {
		return ""
	}
	return tokenValue(o, key, v)
}

func tokenValue(o obj, key string, v any) string {
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		if s, ok := x["content"].(string); ok {
			return s
		}
	}
	o.fail(key, "want a string or {\"content\": string}, got %s", describe(v))
	return ""
}
