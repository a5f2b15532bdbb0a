package lmconv

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/blip2chat/blip2chat/weights/hfconfig"
	"github.com/blip2chat/blip2chat/weights/sentencepiece"
)

// Token types of tokenizer.ggml.token_type (enum llama_token_type); a
// SentencePiece piece keeps its own type, which uses the same numbers.
const (
	tokNormal      int32 = 1
	tokUnknown     int32 = 2
	tokControl     int32 = 3
	tokUserDefined int32 = 4
	tokUnused      int32 = 5
	tokByte        int32 = 6
)

// Scores the script gives tokens that are not SentencePiece pieces.
const (
	scorePadding = -10000 // [PAD{id}] filling the vocabulary up to vocab_size
	scoreAdded   = -1000  // added tokens: added_tokens.json, added_tokens_decoder, T5 sentinels
)

// vocab adds the tokenizer.ggml.* keys: the SentencePiece model's pieces,
// scores and types, padded to the model's vocab_size, the special token ids
// and whether BOS/EOS are added, as convert_hf_to_gguf.py does for LLaMA
// (_set_vocab_sentencepiece) and T5 (T5Model.set_vocab).
func (b *builder) vocab() error {
	dir := b.src.Dir
	files := []string{"tokenizer.model"}
	if b.arch == "t5" {
		files = append(files, "spiece.model") // what most T5 checkpoints call it
	}
	var spPath string
	for _, f := range files {
		if st, err := os.Stat(filepath.Join(dir, f)); err == nil && st.Mode().IsRegular() {
			spPath = filepath.Join(dir, f)
			break
		}
	}
	if spPath == "" {
		return b.errorf("no SentencePiece tokenizer (%s) for the %s language model", strings.Join(files, " or "), b.arch)
	}
	sp, err := sentencepiece.Load(spPath)
	if err != nil {
		return err
	}
	tcfg, err := hfconfig.LoadTokenizerConfig(dir)
	if err != nil {
		return err
	}

	tokModel := "llama"
	if b.arch == "t5" {
		switch sp.ModelType {
		case sentencepiece.ModelUnigram:
			tokModel = "t5"
		case sentencepiece.ModelBPE:
			// Pile-T5 and the like: the script writes a LLaMA tokenizer.
		default:
			return b.errorf("%s: SentencePiece model type %s: llama.cpp's T5 needs unigram or BPE", filepath.Base(spPath), sp.ModelTypeName())
		}
	}

	n := b.src.Text.VocabSize
	tokens := make([]string, n)
	scores := make([]float32, n)
	types := make([]int32, n)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("[PAD%d]", i)
		scores[i] = scorePadding
		types[i] = tokUnused
	}
	nPieces := len(sp.Pieces)
	if nPieces > n {
		b.warn = append(b.warn, fmt.Sprintf("%s has %d pieces but vocab_size is %d: pieces %d and up are dropped",
			filepath.Base(spPath), nPieces, n, n))
		nPieces = n
	}
	for i, p := range sp.Pieces[:nPieces] {
		tokens[i], scores[i], types[i] = p.Text, p.Score, int32(p.Type)
		if types[i] < tokNormal || types[i] > tokByte {
			types[i] = tokNormal
		}
	}

	// T5's <extra_id_N> sentinels follow the pieces in reverse order, as
	// transformers' T5Tokenizer numbers them (extra_id_0 is the last).
	if b.arch == "t5" {
		extra := tcfg.ExtraIDs
		if extra == 0 && tcfg.TokenizerClass == "" {
			extra = 100 // no tokenizer_config.json: T5Tokenizer's default
		}
		for i := 0; i < extra; i++ {
			if id := len(sp.Pieces) + extra - 1 - i; id < n {
				tokens[id], scores[id], types[id] = fmt.Sprintf("<extra_id_%d>", i), scoreAdded, tokControl
			}
		}
	}
	added, err := hfconfig.LoadFile(filepath.Join(dir, "added_tokens.json"), noTokens, parseAddedTokensJSON)
	if err != nil {
		return err
	}
	for _, a := range added {
		if a.ID >= 0 && a.ID < n {
			tokens[a.ID], scores[a.ID], types[a.ID] = a.Content, scoreAdded, tokUserDefined
		}
	}
	for _, a := range tcfg.AddedTokens {
		if a.ID < 0 || a.ID >= n || (b.arch == "t5" && a.ID < len(sp.Pieces)) {
			// The T5 script ignores added_tokens_decoder; only the tokens
			// past the pieces (the sentinels) are taken from it.
			continue
		}
		content := a.Content
		if a.Special || looksSpecial(content) {
			types[a.ID] = tokControl
		} else {
			content = strings.ReplaceAll(content, "\u2581", " ") // pre-normalized user-defined spaces
			types[a.ID] = tokUserDefined
		}
		tokens[a.ID], scores[a.ID] = content, scoreAdded
	}

	b.add("tokenizer.ggml.model", tokModel)
	b.add("tokenizer.ggml.pre", "default")
	b.add("tokenizer.ggml.tokens", tokens)
	b.add("tokenizer.ggml.scores", scores)
	b.add("tokenizer.ggml.token_type", types)
	if tokModel == "t5" {
		b.add("tokenizer.ggml.add_space_prefix", sp.AddDummyPrefix)
		b.add("tokenizer.ggml.remove_extra_whitespaces", sp.RemoveExtraWhitespaces)
		if len(sp.PrecompiledCharsmap) > 0 {
			b.add("tokenizer.ggml.precompiled_charsmap", append([]uint8(nil), sp.PrecompiledCharsmap...))
		}
	}

	// Special ids: the token of tokenizer_config.json's bos_token, ... when
	// it is an added token, else config.json's bos_token_id, ... (both as
	// gguf-py's SpecialVocab), else the vocabulary entry with that text,
	// else the SentencePiece model's own id.
	tjAdded, err := hfconfig.LoadFile(filepath.Join(dir, "tokenizer.json"), noTokens, parseTokenizerJSONAdded)
	if err != nil {
		return err
	}
	if tjAdded == nil {
		for _, a := range tcfg.AddedTokens {
			tjAdded = append(tjAdded, addedToken{ID: a.ID, Content: a.Content})
		}
	}
	specials := []struct {
		typ, key, content string
		spID              int
	}{
		{"bos", "tokenizer.ggml.bos_token_id", tcfg.BOSToken, sp.BOSID},
		{"eos", "tokenizer.ggml.eos_token_id", tcfg.EOSToken, sp.EOSID},
		{"unk", "tokenizer.ggml.unknown_token_id", tcfg.UNKToken, sp.UnkID},
		{"pad", "tokenizer.ggml.padding_token_id", tcfg.PadToken, sp.PadID},
	}
	found := map[string]bool{}
	for _, s := range specials {
		id := specialID(s.typ, s.content, s.spID, tjAdded, b.src.Text.Raw, tokens)
		if id >= 0 {
			b.add(s.key, uint32(id))
			found[s.typ] = true
		}
	}

	// What the tokenizer adds around a text: LlamaTokenizer BOS, T5Tokenizer
	// EOS, unless tokenizer_config.json says otherwise.
	addBOS, addEOS := true, false
	if b.arch == "t5" {
		addBOS, addEOS = false, true
	}
	if tcfg.AddBOSToken != nil {
		addBOS = *tcfg.AddBOSToken
	}
	if tcfg.AddEOSToken != nil {
		addEOS = *tcfg.AddEOSToken
	}
	if addBOS && !found["bos"] {
		return b.errorf("the tokenizer adds a BOS token but none is defined (tokenizer_config.json, config.json, %s)", filepath.Base(spPath))
	}
	if addEOS && !found["eos"] {
		return b.errorf("the tokenizer adds an EOS token but none is defined (tokenizer_config.json, config.json, %s)", filepath.Base(spPath))
	}
	b.add("tokenizer.ggml.add_bos_token", addBOS)
	b.add("tokenizer.ggml.add_eos_token", addEOS)
	if tokModel == "llama" {
		switch {
		case tcfg.AddPrefixSpace != nil:
			b.add("tokenizer.ggml.add_space_prefix", *tcfg.AddPrefixSpace)
		case !sp.AddDummyPrefix:
			// llama.cpp's SPM default is to add it; say when the model does not.
			b.add("tokenizer.ggml.add_space_prefix", false)
		}
	}
	return nil
}

