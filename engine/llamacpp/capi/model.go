package capi

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"unsafe"

	"github.com/blip2chat/blip2chat/internal/safefile"
	"github.com/blip2chat/blip2chat/weights/gguf"
)

// DefaultModelParams returns llama_model_default_params().
func (l *Library) DefaultModelParams() ModelParams { return l.c.llama_model_default_params() }

// DefaultContextParams returns llama_context_default_params().
func (l *Library) DefaultContextParams() ContextParams { return l.c.llama_context_default_params() }

// DefaultQuantizeParams returns llama_model_quantize_default_params().
func (l *Library) DefaultQuantizeParams() QuantizeParams {
	return l.c.llama_model_quantize_default_params()
}

// Model is a GGUF model loaded by llama.cpp. It must outlive the Contexts and
// Samplers made from it. A Model may be shared by goroutines; Close must not
// race with other calls.
type Model struct {
	lib       *Library
	path      string
	m, vocab  uintptr
	nVocab    int32
	vocabOnly bool
}

// LoadModel loads the GGUF file at path.
func (l *Library) LoadModel(path string, p ModelParams) (*Model, error) {
	// llama.cpp opens the file itself: a FIFO would block it for good.
	if _, err := safefile.Regular(path); err != nil {
		return nil, err
	}
	if err := preflight(path, p.VocabOnly); err != nil {
		return nil, err
	}
	l.log.takeError()
	m := l.c.llama_model_load_from_file(path, p)
	if m == 0 {
		return nil, fmt.Errorf("%s", l.withReason("llama.cpp cannot load "+path))
	}
	md := &Model{lib: l, path: path, m: m, vocabOnly: p.VocabOnly}
	md.vocab = l.c.llama_model_get_vocab(m)
	md.nVocab = l.c.llama_vocab_n_tokens(md.vocab)
	// llama_tokenize asserts that the BOS and EOS it is told to add exist.
	for _, t := range []struct {
		name     string
		add      bool
		id       int32
		key, tok string
	}{{"BOS", md.AddBOS(), md.BOS(), "add_bos_token", "bos_token_id"}, {"EOS", md.AddEOS(), md.EOS(), "add_eos_token", "eos_token_id"}} {
		if t.add && t.id < 0 {
			md.Close()
			return nil, fmt.Errorf("%s: tokenizer.ggml.%s is set but there is no %s token (tokenizer.ggml.%s is missing or out of range)", path, t.key, t.name, t.tok)
		}
	}
	return md, nil
}

// Limits llama.cpp asserts (aborting the process) rather than reports.
const (
	maxLayers  = 512  // LLAMA_MAX_LAYERS
	maxExperts = 1024 // LLAMA_MAX_EXPERTS
)

// preflight reads the GGUF header with blip2chat's own reader and checks the
// metadata llama.cpp v0.4.0 would abort on (GGML_ASSERT in
// llama_model_base::load_hparams), so a damaged file gives an error instead.
func preflight(path string, vocabOnly bool) error {
	f, err := gguf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	arch, ok := f.String(gguf.KeyArchitecture)
	if !ok {
		return fmt.Errorf("%s: no general.architecture: not a llama.cpp model", path)
	}
	// llama_vocab::load asserts that no two tokens have the same text (an
	// empty one is read as "[EMPTY_<id>]").
	if tokens, ok := f.Strings("tokenizer.ggml.tokens"); ok {
		seen := make(map[string]int, len(tokens))
		for i, tok := range tokens {
			if tok == "" {
				tok = "[EMPTY_" + strconv.Itoa(i) + "]"
			}
			if j, dup := seen[tok]; dup {
				return fmt.Errorf("%s: tokens %d and %d of tokenizer.ggml.tokens are both %q: the vocabulary is damaged", path, j, i, tok)
			}
			seen[tok] = i
		}
	}
	if vocabOnly {
		return nil
	}
	intKey := func(key string, def int) (int, error) {
		if _, present := f.Value(key); !present {
			return def, nil
		}
		n, ok := f.Int(key)
		if !ok {
			return 0, fmt.Errorf("%s: %s is not an integer", path, key)
		}
		return n, nil
	}
	layers, err := intKey(arch+".block_count", -1)
	if err != nil {
		return err
	}
	if layers < 1 || layers > maxLayers {
		return fmt.Errorf("%s: %s.block_count is %d, want 1..%d", path, arch, layers, maxLayers)
	}
	nextn, err := intKey(arch+".nextn_predict_layers", 0)
	if err != nil {
		return err
	}
	if nextn < 0 || nextn > layers {
		return fmt.Errorf("%s: %s.nextn_predict_layers is %d, more than its %d layers", path, arch, nextn, layers)
	}
	experts, err := intKey(arch+".expert_count", 0)
	if err != nil {
		return err
	}
	groups, err := intKey(arch+".expert_group_count", 0)
	if err != nil {
		return err
	}
	switch {
	case experts < 0 || experts > maxExperts:
		return fmt.Errorf("%s: %s.expert_count is %d, want 0..%d", path, arch, experts, maxExperts)
	case experts == 0 && groups != 0, experts > 0 && (groups < 0 || groups >= experts):
		return fmt.Errorf("%s: %s.expert_group_count %d does not fit %d experts", path, arch, groups, experts)
	}
	if used, err := intKey(arch+".expert_used_count", 0); err == nil { // per-layer arrays are left to llama.cpp
		if used < 0 || used > experts || (experts > 0 && used == 0) {
			return fmt.Errorf("%s: %s.expert_used_count %d does not fit %d experts", path, arch, used, experts)
		}
	}
	return nil
}

