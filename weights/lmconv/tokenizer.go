package lmconv

import (
	"errors"
	"io/fs"
	"path/filepath"
	"slices"

	"github.com/blip2chat/blip2chat/weights/hfconfig"
	"github.com/blip2chat/blip2chat/weights/hftok"
	"github.com/blip2chat/blip2chat/weights/sentencepiece"
)

// tokenizer is the language model's tokenizer as the checkpoint's files
// give it, read once (readTokenizer): the settings, the SentencePiece model
// (LLaMA, T5) or the byte-level BPE (OPT), and the added tokens of each
// file that has some.
type tokenizer struct {
	cfg *hfconfig.TokenizerConfig
	// sp and spName (tokenizer.model or spiece.model) for LLaMA and T5.
	sp     *sentencepiece.Model
	spName string
	// bpe, read from bpeFrom (vocab.json or tokenizer.json), for OPT.
	bpe     *hftok.BPE
	bpeFrom string
	// addedJSON is added_tokens.json; jsonAdded tokenizer.json's
	// added_tokens, hasJSON whether there is a tokenizer.json.
	addedJSON []hftok.AddedToken
	jsonAdded []hftok.AddedToken
	hasJSON   bool
}

// readTokenizer reads the tokenizer files of b.arch's family into b.tok.
func (b *builder) readTokenizer() error {
	t := &tokenizer{}
	var err error
	if t.cfg, err = hfconfig.LoadTokenizerConfig(b.src.Dir); err != nil {
		return err
	}
	if b.arch == OPTArch {
		t.bpe, t.bpeFrom, err = hftok.LoadBPEDir(b.src.Dir)
		if errors.Is(err, fs.ErrNotExist) {
			return b.errorf("no GPT-2 tokenizer (vocab.json and merges.txt, or tokenizer.json) for the OPT language model")
		}
		if err != nil {
			return err
		}
		if !t.bpe.GPT2() {
			return b.errorf("%s: the tokenizer is not GPT-2's byte-level BPE (a prefix space, no split regex, unk/byte-fallback or subword affixes), which OPT's llm.gguf cannot describe", t.bpeFrom)
		}
	} else if t.sp, t.spName, err = b.sentencePiece(); err != nil {
		return err
	}
	t.addedJSON, err = hftok.LoadAddedTokensJSON(filepath.Join(b.src.Dir, "added_tokens.json"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	tj, err := hftok.LoadTokenizerJSON(filepath.Join(b.src.Dir, "tokenizer.json"))
	switch {
	case err == nil:
		t.jsonAdded, t.hasJSON = tj.AddedTokens, true
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	b.tok = t
	return nil
}

// t5Sentinels is the number of T5 <extra_id_N> tokens after the pieces:
// tokenizer_config.json's extra_ids, T5Tokenizer's default 100 without one.
func (t *tokenizer) t5Sentinels() int {
	if t.cfg.ExtraIDs == 0 && t.cfg.TokenizerClass == "" {
		return 100
	}
	return t.cfg.ExtraIDs
}

// isPlaceholder reports whether id is an image or video placeholder of the
// 2024 layout (config.json's image_token_index, video_token_index).
func (b *builder) isPlaceholder(id int) bool { return slices.Contains(b.src.Placeholders, id) }

// keepRows is the size of the converted vocabulary, and so the rows kept of
// the embedding and LM head, whose stored rows are text_config.vocab_size:
// every id the tokenizer gives a token (its pieces or vocabulary, T5's
// sentinels, the added tokens of added_tokens.json, tokenizer_config.json
// and tokenizer.json) up to the highest, but not the image and video
// placeholders at the end. What is cut never reaches a text: the rows
// transformers' resize_token_embeddings(pad_to_multiple_of=64) added in the
// 2024 layout (OPT 50266 -> 50304, Vicuna 32003 -> 32064), OPT's 7 unused
// fairseq rows (50265 -> 50272), T5's 28 (32100 -> 32128), and the
// placeholders, whose embeddings the model replaces by the image's and
// which were never trained as outputs. So the old and new layouts of one
// checkpoint convert to the same vocabulary and the same logits, and no
// answer can end in an id no tokenizer can decode. A placeholder below
// another token (none in the Salesforce checkpoints) stays, as a control
// token no text encodes to.
func (b *builder) keepRows() (int, error) {
	rows := b.src.Text.VocabSize
	t := b.tok
	top := -1
	defined := func(id int) {
		if id > top && id < rows && !b.isPlaceholder(id) {
			top = id
		}
	}
	switch {
	case t.sp != nil:
		for i := range t.sp.Pieces {
			defined(i)
		}
		if b.arch == "t5" {
			for i := 0; i < t.t5Sentinels(); i++ {
				defined(len(t.sp.Pieces) + i)
			}
		}
	case t.bpe != nil:
		for _, id := range t.bpe.Vocab {
			defined(id)
		}
		for _, a := range t.bpe.Added {
			defined(a.ID)
		}
	}
	for _, a := range t.addedJSON {
		defined(a.ID)
	}
	for _, a := range t.jsonAdded {
		defined(a.ID)
	}
	for _, a := range t.cfg.AddedTokens {
		defined(a.ID)
	}
	if top < 0 {
		return 0, b.errorf("the tokenizer defines no token below vocab_size %d", rows)
	}
	return top + 1, nil
}

// vocabulary reads the tokenizer (b.arch set) and decides the rows kept.
func (b *builder) vocabulary() error {
	if err := b.readTokenizer(); err != nil {
		return err
	}
	var err error
	b.keep, err = b.keepRows()
	return err
}
