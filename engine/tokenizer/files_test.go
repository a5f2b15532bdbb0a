package tokenizer

import (
	"fmt"

	"github.com/blip2chat/blip2chat/weights/hftok"
)

// The tests read tokenizer files with weights/hftok, the reader the
// converter uses, and build the tokenizers over what it returns.

// loadBPE reads vocab.json and merges.txt; errors name the files.
func loadBPE(vocabJSON, mergesTXT string) (*BPE, error) {
	f, err := hftok.LoadBPE(vocabJSON, mergesTXT)
	if err != nil {
		return nil, err
	}
	t, err := NewBPEFrom(f)
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %v", vocabJSON, mergesTXT, err)
	}
	return t, nil
}

// parseBPE reads the contents of a vocab.json and a merges.txt.
func parseBPE(vocabJSON, mergesTXT string) (*BPE, error) {
	v, err := hftok.ParseVocabJSON([]byte(vocabJSON))
	if err != nil {
		return nil, err
	}
	m, err := hftok.ParseMergesTXT([]byte(mergesTXT))
	if err != nil {
		return nil, err
	}
	return NewBPEFrom(&hftok.BPE{Vocab: v, Merges: m, UseRegex: true})
}

// parseBPETokenizerJSON reads a byte-level BPE tokenizer.json's contents.
func parseBPETokenizerJSON(data []byte) (*BPE, error) {
	tj, err := hftok.ParseTokenizerJSON(data)
	if err != nil {
		return nil, err
	}
	f, err := tj.BPE()
	if err != nil {
		return nil, err
	}
	return NewBPEFrom(f)
}

// loadWordPiece reads a BERT vocab.txt.
func loadWordPiece(path string, lowerCase bool) (*WordPiece, error) {
	vocab, err := hftok.LoadVocabTxt(path)
	if err != nil {
		return nil, err
	}
	return NewWordPiece(vocab, lowerCase), nil
}

func parseWordPiece(data []byte, lowerCase bool) (*WordPiece, error) {
	vocab, err := hftok.ParseVocabTxt(data)
	if err != nil {
		return nil, err
	}
	return NewWordPiece(vocab, lowerCase), nil
}