// Close frees the model. It is safe to call more than once.
func (m *Model) Close() error {
	if m.m != 0 {
		m.lib.c.llama_model_free(m.m)
		m.m, m.vocab = 0, 0
	}
	return nil
}

// handle returns the C model, panicking on use after Close (a programming
// error that would otherwise crash inside C).
func (m *Model) handle() uintptr {
	if m.m == 0 {
		panic("llamacpp: use of a closed Model")
	}
	return m.m
}

// Path is the file the model was loaded from.
func (m *Model) Path() string { return m.path }

// NEmbd is the model's hidden size (llama_model_n_embd).
func (m *Model) NEmbd() int { return int(m.lib.c.llama_model_n_embd(m.handle())) }

// NEmbdInp is the width of one input embedding row (llama_model_n_embd_inp):
// what a Batch with Embd must use.
func (m *Model) NEmbdInp() int { return int(m.lib.c.llama_model_n_embd_inp(m.handle())) }

// NCtxTrain is the context length the model was trained with.
func (m *Model) NCtxTrain() int { return int(m.lib.c.llama_model_n_ctx_train(m.handle())) }

// NLayer is the number of repeating layers (what ModelParams.NGPULayers counts).
func (m *Model) NLayer() int { return int(m.lib.c.llama_model_n_layer(m.handle())) }

// HasEncoder reports whether the model has an encoder (T5): prompts go
// through Context.Encode.
func (m *Model) HasEncoder() bool { return m.lib.c.llama_model_has_encoder(m.handle()) }

// HasDecoder reports whether the model has a decoder (Context.Decode).
func (m *Model) HasDecoder() bool { return m.lib.c.llama_model_has_decoder(m.handle()) }

// DecoderStartToken is the first decoder token of an encoder-decoder model,
// -1 for other models.
func (m *Model) DecoderStartToken() int32 {
	return m.lib.c.llama_model_decoder_start_token(m.handle())
}

// Desc describes the model, e.g. "llama 7B Q8_0".
func (m *Model) Desc() string {
	buf := make([]byte, 256)
	n := m.lib.c.llama_model_desc(m.handle(), &buf[0], uintptr(len(buf)))
	if n < 0 {
		return ""
	}
	return string(buf[:min(int(n), len(buf)-1)])
}

// Meta returns the GGUF metadata value of key as text; ok is false when the
// key is absent (arrays are not supported by llama.cpp).
func (m *Model) Meta(key string) (value string, ok bool) {
	buf := make([]byte, 256)
	for {
		n := m.lib.c.llama_model_meta_val_str(m.handle(), key, &buf[0], uintptr(len(buf)))
		if n < 0 {
			return "", false
		}
		if int(n) < len(buf) {
			return string(buf[:n]), true
		}
		buf = make([]byte, int(n)+1)
	}
}

