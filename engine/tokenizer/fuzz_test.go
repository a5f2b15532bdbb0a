package tokenizer

import (
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func readSeed(f *testing.F, parts ...string) []byte {
	data, err := os.ReadFile(filepath.Join(append([]string{goldenDir}, parts...)...))
	if err != nil {
		f.Fatal(err)
	}
	return data
}

// FuzzParseBPE: any vocab.json/merges.txt pair gives a tokenizer or an
// error, and a tokenizer encodes and decodes without panicking.
func FuzzParseBPE(f *testing.F) {
	vocab := readSeed(f, "tokenizers", "gpt2", "vocab.json")
	merges := readSeed(f, "tokenizers", "gpt2", "merges.txt")
	f.Add(vocab, merges)
	f.Add(vocab[:len(vocab)/2], merges[:len(merges)/2])
	f.Add([]byte(`{"a":0,"b":1,"ab":2}`), []byte("#version: 0.2\na b\n"))
	f.Add([]byte(`{"a":0,"b":1,"ab":2,"x":"y","z":null}`), []byte("a b\r\n"))
	f.Add([]byte(`{"a":1e3}`), []byte("a a\n"))
	f.Fuzz(func(t *testing.T, vocab, merges []byte) {
		tok, err := parseBPE(string(vocab), string(merges))
		if err != nil {
			return
		}
		exerciseBPE(t, tok, string(merges[:min(len(merges), 64)]))
	})
}

// FuzzParseTokenizerJSON: any tokenizer.json gives a tokenizer or an error.
func FuzzParseTokenizerJSON(f *testing.F) {
	vocab := string(readSeed(f, "tokenizers", "gpt2", "vocab.json"))
	full := `{"added_tokens":[{"id":0,"content":"<s>","special":true}],"normalizer":null,` +
		`"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},` +
		`"model":{"type":"BPE","dropout":null,"unk_token":null,"vocab":` + vocab + `,"merges":["Ġ t","Ġ a"]}}`
	f.Add([]byte(full))
	f.Add([]byte(full[:len(full)/2]))
	f.Add([]byte(`{"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"ByteLevel"}]},"model":{"type":"BPE","unk_token":"<unk>","fuse_unk":true,"byte_fallback":true,"vocab":{"<unk>":0,"a":1,"<0x58>":2,"##b":3,"a##b":4},"merges":[["a","##b"]],"continuing_subword_prefix":"##"}}`))
	f.Add([]byte(`{"pre_tokenizer":{"type":"ByteLevel","use_regex":false},"model":{"ignore_merges":true,"end_of_word_suffix":"</w>","vocab":{"a":0,"a</w>":1},"merges":[]},"added_tokens":[{"id":70000,"content":"x"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := parseBPETokenizerJSON(data)
		if err != nil {
			return
		}
		exerciseBPE(t, tok, string(data[:min(len(data), 64)]))
	})
}

func exerciseBPE(t *testing.T, tok *BPE, text string) {
	for _, s := range []string{text, "Hello  world 🐶\n", "aXb ab abab"} {
		ids := tok.Encode(s)
		for _, id := range ids {
			if id < 0 || id >= tok.VocabSize() {
				t.Fatalf("id %d out of range [0,%d)", id, tok.VocabSize())
			}
			_ = tok.Piece(id)
		}
		if d := tok.Decode(ids); !utf8.ValidString(d) {
			t.Fatalf("Decode gave invalid UTF-8 %q", d)
		}
	}
	_ = tok.Merges()
}

// FuzzParseWordPiece: any vocab.txt gives a tokenizer or an error.
func FuzzParseWordPiece(f *testing.F) {
	vocab := readSeed(f, "tokenizers", "bert", "vocab.txt")
	f.Add(vocab)
	f.Add(vocab[:len(vocab)/3])
	f.Add([]byte("[CLS]\r\n[SEP]\r\n[UNK]\r\n\r\n##\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := parseWordPiece(data, true)
		if err != nil {
			return
		}
		exerciseWordPiece(t, tok, string(data[:min(len(data), 64)]))
	})
}

func exerciseWordPiece(t *testing.T, tok *WordPiece, text string) {
	ids := tok.Encode(text)
	if len(ids) < 2 || ids[0] != tok.cls || ids[len(ids)-1] != tok.sep {
		t.Fatalf("Encode(%q) = %v: want [CLS] ... [SEP]", text, ids)
	}
	for _, id := range ids {
		if id < 0 || id >= tok.VocabSize() {
			t.Fatalf("id %d out of range", id)
		}
	}
}

// FuzzBPEEncode: the golden byte-level BPE never panics and is lossless:
// Decode(Encode(s)) is s, or its lossy UTF-8 decoding when s is not valid.
func FuzzBPEEncode(f *testing.F) {
	tok := goldenGPT2(f)
	for _, c := range []string{"", "Question: what is in the image? Answer:", "  two  spaces ", "I'm 🐶\n\n", "\xff\xfe", "这是一只狗"} {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Encode(s)
		if d := tok.Decode(ids); d != lossyUTF8([]byte(s)) {
			t.Fatalf("Decode(Encode(%q)) = %q", s, d)
		}
		if utf8.ValidString(s) && tok.Decode(ids) != s {
			t.Fatalf("lossy round trip for valid %q", s)
		}
	})
}

// FuzzWordPieceEncode: the golden WordPiece never panics and always frames
// the ids with [CLS] and [SEP].
func FuzzWordPieceEncode(f *testing.F) {
	tok, err := loadWordPiece(filepath.Join(goldenDir, "tokenizers", "bert", "vocab.txt"), true)
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range []string{"", "Question: what is in the image?", "[CLS][SEP]x[MASK", "Ünïcödé 这是 \x00\xff", strings.Repeat("ab", 80)} {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, s string) {
		exerciseWordPiece(t, tok, s)
	})
}

// FuzzStreamDecoder: the stream equals the lossy decoding of all bytes for
// any cut points.
func FuzzStreamDecoder(f *testing.F) {
	f.Add([]byte("🐶 ok \xe2\x82"), int64(1))
	f.Add([]byte{0x61, 0xF1, 0x80, 0x80, 0xE1, 0x80, 0xC2, 0x62}, int64(2))
	f.Fuzz(func(t *testing.T, data []byte, seed int64) {
		checkStream(t, data, rand.New(rand.NewSource(seed)))
	})
}
