package synth

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"

	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
	"github.com/blip2chat/blip2chat/weights/hftok"
)

// Generated tokenizers: what a checkpoint of the language model's family
// ships, with a vocabulary of the model's size, so that the converter reads
// them as it reads a real one.

// Piece is one SentencePiece piece: its text, score and type (the
// gguf.Token* numbers, which SentencePiece shares).
type Piece struct {
	Text  string
	Score float32
	Type  gguf.TokenType
}

// SentencePiece kinds: the trainer and normalizer settings of LLaMA's and
// T5's tokenizers.
const (
	// LlamaBPE is a BPE model with byte fallback; <unk> <s> </s> are ids
	// 0, 1, 2 and there is no pad.
	LlamaBPE = iota
	// T5Unigram is a unigram model; <pad> </s> <unk> are ids 0, 1, 2 and
	// there is no BOS.
	T5Unigram
)

// SentencePieceModel encodes a SentencePiece ModelProto (a tokenizer.model
// or spiece.model) holding pieces, with the settings of kind.
func SentencePieceModel(pieces []Piece, kind int) []byte {
	var out []byte
	for _, p := range pieces {
		var m []byte
		m = pbBytes(m, 1, []byte(p.Text))
		m = pbKey(m, 2, 5)
		m = binary.LittleEndian.AppendUint32(m, math.Float32bits(p.Score))
		m = pbVarint(m, 3, uint64(p.Type))
		out = pbBytes(out, 1, m)
	}
	const none = math.MaxUint64 // -1 as a varint
	var tr []byte
	if kind == T5Unigram {
		tr = pbVarint(tr, 3, 1) // unigram
		tr = pbVarint(tr, 4, uint64(len(pieces)))
		tr = pbVarint(tr, 40, 2)    // unk_id
		tr = pbVarint(tr, 41, none) // bos_id
		tr = pbVarint(tr, 42, 1)    // eos_id
		tr = pbVarint(tr, 43, 0)    // pad_id
	} else {
		tr = pbVarint(tr, 3, 2) // BPE
		tr = pbVarint(tr, 4, uint64(len(pieces)))
		tr = pbVarint(tr, 35, 1) // byte_fallback
		tr = pbVarint(tr, 40, 0)
		tr = pbVarint(tr, 41, 1)
		tr = pbVarint(tr, 42, 2)
		tr = pbVarint(tr, 43, none)
	}
	out = pbBytes(out, 2, tr)
	var norm []byte
	norm = pbBytes(norm, 1, []byte("identity"))
	norm = pbVarint(norm, 3, 1) // add_dummy_prefix
	norm = pbVarint(norm, 4, 1) // remove_extra_whitespaces
	norm = pbVarint(norm, 5, 1) // escape_whitespaces
	return pbBytes(out, 3, norm)
}

// Protocol buffer encoding, just what SentencePieceModel needs.
func pbKey(b []byte, field, wire int) []byte { return binary.AppendUvarint(b, uint64(field<<3|wire)) }

func pbVarint(b []byte, field int, v uint64) []byte {
	return binary.AppendUvarint(pbKey(b, field, 0), v)
}

func pbBytes(b []byte, field int, v []byte) []byte {
	b = binary.AppendUvarint(pbKey(b, field, 2), uint64(len(v)))
	return append(b, v...)
}

// tokenizerFiles are the tokenizer files of a checkpoint whose language
// model is tc: a SentencePiece model for LLaMA (<unk> <s> </s>, the 256
// byte tokens, then words) and T5 (<pad> </s> <unk>, words; the 100
// sentinels come after the pieces, as in T5's tokenizer), GPT-2's
// vocab.json and merges.txt for OPT. The words are the letters, so that
// text tokenizes into words, then placeholders.
func tokenizerFiles(tc *hfconfig.TextConfig) (map[string][]byte, error) {
	n := tc.VocabSize
	word := func(pieces []Piece, w string) []Piece {
		return append(pieces, Piece{w, -float32(len(pieces)), gguf.TokenNormal})
	}
	words := func(pieces []Piece, n int) []Piece {
		for c := 'a'; c <= 'z' && len(pieces) < n; c++ {
			pieces = word(pieces, "\u2581"+string(c))
		}
		for i := 0; len(pieces) < n; i++ {
			pieces = word(pieces, fmt.Sprintf("\u2581w%d", i))
		}
		return pieces
	}
	switch tc.ModelType {
	case "llama":
		pieces := []Piece{{"<unk>", 0, gguf.TokenUnknown}, {"<s>", 0, gguf.TokenControl}, {"</s>", 0, gguf.TokenControl}}
		for b := 0; b < 256; b++ {
			pieces = append(pieces, Piece{fmt.Sprintf("<0x%02X>", b), 0, gguf.TokenByte})
		}
		files := map[string][]byte{"tokenizer.model": SentencePieceModel(words(pieces, min(n, 32000)), LlamaBPE)}
		if n > 32000 {
			// Vicuna's 32001st token is an added pad token, as its
			// added_tokens.json says.
			files["added_tokens.json"] = []byte(`{"[PAD]": 32000}`)
		}
		return files, nil
	case "t5":
		pieces := []Piece{{"<pad>", 0, gguf.TokenControl}, {"</s>", 0, gguf.TokenControl}, {"<unk>", 0, gguf.TokenUnknown}}
		m := n - 100 - (n-100)%128 // 32128 = 32000 pieces + 100 sentinels + 28 padding
		if m <= len(pieces) {
			m = n
		}
		return map[string][]byte{"spiece.model": SentencePieceModel(words(pieces, m), T5Unigram)}, nil
	case "opt":
		return gpt2Files(n)
	}
	return nil, fmt.Errorf("synthetic models: no tokenizer for a %s language model (want llama, t5 or opt)", tc.ModelType)
}

// gpt2Files are an OPT checkpoint's tokenizer files for a vocabulary of n:
// <s> <pad> </s> <unk> (OPT's ids 0-3), the 256 byte-level tokens, words
// up to n; no merges. tokenizer_config.json names the specials as OPT's
// does.
func gpt2Files(n int) (map[string][]byte, error) {
	if n < 4+256 {
		return nil, fmt.Errorf("synthetic models: an OPT vocabulary of %d cannot hold the 4 special and 256 byte tokens", n)
	}
	vocab := map[string]int{}
	for i, s := range []string{"<s>", "<pad>", "</s>", "<unk>"} {
		vocab[s] = i
	}
	for b := 0; b < 256; b++ {
		vocab[string(hftok.ByteLevelRune(byte(b)))] = 4 + b
	}
	for id := 4 + 256; id < n; id++ {
		vocab[fmt.Sprintf("\u0120w%d", id)] = id // Ġ: a word after a space
	}
	v, err := json.Marshal(vocab)
	if err != nil {
		return nil, err
	}
	cfg, err := json.Marshal(map[string]any{"tokenizer_class": "GPT2Tokenizer", "add_bos_token": true,
		"bos_token": "</s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"})
	if err != nil {
		return nil, err
	}
	return map[string][]byte{"vocab.json": v, "merges.txt": []byte("#version: 0.2\n"), "tokenizer_config.json": cfg}, nil
}
