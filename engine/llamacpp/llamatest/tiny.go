package llamatest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/synth"
)

// The tiny models are synthetic models (weights/synth): what the converter
// writes for a Hugging Face LLaMA or T5 checkpoint of their config and
// tokenizer, with random F32 weights.

// Llama describes a small LLaMA with random F32 weights and a
// SentencePiece vocabulary: <unk> <s> </s>, the 256 byte tokens, Pieces,
// then "▁w0", "▁w1", ... up to NVocab tokens.
type Llama struct {
	NEmbd, NHead, NHeadKV, NFF, NLayer, NVocab, NCtxTrain int
	Seed                                                  uint64
	// Pieces are normal tokens placed right after the byte tokens; their
	// scores fall with the id, so earlier pieces merge first. A piece that
	// repeats an earlier token is an added token (added_tokens.json), as a
	// damaged checkpoint may have.
	Pieces []string
	// Name is general.name; "" is "tiny-random-llama".
	Name string
	// Std, when positive, draws every weight matrix and the embeddings
	// with standard deviation Std (uniformly), with norm weights exactly 1.
	// Zero scales matrices and embeddings by 1/sqrt(input size), with norm
	// weights near 1 (synth.Init).
	Std float64
}

// Token ids of the tiny vocabulary.
const (
	Unk, BOS, EOS = 0, 1, 2
	FirstByte     = 3   // <0x00>
	FirstWord     = 259 // the first of Pieces, or ▁w0
)

// DefaultLlama is 2 layers of width 256 (a multiple of the k-quants'
// 256-value blocks) with grouped-query attention.
func DefaultLlama() Llama {
	return Llama{NEmbd: 256, NHead: 4, NHeadKV: 2, NFF: 512, NLayer: 2, NVocab: 400, NCtxTrain: 512, Seed: 1}
}

// Vocab returns the token texts and types.
func (t Llama) Vocab() (pieces []string, types []int32) {
	pieces = []string{"<unk>", "<s>", "</s>"}
	types = []int32{gguf.TokenUnknown, gguf.TokenControl, gguf.TokenControl}
	for b := range 256 {
		pieces = append(pieces, fmt.Sprintf("<0x%02X>", b))
		types = append(types, gguf.TokenByte)
	}
	for _, p := range t.Pieces {
		pieces = append(pieces, p)
		types = append(types, gguf.TokenNormal)
	}
	for i := 0; len(pieces) < t.NVocab; i++ {
		pieces = append(pieces, fmt.Sprintf("▁w%d", i))
		types = append(types, gguf.TokenNormal)
	}
	return pieces, types
}

// Write stores the model at path and returns its token embedding table
// (vocabulary size x NEmbd).
func (t Llama) Write(path string) ([]float32, error) {
	texts, types := t.Vocab()
	if len(texts) <= FirstWord {
		return nil, fmt.Errorf("tiny llama: vocabulary of %d is too small", t.NVocab)
	}
	name := t.Name
	if name == "" {
		name = "tiny-random-llama"
	}
	// A repeated text cannot be a SentencePiece piece: it stays a
	// placeholder piece, and added_tokens.json gives its id that text.
	var pieces []synth.Piece
	added := map[string]int{}
	for i, s := range texts {
		if slices.Contains(texts[:i], s) {
			added[s] = i
			s = fmt.Sprintf("<dup%d>", i)
		}
		pieces = append(pieces, synth.Piece{Text: s, Score: -float32(i), Type: types[i]})
	}
	files := map[string][]byte{"tokenizer.model": synth.SentencePieceModel(pieces, synth.LlamaBPE)}
	if len(added) > 0 {
		files["added_tokens.json"], _ = json.Marshal(added)
	}
	cfg := map[string]any{"model_type": "llama", "hidden_size": t.NEmbd, "intermediate_size": t.NFF,
		"num_hidden_layers": t.NLayer, "num_attention_heads": t.NHead, "num_key_value_heads": t.NHeadKV,
		"vocab_size": len(texts), "max_position_embeddings": t.NCtxTrain, "rms_norm_eps": 1e-5,
		"tie_word_embeddings": false}
	return writeTiny(path, cfg, files, name, t.Seed, synth.Init{Std: t.Std}, []int{len(texts), t.NEmbd})
}

// WriteT5 writes a 2-layer encoder-decoder T5 (the FlanT5 side of BLIP-2)
// with random F32 weights from seed and a 40-token vocabulary (<pad> </s>
// <unk> ▁w0 ...; <pad> starts the decoder), and returns its token
// embeddings, nEmbd wide.
func WriteT5(path string, seed uint64) (tokEmbd []float32, nEmbd int, err error) {
	const e, vocab = 32, 40
	pieces := []synth.Piece{{Text: "<pad>", Type: gguf.TokenControl}, {Text: "</s>", Type: gguf.TokenControl}, {Text: "<unk>", Type: gguf.TokenUnknown}}
	for i := 0; len(pieces) < vocab; i++ {
		pieces = append(pieces, synth.Piece{Text: fmt.Sprintf("▁w%d", i), Type: gguf.TokenNormal})
	}
	files := map[string][]byte{"spiece.model": synth.SentencePieceModel(pieces, synth.T5Unigram)}
	cfg := map[string]any{"model_type": "t5", "d_model": e, "d_kv": e / 4, "d_ff": 64, "num_heads": 4,
		"num_layers": 2, "num_decoder_layers": 2, "vocab_size": vocab, "feed_forward_proj": "gated-gelu",
		"relative_attention_num_buckets": 8, "relative_attention_max_distance": 128, "layer_norm_epsilon": 1e-6,
		"tie_word_embeddings": false, "decoder_start_token_id": 0, "pad_token_id": 0, "eos_token_id": 1}
	tokEmbd, err = writeTiny(path, cfg, files, "tiny-random-t5", seed, synth.Init{Std: 0.5}, []int{vocab, e})
	return tokEmbd, e, err
}

// writeTiny writes the language model of a checkpoint with text config
// text and tokenizer files, in F32, to path, and returns the values of its
// token embeddings (of the given shape).
func writeTiny(path string, text map[string]any, files map[string][]byte, name string, seed uint64, init synth.Init, embShape []int) ([]float32, error) {
	cfg, err := json.Marshal(map[string]any{"model_type": "blip-2", "text_config": text})
	if err != nil {
		return nil, err
	}
	m := synth.Model{Config: cfg, Files: files, Name: name, Seed: seed, Init: init}
	if err := m.WriteLLM(context.Background(), path, "f32"); err != nil {
		return nil, err
	}
	return synth.Values("token_embd.weight", embShape, seed, init)()
}
