// Package lm is the contract between blip2chat's language-model backends and
// the code that talks to them (engine/chat, engine/model, the ask command).
//
// Two backends implement Model: engine/lm/llamacpp runs LLaMA-family and T5 models
// in llama.cpp, engine/lm/opt runs OPT natively in Go. Callers never learn which
// one answers. A backend registers itself for the general.architecture values
// it runs (RegisterBackend, from an init function) and Open picks it from the
// GGUF file:
//
//	func init() { lm.RegisterBackend("blip2-opt", openOPT) } // in engine/lm/opt
//	m, err := lm.Open("model/llm.gguf", lm.OpenOptions{})  // in engine/model
//
// BLIP-2 puts Q "soft tokens" (rows of embeddings made by the Q-Former and
// the projection) in front of the text. A decoder-only model takes them as an
// embedding batch, then the prompt's tokens:
//
//	c, _ := m.NewContext(lm.ContextOptions{})
//	c.AppendEmbeddings(soft, q, false)
//	c.AppendTokens(promptIDs, false)
//	s, _ := c.NewSampler(lm.SamplingParams{Greedy: true})
//	ids, err := lm.Generate(ctx, m, c, s, 30, func(text string) { fmt.Print(text) })
//
// An encoder-decoder model (T5) encodes one batch [soft tokens ; embeddings
// of the prompt tokens] (Model.TokenEmbeddings gives the latter), then the
// decoder starts from Info.DecoderStart:
//
//	emb, _ := m.TokenEmbeddings(promptIDs)
//	c.Encode(append(soft, emb...), q+len(promptIDs))
//	c.AppendTokens([]int32{m.Info().DecoderStart}, false)
//	ids, err := lm.Generate(ctx, m, c, s, 30, onText)
//
// Sampling has one meaning everywhere: SamplingParams describe llama.cpp's
// sampler chain (penalties -> top-k -> top-p -> min-p -> temperature ->
// random draw, or penalties -> greedy), and GoSampler is a portable copy of
// that chain for backends that do not run in llama.cpp; with the same seed
// it draws the same tokens from the same logits.
package lm

import (
	"context"
	"errors"
	"runtime"
	"time"
)

// Info describes a loaded model.
type Info struct {
	Arch string // general.architecture: "llama", "t5", "blip2-opt", ...
	Desc string // human-readable, e.g. "llama 7B Q4_K_M"
	// NCtx is the context size NewContext uses when ContextOptions.NCtx is
	// 0 (the training context, capped at DefaultMaxCtx); NCtxTrain is the
	// context the model was trained with.
	NCtx, NCtxTrain int
	NEmbd           int // width of one input embedding row (a soft token)
	NVocab          int
	EncoderDecoder  bool  // T5: prompts go through Context.Encode
	BOS, EOS        int32 // -1 when absent
	DecoderStart    int32 // first decoder token of an encoder-decoder model, -1 otherwise
	AddBOS, AddEOS  bool  // what Tokenize adds when addSpecial is true
	// Device says where the model runs, e.g. "CPU" or "GPU: CUDA0 (...),
	// 32 of 32 layers". Notice, when set, is one line to show the user
	// once: a GPU was asked for and the model runs on the CPU, and why.
	Device, Notice string
}

// DefaultMaxCtx caps Info.NCtx: the KV cache of a longer default context
// would cost memory that a chat about one image rarely needs.
const DefaultMaxCtx = 4096

// Model is a loaded language model. Its methods may be called from several
// goroutines; the Contexts it makes may not (one goroutine per Context).
type Model interface {
	Info() Info
	// Tokenize converts text to token ids. addSpecial adds BOS/EOS as the
	// model's tokenizer does (Info.AddBOS, Info.AddEOS). Text that looks
	// like a special token ("</s>") is tokenized as plain text.
	Tokenize(text string, addSpecial bool) ([]int32, error)
	// TokenBytes returns the raw bytes of a token's text: possibly a part of
	// a UTF-8 character (byte-fallback and byte-level tokens), empty for
	// control tokens. Join them with engine/tokenizer.StreamDecoder.
	TokenBytes(id int32) []byte
	// IsEOG reports whether id ends generation (EOS, end of turn, ...).
	IsEOG(id int32) bool
	// TokenEmbeddings returns the rows of the input embedding table for ids
	// (len(ids) x NEmbd floats, dequantized), as T5's encoder input.
	TokenEmbeddings(ids []int32) ([]float32, error)
	// NewContext makes an inference context (a KV cache) for the model.
	NewContext(o ContextOptions) (Context, error)
	// Close frees the model; its Contexts must be closed first.
	Close() error
}

