package tokenizer

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// toyVocab is a small BERT vocabulary; the expected ids below follow from
// BertNormalizer, BertPreTokenizer and greedy WordPiece on it.
var toyVocab = []string{
	"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", // 0-4
	"un", "##aff", "##able", "hello", ",", // 5-9
	"world", "!", "你", "a", "##a", // 10-14
	"$", "5", "—", "b", "οδοσ", // 15-19
	"ab", "Hello", "é", "[", "mask", // 20-24
	"]", "cafe", "café", // 25-27
}

func TestWordPieceRules(t *testing.T) {
	lower := NewWordPiece(toyVocab, true)
	cased := NewWordPiece(toyVocab, false)
	rep := func(id, n int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = id
		}
		return out
	}
	cat := func(parts ...[]int) []int { return slices.Concat(parts...) }
	tests := []struct {
		name string
		tok  *WordPiece
		in   string
		want []int
	}{
		{"empty", lower, "", []int{2, 3}},
		{"subwords", lower, "unaffable", []int{2, 5, 6, 7, 3}},
		{"lowercase", lower, "UNAFFABLE", []int{2, 5, 6, 7, 3}},
		{"accents stripped", lower, "Ünäffáble", []int{2, 5, 6, 7, 3}},
		{"punctuation isolated", lower, "hello, world!", []int{2, 8, 9, 10, 11, 3}},
		{"whitespace kinds", lower, "  hello\t\n world \r ", []int{2, 8, 10, 3}},
		{"nbsp is whitespace", lower, "a\u00a0b", []int{2, 13, 18, 3}},
		{"cjk split per char", lower, "你好a", []int{2, 12, 1, 13, 3}},
		{"nul dropped", lower, "a\x00b", []int{2, 20, 3}},
		{"format char dropped", lower, "a\u200bb", []int{2, 20, 3}},
		{"replacement char dropped", lower, "a\ufffdb", []int{2, 20, 3}},
		{"invalid utf8 dropped", lower, "a\xffb", []int{2, 20, 3}},
		{"control dropped", lower, "a\x07b", []int{2, 20, 3}},
		// The control filter runs before the whitespace map, so vertical tab
		// and NEL (category Cc) vanish while U+2028 (Zl) separates words.
		{"vertical tab is a control", lower, "a\vb", []int{2, 20, 3}},
		{"NEL is a control", lower, "a\u0085b", []int{2, 20, 3}},
		{"line separator is whitespace", lower, "a\u2028b", []int{2, 13, 18, 3}},
		{"ascii symbol is bert punctuation", lower, "$5", []int{2, 15, 16, 3}},
		{"unicode dash", lower, "a—b", []int{2, 13, 17, 18, 3}},
		{"per-char lowercase, no final sigma", lower, "ΟΔΟΣ", []int{2, 19, 3}},
		{"continuations", lower, "aaa", []int{2, 13, 14, 14, 3}},
		{"100 chars", lower, strings.Repeat("a", 100), cat([]int{2, 13}, rep(14, 99), []int{3})},
		{"101 chars is unk", lower, strings.Repeat("a", 101), []int{2, 1, 3}},
		{"unmatched tail makes whole word unk", lower, "unaffablex", []int{2, 1, 3}},
		{"special tokens kept", lower, "[MASK] hello[SEP]", []int{2, 4, 8, 3, 3}},
		{"lowercase special is text", lower, "[mask]", []int{2, 23, 24, 25, 3}},
		{"adjacent specials", lower, "[SEP][SEP]x[MASK", []int{2, 3, 3, 1, 23, 24, 3}},
		{"special inside a word", lower, "a[MASK]b", []int{2, 13, 4, 18, 3}},
		{"accent stripped", lower, "café", []int{2, 26, 3}},
		// tokenizers' CJK ranges: U+2B820 is not split off, U+2B920 is.
		{"u+2b820 not cjk", lower, "a\U0002B820", []int{2, 1, 3}},
		{"u+2b920 cjk", lower, "a\U0002B920", []int{2, 13, 1, 3}},
		{"cased keeps case", cased, "Hello hello", []int{2, 21, 8, 3}},
		{"cased keeps accents", cased, "café", []int{2, 27, 3}},
		{"cased does not normalize", cased, "cafe\u0301", []int{2, 1, 3}},
		{"cased sigma", cased, "ΟΔΟΣ", []int{2, 1, 3}},
	}
	for _, tt := range tests {
		if got := tt.tok.Encode(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("%s: Encode(%q)\n got %v\nwant %v", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestWordPieceNoSpecials(t *testing.T) {
	// Without [UNK] unknown words are dropped; without [CLS]/[SEP] nothing
	// is added around the text.
	tok := NewWordPiece([]string{"a", "b"}, true)
	if got := tok.Encode("a x b"); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("Encode = %v, want [0 1]", got)
	}
}

func TestWordPieceVocab(t *testing.T) {
	tok := NewWordPiece(toyVocab, true)
	if tok.VocabSize() != len(toyVocab) {
		t.Errorf("VocabSize = %d", tok.VocabSize())
	}
	for i, s := range toyVocab {
		if id, ok := tok.ID(s); !ok || id != i || tok.Piece(i) != s {
			t.Errorf("entry %d %q: ID %d %v, Piece %q", i, s, id, ok, tok.Piece(i))
		}
	}
	if tok.Piece(-1) != "" || tok.Piece(len(toyVocab)) != "" {
		t.Error("out-of-range Piece must be empty")
	}
}

func TestLoadWordPiece(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// CRLF endings and trailing blanks are trimmed, as tokenizers does.
	p := write("crlf.txt", "[PAD]\r\n[UNK] \r\n[CLS]\r\n[SEP]\t\r\nhello\r\n")
	tok, err := loadWordPiece(p, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Encode("Hello there"); !slices.Equal(got, []int{2, 4, 1, 3}) {
		t.Errorf("Encode = %v, want [2 4 1 3]", got)
	}
	bad := []struct{ name, body, want string }{
		{"no cls", "[UNK]\n[SEP]\n", "[CLS]"},
		{"no sep", "[UNK]\n[CLS]\n", "[SEP]"},
		{"no unk", "[CLS]\n[SEP]\n", "[UNK]"},
		{"empty", "", "[CLS]"},
		{"binary", "[CLS]\n[SEP]\n[UNK]\n\xff\xfe\n", "UTF-8"},
	}
	for _, tt := range bad {
		p := write(tt.name+".txt", tt.body)
		_, err := loadWordPiece(p, true)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v, want it to name the file and mention %q", tt.name, err, tt.want)
		}
	}
	if _, err := loadWordPiece(filepath.Join(dir, "missing.txt"), true); err == nil {
		t.Error("missing file must fail")
	}
}

// TestBertNormalizeASCII checks the ASCII fast path against the general
// per-character rules (control filter, whitespace map, lowercase).
func TestBertNormalizeASCII(t *testing.T) {
	for _, lower := range []bool{false, true} {
		for r := rune(0); r < 0x80; r++ {
			want := string(r)
			switch {
			case r == 0 || isBertControl(r):
				want = ""
			case isBertWhitespace(r):
				want = " "
			case lower:
				want = strings.ToLower(want)
			}
			for _, ctx := range []string{"", "é"} { // all-ASCII and mixed text
				if got := bertNormalize(string(r)+ctx, lower); got != want+bertNormalize(ctx, lower) {
					t.Errorf("lower=%v %U: %q, want %q", lower, r, got, want)
				}
			}
		}
	}
}