// NVocab is the number of tokens in the vocabulary.
func (m *Model) NVocab() int { return int(m.nVocab) }

// BOS is the beginning-of-sequence token id (-1 when the model has none).
func (m *Model) BOS() int32 { m.handle(); return m.lib.c.llama_vocab_bos(m.vocab) }

// EOS is the end-of-sequence token id (-1 when none).
func (m *Model) EOS() int32 { m.handle(); return m.lib.c.llama_vocab_eos(m.vocab) }

// EOT is the end-of-turn token id (-1 when none).
func (m *Model) EOT() int32 { m.handle(); return m.lib.c.llama_vocab_eot(m.vocab) }

// AddBOS reports whether Tokenize with addSpecial prepends BOS.
func (m *Model) AddBOS() bool { m.handle(); return m.lib.c.llama_vocab_get_add_bos(m.vocab) }

// AddEOS reports whether Tokenize with addSpecial appends EOS.
func (m *Model) AddEOS() bool { m.handle(); return m.lib.c.llama_vocab_get_add_eos(m.vocab) }

// IsEOG reports whether tok ends generation (EOS, EOT, ...). Ids outside the
// vocabulary are not.
func (m *Model) IsEOG(tok int32) bool {
	m.handle()
	if tok < 0 || tok >= m.nVocab {
		return false
	}
	return m.lib.c.llama_vocab_is_eog(m.vocab, tok)
}

func (m *Model) checkToken(tok int32) error {
	if tok < 0 || tok >= m.nVocab {
		return fmt.Errorf("token id %d is outside the vocabulary of %s (0..%d)", tok, m.path, m.nVocab-1)
	}
	return nil
}

// Tokenize converts text to token ids. addSpecial adds BOS/EOS as the model
// asks (AddBOS, AddEOS); parseSpecial turns special-token text such as "</s>"
// into its id instead of treating it as plain text.
func (m *Model) Tokenize(text string, addSpecial, parseSpecial bool) ([]int32, error) {
	m.handle()
	if len(text) > math.MaxInt32-8 {
		return nil, fmt.Errorf("tokenize: text of %d bytes is too long", len(text))
	}
	var zero byte
	p := &zero // llama.cpp reads text_len bytes; never hand it a nil pointer
	if len(text) > 0 {
		p = unsafe.StringData(text)
	}
	// A token covers at least one byte, plus BOS/EOS (and SPM's dummy prefix).
	toks := make([]int32, len(text)+4)
	for range 2 {
		n := m.lib.c.llama_tokenize(m.vocab, p, int32(len(text)), &toks[0], int32(len(toks)), addSpecial, parseSpecial)
		switch {
		case n == math.MinInt32:
			return nil, fmt.Errorf("tokenize: too many tokens for %d bytes of text", len(text))
		case n >= 0:
			return toks[:n], nil
		}
		toks = make([]int32, -n)
	}
	return nil, fmt.Errorf("%s", m.lib.withReason("tokenize failed"))
}

// TokenToPiece returns the text of one token. Byte-fallback tokens give
// single bytes that may be part of a UTF-8 sequence, so join pieces before
// treating them as text. special renders control tokens such as "</s>";
// otherwise they are empty.
func (m *Model) TokenToPiece(tok int32, special bool) (string, error) {
	m.handle()
	if err := m.checkToken(tok); err != nil {
		return "", err
	}
	buf := make([]byte, 64)
	for range 2 {
		n := m.lib.c.llama_token_to_piece(m.vocab, tok, &buf[0], int32(len(buf)), 0, special)
		if n >= 0 {
			return string(buf[:n]), nil
		}
		buf = make([]byte, -n)
	}
	return "", fmt.Errorf("token %d: no text", tok)
}

// Quantize writes a quantized copy of the GGUF model in to out
// (llama_model_quantize), using all cores unless p.NThread says otherwise.
func (l *Library) Quantize(in, out string, p QuantizeParams) error {
	if _, err := os.Stat(in); err != nil {
		return err
	}
	l.log.takeError()
	if rc := l.c.llama_model_quantize(in, out, &p); rc != 0 {
		return fmt.Errorf("%s", l.withReason(fmt.Sprintf("llama.cpp cannot quantize %s to %s", in, out)))
	}
	return nil
}
