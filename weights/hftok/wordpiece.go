package hftok

import (
	"fmt"
	"strings"
	"unicode"
)

// ParseVocabTxt parses a BERT vocab.txt: one token per line, the line
// number is the id (lines are read as tokenizers' WordPiece::read_file
// does: UTF-8, "\n" or "\r\n" endings). The vocabulary must pass
// CheckWordPiece.
func ParseVocabTxt(data []byte) ([]string, error) {
	vocab, err := splitLines(data)
	if err != nil {
		return nil, err
	}
	if err := CheckWordPiece(vocab); err != nil {
		return nil, err
	}
	return vocab, nil
}

// LoadVocabTxt reads a BERT vocab.txt (see ParseVocabTxt).
func LoadVocabTxt(path string) ([]string, error) {
	return load(path, ParseVocabTxt)
}

// CheckWordPiece refuses a WordPiece vocabulary without BERT's [CLS],
// [SEP] or [UNK] (trailing white space of an entry is ignored, as
// tokenizers trims it): BertTokenizer puts [CLS] and [SEP] around every
// text, and without [UNK] a word outside the vocabulary would silently
// vanish.
func CheckWordPiece(vocab []string) error {
	have := map[string]bool{}
	for _, v := range vocab {
		have[strings.TrimRightFunc(v, unicode.IsSpace)] = true
	}
	for _, s := range [...]string{"[CLS]", "[SEP]", "[UNK]"} {
		if !have[s] {
			return fmt.Errorf("no %s token: not a BERT WordPiece vocabulary", s)
		}
	}
	return nil
}
