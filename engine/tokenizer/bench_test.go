package tokenizer

import (
	"path/filepath"
	"strings"
	"testing"
)

const benchText = "Question: what is in the image? Answer: a husky dog standing in the snow, looking at the camera. "

func BenchmarkBPEEncode(b *testing.B) {
	tok := goldenGPT2(b)
	text := strings.Repeat(benchText, 10)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.Encode(text)
	}
}

// BenchmarkBPEEncodeUncached measures the merge loop itself: every word is
// new, so the cache never hits.
func BenchmarkBPEEncodeUncached(b *testing.B) {
	text := strings.Repeat(benchText, 10)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		b.StopTimer()
		tok := goldenGPT2(b)
		b.StartTimer()
		tok.Encode(text)
	}
}

func BenchmarkWordPieceEncode(b *testing.B) {
	tok, err := loadWordPiece(filepath.Join(goldenDir, "tokenizers", "bert", "vocab.txt"), true)
	if err != nil {
		b.Fatal(err)
	}
	text := strings.Repeat(benchText, 10)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.Encode(text)
	}
}
