// Package lm is the contract between blip2chat's language-model backends
// and the code that drives them: engine/lm/llamacpp runs LLaMA-family and
// T5 models in llama.cpp, engine/lm/opt runs OPT natively in Go, and
// engine/model opens a GGUF file with the backend for its
// general.architecture. Callers never learn which one answers.
//
// A Model tokenizes and makes Contexts; a Context takes rows (embeddings:
// BLIP-2's soft tokens; or tokens), keeps a KV cache and gives the logits
// of the rows it evaluated; an encoder-decoder model (T5) also encodes.
// How soft tokens and a prompt become an answer (prefill, the encoder,
// decoding) is written once, in engine/generate.
package lm

import (
	"errors"
	"io"
	"time"

	"github.com/blip2chat/blip2chat/engine/kernels"
)

// Info describes a loaded model.
type Info struct {
	Arch string // general.architecture: "llama", "t5", "blip2-opt", ...
	Desc string // human-readable, e.g. "llama 7B Q4_K_M"
	// Backend names what runs the model, e.g. "llama.cpp 0.4.0
	// (/usr/lib/blip2chat)" or "Go (OPT)".
	Backend string
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
	// Piece returns a token's text for listings: the tokenizer's marks kept
	// (SentencePiece's ▁, byte-level BPE's Ġ), control tokens shown
	// ("</s>"), a byte that is not text as <0xNN>.
	Piece(id int32) string
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
	Threads int // 0: DefaultThreads(); never more than the usable cores (see Threads)
	// Exact turns off what trades accuracy for speed: flash attention off
	// and an f32 KV cache in llama.cpp. The setting for comparing numbers.
	Exact bool
	// AllLogits says the caller will ask for the logits of every appended
	// row (Append with all = true); backends may size buffers for it.
	AllLogits bool
	// NSeq > 1 makes a context for beam search (see MultiSeq): it holds up
	// to NSeq sequences. 0 or 1: one.
	NSeq int
	// NSeqNew is the most positions each forked sequence adds after the
	// fork (the beam search's max_new_tokens): backends whose sequences
	// share one cache size it for NCtx + (NSeq-1)*NSeqNew positions.
	// 0: NCtx.
	NSeqNew int
}

// MultiSeq is implemented by the Contexts of the backends that run beam
// search. A Context made with ContextOptions.NSeq = n holds up to n
// sequences sharing what was appended before they were forked (the prompt's
// KV cache is computed once). AppendEmbeddings, AppendTokens, Encode and
// Truncate work while one sequence is live (Encode makes every sequence's
// decoder see its output); Pos is the live sequences' common position.
type MultiSeq interface {
	// Seqs is the number of live sequences: 1 until Reorder forks.
	Seqs() int
	// AppendEach appends ids[i] to live sequence i, every one at Pos(), in
	// one backend call (the weights are read once for all); Logits(i) is
	// then sequence i's. len(ids) must be Seqs().
	AppendEach(ids []int32) error
	// Reorder makes sequence i hold what sequence parents[i] held, for
	// every i < len(parents) <= NSeq; len(parents) sequences are live
	// afterwards. Reorder([]int{i}) leaves sequence i as the only one.
	Reorder(parents []int) error
}

// PromptAppender is implemented by the Contexts of the backends that take
// a prompt's soft tokens and text tokens in one pass: a new image's prompt
// then reads the weights once for all its rows instead of once for the
// soft tokens and once for the text (the Go OPT backend, whose prefill is
// an int8 GEMM that a few dozen rows more cost little).
type PromptAppender interface {
	// AppendPrompt appends n rows of embeddings (as AppendEmbeddings) and
	// then the tokens ids (as AppendTokens) at Pos(), as if by the two
	// calls; Logits then indexes the n+len(ids) rows. Stats count the rows
	// and tokens as the two calls do, and one eval per pass.
	AppendPrompt(rows []float32, n int, ids []int32, all bool) error
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

// DefaultThreads is the number of threads a Context uses by default: the
// cores this process may run on (CPU affinity and GOMAXPROCS, which follows
// container limits), at most MaxDefaultThreads, since token generation is
// bound by memory bandwidth and more threads only contend.
func DefaultThreads() int {
	return min(kernels.UsableThreads(), MaxDefaultThreads)
}

// Threads is how many threads a Context asked for n runs on, in every
// backend: DefaultThreads when n < 1, and never more than the cores that
// can run them (kernels.UsableThreads).
func Threads(n int) int {
	if n < 1 {
		return DefaultThreads()
	}
	return kernels.CapThreads(n)
}

// MaxDefaultThreads caps DefaultThreads.
const MaxDefaultThreads = 16

// ErrContextFull is returned when an Append would run past NCtx.
var ErrContextFull = errors.New("the context is full")

// OpenOptions configure opening a model, whatever the backend.
type OpenOptions struct {
	Log io.Writer // backend log text (llama.cpp's messages); nil discards it
	// Progress, if set, receives the fraction of the model loaded (0..1).
	Progress func(frac float64)
	// VocabOnly says only the tokenizer is needed (Tokenize, TokenBytes,
	// Piece, IsEOG, Info): a backend may skip the weights, and NewContext
	// and TokenEmbeddings then fail.
	VocabOnly bool
	// GPULayers is how many layers a backend that can offload (llama.cpp
	// with a GPU build and a GPU) puts on the GPU: 0 none, AllLayers all.
	// Info.Device says where the model runs.
	GPULayers int
}

// AllLayers as OpenOptions.GPULayers offloads every layer.
const AllLayers = -1