// ContextOptions configure Model.NewContext. Zero values pick defaults.
type ContextOptions struct {
	NCtx    int // positions the context holds; 0: Info.NCtx
	NBatch  int // most rows passed to the backend in one call; 0: backend default
	Threads int // 0: DefaultThreads()
	// Exact turns off what trades accuracy for speed: flash attention off
	// and an f32 KV cache in llama.cpp. The setting for comparing numbers.
	Exact bool
	// AllLogits says the caller will ask for the logits of every appended
	// row (Append with all = true); backends may size buffers for it.
	AllLogits bool
}

// Context is one sequence: its KV cache (decoder-only) or an encoder output
// and the decoder's KV cache (encoder-decoder). It is not safe for
// concurrent use.
type Context interface {
	// NCtx is the number of positions the context holds.
	NCtx() int
	// Pos is the number of positions filled (the decoder side of an
	// encoder-decoder model).
	Pos() int
	// AppendEmbeddings appends n rows of embeddings (n x Info.NEmbd floats,
	// the soft tokens) at Pos(). The backend is called with exactly these
	// rows (Stats counts them). With all, the logits of every row are kept,
	// else only the last row's.
	AppendEmbeddings(rows []float32, n int, all bool) error
	// AppendTokens appends tokens at Pos(), like AppendEmbeddings.
	AppendTokens(ids []int32, all bool) error
	// Logits returns the logits (Info.NVocab floats) of row i of the last
	// Append, i = -1 meaning its last row; nil when that row was not kept.
	// The slice may alias backend memory: it is valid until the next call
	// on the Context.
	Logits(i int) []float32
	// Truncate drops positions >= pos from the KV cache; Pos() becomes pos.
	Truncate(pos int) error
	// Encode runs the encoder of an encoder-decoder model over n rows of
	// embeddings and empties the decoder (Pos() = 0); AppendTokens then
	// feeds the decoder. Decoder-only models return an error.
	Encode(rows []float32, n int) error
	// NewSampler makes a sampler for this context's model.
	NewSampler(p SamplingParams) (Sampler, error)
	// Stats returns the counters since the Context was made.
	Stats() Stats
	Close() error
}

// Stats count what a Context passed to its backend, so that tests can check
// that a new turn of a conversation feeds only its new tokens.
type Stats struct {
	TokensIn        int // tokens passed to the decoder
	EmbeddingRowsIn int // embedding rows passed to the decoder
	EncoderRowsIn   int // rows passed to the encoder
	Evals           int // backend calls (decode and encode batches)
	// PromptTime is spent in Encode and in Appends of more than one row;
	// GenTime in one-row Appends (generation steps).
	PromptTime, GenTime time.Duration
}

// Sampler picks the next token from a Context's logits.
type Sampler interface {
	// Sample picks a token from the Context's Logits(-1) and records it in
	// the history the repetition penalty looks at (no Accept needed, as in
	// llama.cpp). It returns -1 when the Context holds no logits.
	Sample(c Context) int32
	// Accept records a token the sampler did not pick (a prompt token) in
	// that history.
	Accept(id int32)
	// Reset forgets the history and restarts the random draw from the seed.
	Reset()
	Close()
}

// DefaultThreads is the number of threads a Context uses by default: the
// cores this process may run on (CPU affinity and GOMAXPROCS, which follows
// container limits), at most MaxDefaultThreads, since token generation is
// bound by memory bandwidth and more threads only contend.
func DefaultThreads() int {
	return max(1, min(runtime.NumCPU(), runtime.GOMAXPROCS(0), MaxDefaultThreads))
}

// MaxDefaultThreads caps DefaultThreads.
const MaxDefaultThreads = 16

// ErrContextFull is returned when an Append would run past NCtx.
var ErrContextFull = errors.New("the context is full")

// Generate streams up to maxTokens tokens after the current state of c: it
// samples from c's last logits, feeds each token back, and calls onText
// (which may be nil) with complete UTF-8 text only. It stops at an
// end-of-generation token (which is neither returned nor fed), after
// maxTokens, when the context is full (ErrContextFull) or when ctx is
// cancelled (checked between tokens; ctx.Err() is returned). The ids
// returned are always the tokens fed to c, even with an error.
func Generate(ctx context.Context, m Model, c Context, s Sampler, maxTokens int, onText func(string)) (ids []int32, err error) {
	r, err := GenerateWith(ctx, m, c, s, GenerateOptions{MaxTokens: maxTokens, OnText: onText})
	return r.IDs, err
}
