package lmconv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
	"github.com/blip2chat/blip2chat/weights/hftok"
	"github.com/blip2chat/blip2chat/weights/sentencepiece"
)

// Token types of tokenizer.ggml.token_type; a SentencePiece piece keeps its
// own type, which uses the same numbers.
const (
	tokNormal      = gguf.TokenNormal
	tokControl     = gguf.TokenControl
	tokUserDefined = gguf.TokenUserDefined
	tokUnused      = gguf.TokenUnused
	tokByte        = gguf.TokenByte
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
	sp, spName, tcfg := b.tok.sp, b.tok.spName, b.tok.cfg
	tokModel := "llama"
	if b.arch == "t5" {
		switch sp.ModelType {
		case sentencepiece.ModelUnigram:
			tokModel = "t5"
		case sentencepiece.ModelBPE:
			// Pile-T5 and the like: the script writes a LLaMA tokenizer.
		default:
			return b.errorf("%s: SentencePiece model type %s: llama.cpp's T5 needs unigram or BPE", spName, sp.ModelTypeName())
		}
	}
	v := b.spVocab(sp, spName, tcfg)
	b.add(gguf.KeyTokenizerModel, tokModel)
	b.add(gguf.KeyTokenizerPre, "default")
	b.add(gguf.KeyTokens, v.tokens)
	b.add(gguf.KeyScores, v.scores)
	b.add(gguf.KeyTokenType, v.types)
	if tokModel == "t5" {
		b.add(gguf.KeyAddSpacePrefix, sp.AddDummyPrefix)
		b.add(gguf.KeyRemoveExtraWhitespaces, sp.RemoveExtraWhitespaces)
		if len(sp.PrecompiledCharsmap) > 0 {
			b.add(gguf.KeyPrecompiledCharsmap, append([]uint8(nil), sp.PrecompiledCharsmap...))
		}
	}
	found := b.spSpecials(sp, tcfg, v.tokens)

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
		return b.errorf("the tokenizer adds a BOS token but none is defined (tokenizer_config.json, config.json, %s)", spName)
	}
	if addEOS && !found["eos"] {
		return b.errorf("the tokenizer adds an EOS token but none is defined (tokenizer_config.json, config.json, %s)", spName)
	}
	b.add(gguf.KeyAddBOS, addBOS)
	b.add(gguf.KeyAddEOS, addEOS)
	if tokModel == "llama" {
		switch {
		case tcfg.AddPrefixSpace != nil:
			b.add(gguf.KeyAddSpacePrefix, *tcfg.AddPrefixSpace)
		case !sp.AddDummyPrefix:
			// llama.cpp's SPM default is to add it; say when the model does not.
			b.add(gguf.KeyAddSpacePrefix, false)
		}
	}
	return nil
}

// sentencePiece loads the checkpoint's SentencePiece model:
// tokenizer.model, or for T5 also spiece.model (what most T5 checkpoints
// call it). name is its file name.
func (b *builder) sentencePiece() (sp *sentencepiece.Model, name string, err error) {
	files := []string{"tokenizer.model"}
	if b.arch == "t5" {
		files = append(files, "spiece.model")
	}
	for _, f := range files {
		path := filepath.Join(b.src.Dir, f)
		// Only a missing file is "none": a folder, a FIFO or a file that
		// cannot be read is an error of its own, named by Load.
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		sp, err := sentencepiece.Load(path)
		return sp, f, err
	}
	return nil, "", b.errorf("no SentencePiece tokenizer (%s) for the %s language model", strings.Join(files, " or "), b.arch)
}

// spVocabulary is a vocabulary as tokenizer.ggml.* stores it.
type spVocabulary struct {
	tokens []string
	scores []float32
	types  []int32
}

