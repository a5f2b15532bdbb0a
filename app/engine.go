package app

import (
	"context"
	"image"
	"time"

	"github.com/blip2chat/blip2chat/engine/generate"
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/engine/model"
)

// Engine is what the app needs from a loaded model: one conversation about
// one image at a time. Its methods are called from one goroutine at a time
// (the app's worker), except Info and Usage, which may be called at any time.
//
// OpenEngine (real.go) backs it with engine/model and engine/chat.
type Engine interface {
	// Info describes the model; it does not change once loaded.
	Info() ModelInfo
	// SetImage encodes the image (seconds on a real model) and restarts the
	// conversation for it. img is the file at path, decoded by the app (to
	// show it) with imageprep.Load and ToRGB; path names it. When ctx is
	// cancelled it stops and returns ctx's error; the previous image and
	// conversation stay.
	SetImage(ctx context.Context, img image.Image, path string) (ImageStats, error)
	// Ask puts a question about the image and streams the answer to out
	// (greedy decoding and sampling: text pieces; beam search: the best
	// hypothesis after each step). When ctx is cancelled it returns what
	// was generated so far (beam search: the best hypothesis) with
	// Answer.Stop = lm.StopCancelled and a nil error; the partial answer
	// stays in the conversation.
	Ask(ctx context.Context, question string, out generate.Stream) (Answer, error)
	// Caption describes the image (the model's captioning prompt) as a
	// turn of the conversation.
	Caption(ctx context.Context, out generate.Stream) (Answer, error)
	// Retry generates the last answer again with the current settings
	// (a fresh draw, or another preset).
	Retry(ctx context.Context, out generate.Stream) (Answer, error)
	// Compare answers the last question again with the decoding of s and
	// leaves the conversation and the settings as they were (/compare).
	Compare(ctx context.Context, s Settings, out generate.Stream) (Answer, error)
	// Reset forgets the conversation, keeping the image.
	Reset() error
	// Restore puts turns of an earlier conversation about the current image
	// back into the context (resuming a session), without generating.
	Restore(turns []Turn) error
	// Settings returns the current settings; Apply changes them (already
	// validated by the app).
	Settings() Settings
	Apply(s Settings) error
	// Presets are the decoding presets resolved for the model
	// (generate.NewPreset), in generate.PresetNames' order.
	Presets() []generate.Preset
	// Tokens shows how the next prompt, with question as the user's text,
	// is tokenized.
	Tokens(question string) ([]Token, error)
	// Usage is the context used and its size, in tokens.
	Usage() (used, total int)
	Close() error
}

// AttentionEngine is an Engine that can say where its Q-Former's queries
// look in the current image (/attention). An optional interface: engines
// without it (fakes, retrieval) simply do not offer the overlay.
type AttentionEngine interface {
	Attention(ctx context.Context) (Attention, error)
}

// Attention is the Q-Former's cross-attention over the image's patches:
// for each query, Grid x Grid probabilities (row-major, top row first; the
// class token left out), averaged over the heads and the cross-attention
// layers. Plain numbers: the interface never sees a tensor.
type Attention struct {
	Grid    int
	Queries [][]float64
}

// ModelInfo describes a loaded model for the status line and /info.
type ModelInfo struct {
	Name    string // short name for the status line (the folder name)
	Dir     string
	Desc    string // e.g. "BLIP-2 · llama 7B Q4_K_M"
	Family  string // "blip-2", "instructblip"
	Backend string // "llama.cpp 0.4.0 (/path)", "Go (OPT)"
	// Device is where the language model runs ("CPU", "GPU: CUDA0 (...),
	// 32 of 32 layers"); "" for a backend without GPU offload (Go). Notice
	// is lm.Info.Notice: one line when a GPU was asked for and the model
	// runs on the CPU.
	Device, Notice string
	Details        []model.Row
	// LoadTime is how long opening the model took.
	LoadTime time.Duration
}

// ImageStats says how an image was encoded.
type ImageStats struct {
	Encode time.Duration // ViT + Q-Former + projection
	Tokens int           // soft tokens put in front of the prompt
}

// Turn is one question and its answer.
type Turn struct {
	Question string        `json:"question"`
	Answer   string        `json:"answer"`
	Caption  bool          `json:"caption,omitempty"` // asked with /caption
	Stop     lm.StopReason `json:"stop,omitempty"`    // "end", "max tokens", "stopped", "context full"
	// Tokens say how sure the model was of each piece of Answer (absent
	// in sessions written before they were recorded).
	Tokens []TokenConfidence `json:"tokens,omitempty"`
}

// TokenConfidence is how sure the model was of one token of an answer:
// P is its probability in the softmax of the raw logits it was chosen
// from, Top the most probable tokens there, best first. Text is what the
// token adds to the answer: whole characters ("" for a token that only
// starts one; the token that completes it carries it).
type TokenConfidence struct {
	ID   int32         `json:"id"`
	Text string        `json:"text"`
	P    float64       `json:"p"`
	Top  []Alternative `json:"top,omitempty"`
}

// Alternative is one of the tokens the model could have chosen.
type Alternative struct {
	Text string  `json:"text"`
	P    float64 `json:"p"`
}

// Answer is a finished (or stopped) answer and how it went.
type Answer struct {
	Text         string
	Stop         lm.StopReason
	Tokens       int // tokens generated
	PromptTokens int // tokens fed before generating
	FirstToken   time.Duration
	Elapsed      time.Duration
	TokensPerSec float64
	// Confidence says how sure the model was of each token (nil when the
	// engine does not say).
	Confidence []TokenConfidence
}

// Token is one token of a tokenized prompt.
type Token struct {
	ID    int
	Piece string // its text, with the tokenizer's marks (▁ for a space)
	Soft  bool   // a placeholder for the image's soft tokens
}
