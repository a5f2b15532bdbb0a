// Package tokenizer holds the text tokenizers of the BLIP-2 family that run
// in Go: BERT WordPiece for the Q-Former's text side (InstructBLIP, BLIP-2
// image-text matching) and GPT-2 byte-level BPE for OPT, plus a streaming
// UTF-8 decoder for generated tokens. Both tokenizers reproduce Hugging Face
// tokenizers (BertWordPieceTokenizer, ByteLevelBPETokenizer) id for id.
//
// They work over a vocabulary in memory: from a GGUF file (NewBPE,
// NewWordPiece) or from a checkpoint's tokenizer files as weights/hftok
// reads them (NewBPEFrom), the reader the converter uses too.
package tokenizer

import (
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// WordPiece is a BERT tokenizer: BertNormalizer (clean text, split CJK
// ideographs, optionally strip accents and lowercase), BertPreTokenizer
// (split on whitespace and punctuation), greedy longest-match-first
// WordPiece with "##" continuations, and [CLS] ... [SEP] around the result,
// as Hugging Face's BertWordPieceTokenizer and BertTokenizerFast do. It is
// safe for concurrent use.
type WordPiece struct {
	vocab         map[string]int
	pieces        []string
	lower         bool
	cls, sep, unk int // -1 when absent from the vocabulary
	// specials are the special tokens found in the vocabulary; they are
	// matched verbatim in the input text before normalization, as
	// tokenizers' added-token splitting does.
	specials []string
}

// maxWordChars is BERT's max_input_chars_per_word: longer words become [UNK].
const maxWordChars = 100

// NewWordPiece builds a tokenizer from its vocabulary (vocab[i] has id i;
// trailing whitespace of each entry is ignored, as when reading vocab.txt;
// a repeated entry maps to its last id). It never fails: without [CLS] or
// [SEP] those are not added, and without [UNK] unknown words are dropped.
func NewWordPiece(vocab []string, lowerCase bool) *WordPiece {
	t := &WordPiece{
		vocab:  make(map[string]int, len(vocab)),
		pieces: make([]string, len(vocab)),
		lower:  lowerCase,
	}
	for i, v := range vocab {
		v = strings.TrimRightFunc(v, unicode.IsSpace)
		t.pieces[i] = v
		t.vocab[v] = i
	}
	id := func(s string) int {
		if i, ok := t.vocab[s]; ok {
			return i
		}
		return -1
	}
	t.cls, t.sep, t.unk = id("[CLS]"), id("[SEP]"), id("[UNK]")
	for _, s := range [...]string{"[UNK]", "[SEP]", "[CLS]", "[PAD]", "[MASK]"} {
		if id(s) >= 0 {
			t.specials = append(t.specials, s)
		}
	}
	return t
}

// VocabSize is the number of entries of the vocabulary.
func (t *WordPiece) VocabSize() int { return len(t.pieces) }

// Piece returns the vocabulary entry of an id ("" when out of range).
func (t *WordPiece) Piece(id int) string {
	if id < 0 || id >= len(t.pieces) {
		return ""
	}
	return t.pieces[id]
}

// ID returns the id of a vocabulary entry.
func (t *WordPiece) ID(piece string) (int, bool) {
	id, ok := t.vocab[piece]
	return id, ok
}

// Encode returns [CLS] + the WordPiece ids of text + [SEP], like
// BertTokenizer's encode with add_special_tokens. Special tokens written in
// the text ("[SEP]", "[MASK]", ...) are kept as those tokens, as Hugging
// Face does.
func (t *WordPiece) Encode(text string) []int {
	var ids []int
	if t.cls >= 0 {
		ids = append(ids, t.cls)
	}
	sp := specialFinder{specials: t.specials}
	for pos := 0; pos < len(text); {
		at, tok := sp.next(text, pos)
		ids = t.encodeSegment(text[pos:at], ids)
		if tok == "" {
			break
		}
		ids = append(ids, t.vocab[tok])
		pos = at + len(tok)
	}
	if t.sep >= 0 {
		ids = append(ids, t.sep)
	}
	return ids
}

// specialFinder finds special tokens left to right, remembering where each
// one next occurs so that a long text is scanned once per token kind.
type specialFinder struct {
	specials []string
	at       []int // next occurrence of specials[k]; -1: none left; stale when < pos
}

// next returns the leftmost special token at or after pos (the longest one
// if several start there), or len(s) and "" when there is none.
func (f *specialFinder) next(s string, pos int) (int, string) {
	if f.at == nil {
		f.at = make([]int, len(f.specials))
		for k := range f.at {
			f.at[k] = math.MinInt // not searched yet
		}
	}
	best, tok := len(s), ""
	for k, sp := range f.specials {
		if f.at[k] != -1 && f.at[k] < pos {
			if i := strings.Index(s[pos:], sp); i >= 0 {
				f.at[k] = pos + i
			} else {
				f.at[k] = -1
			}
		}
		if i := f.at[k]; i >= 0 && (i < best || (i == best && len(sp) > len(tok))) {
			best, tok = i, sp
		}
	}
	return best, tok
}

// encodeSegment normalizes, pre-tokenizes and WordPiece-encodes text that
// holds no special token.
func (t *WordPiece) encodeSegment(text string, ids []int) []int {
	if text == "" {
		return ids
	}
	s := bertNormalize(text, t.lower)
	start := -1 // byte offset of the current word, -1 between words
	for i, r := range s {
		switch {
		case unicode.IsSpace(r):
			if start >= 0 {
				ids = t.encodeWord(s[start:i], ids)
				start = -1
			}
		case isBertPunct(r):
			if start >= 0 {
				ids = t.encodeWord(s[start:i], ids)
				start = -1
			}
			ids = t.encodeWord(s[i:i+utf8.RuneLen(r)], ids)
		default:
			if start < 0 {
				start = i
			}
		}
	}
	if start >= 0 {
		ids = t.encodeWord(s[start:], ids)
	}
	return ids
}

// encodeWord is greedy longest-match-first WordPiece on one word: the whole
// word becomes [UNK] when it is too long or some part of it has no match.
func (t *WordPiece) encodeWord(w string, ids []int) []int {
	if utf8.RuneCountInString(w) > maxWordChars {
		return t.appendUnk(ids)
	}
	n := len(ids)
	for start := 0; start < len(w); {
		end := len(w)
		found := -1
		for start < end {
			sub := w[start:end]
			if start > 0 {
				sub = "##" + sub
			}
			if id, ok := t.vocab[sub]; ok {
				found = id
				break
			}
			_, size := utf8.DecodeLastRuneInString(w[start:end])
			end -= size
		}
		if found < 0 {
			return t.appendUnk(ids[:n])
		}
		ids = append(ids, found)
		start = end
	}
	return ids
}

func (t *WordPiece) appendUnk(ids []int) []int {
	if t.unk >= 0 {
		ids = append(ids, t.unk)
	}
	return ids
}

// bertNormalize is tokenizers' BertNormalizer with clean_text and
// handle_chinese_chars on and strip_accents following lowercase, in its
// order: clean, space out CJK ideographs, NFD and drop nonspacing marks,
// lowercase (per character, so no final-sigma rule).
func bertNormalize(s string, lower bool) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	ascii := true
	for _, r := range s {
		if r < utf8.RuneSelf {
			// ASCII fast path with the same rules: tab, newline and CR
			// become spaces, the other C0 controls and DEL (Cc) are
			// dropped, and lowercasing is the only change NFD-and-lower
			// can make.
			switch {
			case r == '\t' || r == '\n' || r == '\r' || r == ' ':
				b.WriteByte(' ')
			case r < 0x20 || r == 0x7F:
				// controls (Cc), including NUL, \v and \f
			case lower && r >= 'A' && r <= 'Z':
				b.WriteByte(byte(r) + ('a' - 'A'))
			default:
				b.WriteByte(byte(r))
			}
			continue
		}
		ascii = false
		switch {
		case r == 0 || r == utf8.RuneError || isBertControl(r):
			// Dropped, before the whitespace test as in tokenizers, so
			// \v, \f and NEL (Cc) vanish rather than separate words.
			// Invalid UTF-8 decodes to U+FFFD and goes too.
		case isBertWhitespace(r):
			b.WriteByte(' ')
		case isChineseChar(r):
			b.WriteByte(' ')
			b.WriteRune(r)
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	if !lower || ascii {
		return b.String()
	}
	d := norm.NFD.String(b.String())
	b.Reset()
	for _, r := range d {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// isBertWhitespace: tab, newline and carriage return (controls) count as
// whitespace, plus the Unicode White_Space property.
func isBertWhitespace(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || unicode.IsSpace(r)
}

// isBertControl is tokenizers' is_control: categories Cc, Cf and Co, except
// the three whitespace controls.
func isBertControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co)
}

// isBertPunct is BERT's _is_punctuation: all non-alphanumeric printable
// ASCII (including $, +, <, =, >, ^, `, |, ~ which Unicode calls symbols)
// and every Unicode P* category character.
func isBertPunct(r rune) bool {
	if (r >= 33 && r <= 47) || (r >= 58 && r <= 64) || (r >= 91 && r <= 96) || (r >= 123 && r <= 126) {
		return true
	}
	return unicode.IsPunct(r)
}

// isChineseChar reports whether r is in the CJK ideograph blocks that BERT
// splits into single-character words. The ranges are tokenizers' (the
// reference for our goldens and for BertTokenizerFast), whose Extension E/F
// range starts at U+2B920 where transformers' slow BertTokenizer has U+2B820.
func isChineseChar(r rune) bool {
	switch {
	case r >= 0x4E00 && r <= 0x9FFF,
		r >= 0x3400 && r <= 0x4DBF,
		r >= 0x20000 && r <= 0x2A6DF,
		r >= 0x2A700 && r <= 0x2B73F,
		r >= 0x2B740 && r <= 0x2B81F,
		r >= 0x2B920 && r <= 0x2CEAF,
		r >= 0xF900 && r <= 0xFAFF,
		r >= 0x2F800 && r <= 0x2FA1F:
		return true
	}
	return false
}