// specialID resolves one special token (see vocab); -1 when there is none.
func specialID(typ, content string, spID int, added []addedToken, raw map[string]any, tokens []string) int {
	n := len(tokens)
	if content != "" {
		for _, a := range added {
			if a.Content == content && a.ID >= 0 && a.ID < n {
				return a.ID
			}
		}
	}
	if id, ok := rawInt(raw, typ+"_token_id"); ok && id >= 0 && id < n {
		return id
	}
	if content != "" {
		for i, t := range tokens {
			if t == content {
				return i
			}
		}
	}
	if spID >= 0 && spID < n {
		return spID
	}
	return -1
}

// looksSpecial is the script's does_token_look_special: added tokens that
// some models forget to mark special.
func looksSpecial(s string) bool {
	switch s {
	case "<pad>", "<mask>", "<2mass>", "[@BOS@]":
		return true
	}
	return (strings.HasPrefix(s, "<|") && strings.HasSuffix(s, "|>")) ||
		(strings.HasPrefix(s, "<\uff5c") && strings.HasSuffix(s, "\uff5c>")) ||
		(strings.HasPrefix(s, "<unused") && strings.HasSuffix(s, ">"))
}

type addedToken struct {
	ID      int    `json:"id"`
	Content string `json:"content"`
}

// noTokens is what an absent added_tokens.json or tokenizer.json adds.
func noTokens() []addedToken { return nil }

// parseAddedTokensJSON parses the contents of an added_tokens.json
// ({"content": id, ...}).
func parseAddedTokensJSON(data []byte) ([]addedToken, error) {
	var m map[string]int
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	out := make([]addedToken, 0, len(m))
	for k, v := range m {
		out = append(out, addedToken{ID: v, Content: k})
	}
	// A deterministic order for the (odd) case of two names for one id.
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Content < out[j].Content
	})
	return out, nil
}

// parseTokenizerJSONAdded parses the added_tokens of a tokenizer.json; an
// empty (not nil) list when it has none.
func parseTokenizerJSONAdded(data []byte) ([]addedToken, error) {
	var tj struct {
		AddedTokens []addedToken `json:"added_tokens"`
	}
	if err := json.Unmarshal(data, &tj); err != nil {
		return nil, err
	}
	if tj.AddedTokens == nil {
		tj.AddedTokens = []addedToken{}
	}
	return tj.AddedTokens, nil
}
