package app

import (
	"context"
	"fmt"
	"image"
	"math"
	"strconv"
	"strings"
	"time"

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
	// Ask puts a question about the image and streams the answer to onText.
	// When ctx is cancelled it returns what was generated so far with
	// Answer.Stop = StopCancelled and a nil error; the partial answer stays
	// in the conversation.
	Ask(ctx context.Context, question string, onText func(string)) (Answer, error)
	// Caption describes the image (the model's captioning prompt) as a
	// turn of the conversation.
	Caption(ctx context.Context, onText func(string)) (Answer, error)
	// Retry generates the last answer again (with a fresh draw).
	Retry(ctx context.Context, onText func(string)) (Answer, error)
	// Reset forgets the conversation, keeping the image.
	Reset() error
	// Restore puts turns of an earlier conversation about the current image
	// back into the context (resuming a session), without generating.
	Restore(turns []Turn) error
	// Settings returns the current settings; Apply changes them (already
	// validated by the app).
	Settings() Settings
	Apply(s Settings) error
	// Tokens shows how the next prompt, with question as the user's text,
	// is tokenized.
	Tokens(question string) ([]Token, error)
	// Usage is the context used and its size, in tokens.
	Usage() (used, total int)
	Close() error
}

// ModelInfo describes a loaded model for the status line and /info.
type ModelInfo struct {
	Name    string // short name for the status line (the folder name)
	Dir     string
	Desc    string // e.g. "BLIP-2 · llama 7B Q4_K_M"
	Family  string // "blip-2", "instructblip"
	Backend string // "llama.cpp 0.4.0 (/path)", "Go (OPT)"
	Details []model.Row
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
	Question string `json:"question"`
	Answer   string `json:"answer"`
	Caption  bool   `json:"caption,omitempty"` // asked with /caption
	Stop     string `json:"stop,omitempty"`    // see Stop* constants
}

// Why an answer ended.
const (
	StopEnd         = "end"
	StopMaxTokens   = "max tokens"
	StopCancelled   = "stopped"
	StopContextFull = "context full"
	// StopInterrupted: the program ended while the answer was generated
	// (a crash, a kill); the session file kept what had come.
	StopInterrupted = "interrupted"
)

// Answer is a finished (or stopped) answer and how it went.
type Answer struct {
	Text         string
	Stop         string // Stop* constants
	Tokens       int    // tokens generated
	PromptTokens int    // tokens fed before generating
	FirstToken   time.Duration
	Elapsed      time.Duration
	TokensPerSec float64
}

// Token is one token of a tokenized prompt.
type Token struct {
	ID    int
	Piece string // its text, with the tokenizer's marks (▁ for a space)
	Soft  bool   // a placeholder for the image's soft tokens
}

// Settings are the generation settings /set changes.
type Settings struct {
	Temperature float64 `json:"temperature"`
	TopP        float64 `json:"top_p"`
	TopK        int     `json:"top_k"`
	MaxTokens   int     `json:"max_tokens"`
	Seed        int64   `json:"seed"` // -1: a new random seed each answer
	Template    string  `json:"template"`
	Threads     int     `json:"threads"`
}

// SettingKeys lists the keys of /set in display order.
var SettingKeys = []string{"temperature", "top_p", "top_k", "max_tokens", "seed", "template", "threads"}

// settingHelp says what each setting is, for /set.
var settingHelp = map[string]string{
	"temperature": "randomness, 0 = greedy (0-5)",
	"top_p":       "nucleus sampling mass (0-1, 1 = off)",
	"top_k":       "keep the k most likely tokens (0 = off)",
	"max_tokens":  "longest answer, in tokens",
	"seed":        "random seed (-1 = random each answer)",
	"template":    "prompt template, {prompt} = your text",
	"threads":     "CPU threads",
}

// Get returns one setting as text.
func (s Settings) Get(key string) (string, bool) {
	switch key {
	case "temperature":
		return strconv.FormatFloat(s.Temperature, 'g', -1, 64), true
	case "top_p":
		return strconv.FormatFloat(s.TopP, 'g', -1, 64), true
	case "top_k":
		return strconv.Itoa(s.TopK), true
	case "max_tokens":
		return strconv.Itoa(s.MaxTokens), true
	case "seed":
		return strconv.FormatInt(s.Seed, 10), true
	case "template":
		return strconv.Quote(s.Template), true
	case "threads":
		return strconv.Itoa(s.Threads), true
	}
	return "", false
}

// With returns s with key set to the parsed value, or an error (one line)
// saying what values the key takes.
func (s Settings) With(key, value string) (Settings, error) {
	value = strings.TrimSpace(value)
	num := func() (float64, error) {
		f, err := strconv.ParseFloat(value, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("%s takes a number, not %q", key, value)
		}
		return f, nil
	}
	integer := func() (int64, error) {
		i, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s takes a whole number, not %q", key, value)
		}
		return i, nil
	}
	switch key {
	case "temperature":
		f, err := num()
		if err != nil {
			return s, err
		}
		if f < 0 || f > 5 {
			return s, fmt.Errorf("temperature must be between 0 and 5")
		}
		s.Temperature = f
	case "top_p":
		f, err := num()
		if err != nil {
			return s, err
		}
		if f <= 0 || f > 1 {
			return s, fmt.Errorf("top_p must be in (0, 1]")
		}
		s.TopP = f
	case "top_k":
		i, err := integer()
		if err != nil {
			return s, err
		}
		if i < 0 || i > 1_000_000 {
			return s, fmt.Errorf("top_k must be 0 (off) or a positive number")
		}
		s.TopK = int(i)
	case "max_tokens":
		i, err := integer()
		if err != nil {
			return s, err
		}
		if i < 1 || i > 1_000_000 {
			return s, fmt.Errorf("max_tokens must be at least 1")
		}
		s.MaxTokens = int(i)
	case "seed":
		i, err := integer()
		if err != nil {
			return s, err
		}
		if i < -1 || i > 0xFFFFFFFE {
			return s, fmt.Errorf("seed must be -1 (random) or between 0 and 4294967294")
		}
		s.Seed = i
	case "template":
		t := value
		if uq, err := strconv.Unquote(value); err == nil {
			t = uq
		}
		if !strings.Contains(t, "{prompt}") {
			return s, fmt.Errorf("the template must contain {prompt}, where your text goes")
		}
		s.Template = t
	case "threads":
		i, err := integer()
		if err != nil {
			return s, err
		}
		if i < 1 || i > 512 {
			return s, fmt.Errorf("threads must be between 1 and 512")
		}
		s.Threads = int(i)
	default:
		return s, fmt.Errorf("unknown setting %q; settings: %s", key, strings.Join(SettingKeys, ", "))
	}
	return s, nil
}