// spVocab lays the vocabulary out over the ids kept (keepRows): the
// SentencePiece pieces with their scores and types, then T5's
// <extra_id_N> sentinels, then the added tokens (added_tokens.json,
// added_tokens_decoder); ids left over are [PAD{id}] placeholders, and an
// image or video placeholder among them is a control token.
func (b *builder) spVocab(sp *sentencepiece.Model, spName string, tcfg *hfconfig.TokenizerConfig) spVocabulary {
	n := b.keep
	v := spVocabulary{tokens: make([]string, n), scores: make([]float32, n), types: make([]int32, n)}
	for i := range v.tokens {
		v.tokens[i], v.scores[i], v.types[i] = fmt.Sprintf("[PAD%d]", i), scorePadding, tokUnused
	}
	nPieces := len(sp.Pieces)
	if rows := b.src.Text.VocabSize; nPieces > rows {
		b.warn = append(b.warn, fmt.Sprintf("%s has %d pieces but vocab_size is %d: pieces %d and up are dropped",
			spName, nPieces, rows, rows))
	}
	nPieces = min(nPieces, n)
	for i, p := range sp.Pieces[:nPieces] {
		v.tokens[i], v.scores[i], v.types[i] = p.Text, p.Score, int32(p.Type)
		if v.types[i] < tokNormal || v.types[i] > tokByte {
			v.types[i] = tokNormal
		}
	}

	// T5's <extra_id_N> sentinels follow the pieces in reverse order, as
	// transformers' T5Tokenizer numbers them (extra_id_0 is the last).
	if b.arch == "t5" {
		extra := b.tok.t5Sentinels()
		for i := 0; i < extra; i++ {
			if id := len(sp.Pieces) + extra - 1 - i; id < n {
				v.tokens[id], v.scores[id], v.types[id] = fmt.Sprintf("<extra_id_%d>", i), scoreAdded, tokControl
			}
		}
	}
	for _, a := range b.tok.addedJSON {
		if a.ID >= 0 && a.ID < n {
			v.tokens[a.ID], v.scores[a.ID], v.types[a.ID] = a.Content, scoreAdded, tokUserDefined
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
			v.types[a.ID] = tokControl
		} else {
			content = strings.ReplaceAll(content, "\u2581", " ") // pre-normalized user-defined spaces
			v.types[a.ID] = tokUserDefined
		}
		v.tokens[a.ID], v.scores[a.ID] = content, scoreAdded
	}
	for _, id := range b.src.Placeholders {
		if id >= 0 && id < n {
			v.types[id] = tokControl
		}
	}
	return v
}

// spSpecials writes the special ids: the token of tokenizer_config.json's
// bos_token, ... when it is an added token, else config.json's
// bos_token_id, ... (both as gguf-py's SpecialVocab), else the vocabulary
// entry with that text, else the SentencePiece model's own id. found says
// which were.
func (b *builder) spSpecials(sp *sentencepiece.Model, tcfg *hfconfig.TokenizerConfig, tokens []string) (found map[string]bool) {
	added := b.tok.jsonAdded
	if !b.tok.hasJSON {
		for _, a := range tcfg.AddedTokens {
			added = append(added, hftok.AddedToken{ID: a.ID, Content: a.Content})
		}
	}
	specials := []struct {
		typ, key, content string
		spID              int
	}{
		{"bos", gguf.KeyBOSID, tcfg.BOSToken, sp.BOSID},
		{"eos", gguf.KeyEOSID, tcfg.EOSToken, sp.EOSID},
		{"unk", gguf.KeyUnknownID, tcfg.UNKToken, sp.UnkID},
		{"pad", gguf.KeyPaddingID, tcfg.PadToken, sp.PadID},
	}
	found = map[string]bool{}
	for _, s := range specials {
		id := specialID(s.typ, s.content, s.spID, added, b.src.Text.Raw, tokens)
		if id >= 0 {
			b.add(s.key, uint32(id))
			found[s.typ] = true
		}
	}
	return found
}

// specialID resolves one special token (see vocab); -1 when there is none.
func specialID(typ, content string, spID int, added []hftok.AddedToken, raw map[string]any, tokens []string) int {
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
