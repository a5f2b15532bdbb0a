package hftok

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addSeeds adds a golden file, whole and cut short, and more inputs.
func addSeeds(f *testing.F, file string, more ...string) {
	data, err := os.ReadFile(filepath.Join(golden, file))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(data[:len(data)/3])
	for _, m := range more {
		f.Add([]byte(m))
	}
}

// FuzzParseVocabJSON: an accepted vocab.json has ids in [0, 2^31).
func FuzzParseVocabJSON(f *testing.F) {
	addSeeds(f, "tokenizers/gpt2/vocab.json", `{"a":0,"b":1,"ab":2,"x":"y","z":null,"w":1e3}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParseVocabJSON(data)
		if err != nil {
			return
		}
		for tok, id := range v {
			if id < 0 || id >= 1<<31 {
				t.Fatalf("%q: id %d accepted", tok, id)
			}
		}
	})
}

// FuzzParseMergesTXT: every accepted merge is two tokens, neither with a
// space.
func FuzzParseMergesTXT(f *testing.F) {
	addSeeds(f, "tokenizers/gpt2/merges.txt", "#version: 0.2\r\na b\r\n\n")
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMergesTXT(data)
		if err != nil {
			return
		}
		for _, p := range m {
			if strings.Contains(p[0], " ") || strings.Contains(p[1], " ") {
				t.Fatalf("merge %q accepted", p)
			}
		}
	})
}

// FuzzParseTokenizerJSON: any tokenizer.json gives an error or what its
// readers return; never a panic, a negative added id or a WordPiece
// vocabulary without its specials.
func FuzzParseTokenizerJSON(f *testing.F) {
	f.Add([]byte(`{"added_tokens":[{"id":0,"content":"<s>","special":true}],"normalizer":null,"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false},"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]}}`))
	f.Add([]byte(`{"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"ByteLevel"}]},"model":{"unk_token":"<unk>","vocab":{"<unk>":0},"merges":[["a","##b"]],"continuing_subword_prefix":"##"}}`))
	f.Add([]byte(`{"model":{"type":"WordPiece","vocab":{"[CLS]":0,"[SEP]":1,"[UNK]":2,"a":3}}}`))
	f.Add([]byte(`{"added_tokens":[{"id":-1}],"model":{"type":"Unigram","vocab":[["a",0]]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tj, err := ParseTokenizerJSON(data)
		if err != nil {
			return
		}
		for _, a := range tj.AddedTokens {
			if a.ID < 0 {
				t.Fatalf("negative added id accepted")
			}
		}
		if b, err := tj.BPE(); err == nil {
			for _, m := range b.Merges {
				_ = m[0] + m[1]
			}
		}
		if v, err := tj.WordPieceVocab(); err == nil {
			if CheckWordPiece(v) != nil {
				t.Fatalf("vocabulary without specials accepted")
			}
		}
	})
}

// FuzzParseVocabTxt: an accepted vocab.txt holds [CLS], [SEP] and [UNK].
func FuzzParseVocabTxt(f *testing.F) {
	addSeeds(f, "tokenizers/bert/vocab.txt", "[CLS]\r\n[SEP]\r\n[UNK]\r\n\r\n##\n")
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParseVocabTxt(data)
		if err == nil && (len(v) < 3 || CheckWordPiece(v) != nil) {
			t.Fatalf("vocabulary %q accepted", v)
		}
	})
}

// FuzzParseAddedTokensJSON: an error or a non-nil list sorted by id.
func FuzzParseAddedTokensJSON(f *testing.F) {
	f.Add([]byte(`{"<img>": 2001, "[PAD]": 32000}`))
	f.Add([]byte(`{"a": -1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseAddedTokensJSON(data)
		if err != nil {
			return
		}
		if a == nil {
			t.Fatal("nil list without error")
		}
		for i := 1; i < len(a); i++ {
			if a[i].ID < a[i-1].ID {
				t.Fatalf("not sorted: %v", a)
			}
		}
	})
}
