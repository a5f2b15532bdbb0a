package lm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/blip2chat/blip2chat/engine/tokenizer"
)

// StopReason says why generation ended.
type StopReason int

const (
	StopNone        StopReason = iota // not finished (or failed)
	StopEOG                           // the model produced an end-of-generation token
	StopMaxTokens                     // MaxTokens tokens were generated
	StopCancelled                     // the caller's context was cancelled
	StopContextFull                   // no position left in the context
)

func (r StopReason) String() string {
	switch r {
	case StopEOG:
		return "end"
	case StopMaxTokens:
		return "max tokens"
	case StopCancelled:
		return "stopped"
	case StopContextFull:
		return "context full"
	}
	return "none"
}

// MarshalText writes the reason as String does ("end", "max tokens",
// "stopped", "context full"; "" for StopNone): the spelling session files
// have always used.
func (r StopReason) MarshalText() ([]byte, error) {
	if r == StopNone {
		return nil, nil
	}
	return []byte(r.String()), nil
}

// UnmarshalText reads what MarshalText writes; "" and "none" are StopNone.
func (r *StopReason) UnmarshalText(b []byte) error {
	for _, v := range []StopReason{StopNone, StopEOG, StopMaxTokens, StopCancelled, StopContextFull} {
		if string(b) == v.String() {
			*r = v
			return nil
		}
	}
	if len(b) == 0 {
		*r = StopNone
		return nil
	}
	return fmt.Errorf("unknown stop reason %q", b)
}

// GenerateOptions configure GenerateWith.
type GenerateOptions struct {
	MaxTokens int // most tokens to generate; <= 0 generates none
	// OnText receives the text of the generated tokens as it becomes
	// complete UTF-8 (never part of a character); nil discards it.
	OnText func(text string)
	// OnStep, if set, sees the logits each token was sampled from (valid
	// only during the call) and the token picked, before it is fed back;
	// an end-of-generation token is seen too.
	OnStep func(step int, logits []float32, id int32)
}

// Result describes a finished generation.
type Result struct {
	IDs  []int32 // the tokens generated and fed to the context
	Text string  // their text, as passed to OnText
	Stop StopReason
	// FirstToken is the time from the call to the first token sampled;
	// Elapsed the whole call.
	FirstToken, Elapsed time.Duration
}

// TokensPerSecond is the generation speed after the first token (0 when
// fewer than two tokens).
func (r Result) TokensPerSecond() float64 {
	d := r.Elapsed - r.FirstToken
	if len(r.IDs) < 2 || d <= 0 {
		return 0
	}
	return float64(len(r.IDs)-1) / d.Seconds()
}

// GenerateWith is Generate with more options and a fuller result. It
// expects c to hold the logits of its last position (after the prompt).
func GenerateWith(ctx context.Context, m Model, c Context, s Sampler, o GenerateOptions) (Result, error) {
	start := time.Now()
	var r Result
	var dec tokenizer.StreamDecoder
	var text []byte
	emit := func(t string) {
		if t == "" {
			return
		}
		text = append(text, t...)
		if o.OnText != nil {
			o.OnText(t)
		}
	}
	finish := func(stop StopReason, err error) (Result, error) {
		emit(dec.Flush())
		r.Text, r.Stop, r.Elapsed = string(text), stop, time.Since(start)
		return r, err
	}
	if o.MaxTokens <= 0 {
		return finish(StopMaxTokens, nil)
	}
	nv := m.Info().NVocab
	for step := 0; ; step++ {
		if err := ctx.Err(); err != nil {
			return finish(StopCancelled, err)
		}
		id := s.Sample(c)
		if step == 0 {
			r.FirstToken = time.Since(start)
		}
		if id < 0 || int(id) >= nv {
			return finish(StopNone, fmt.Errorf("generate: sampler returned token %d (no logits to sample from?)", id))
		}
		if o.OnStep != nil {
			o.OnStep(step, c.Logits(-1), id)
		}
		if m.IsEOG(id) {
			return finish(StopEOG, nil)
		}
		if c.Pos() >= c.NCtx() {
			return finish(StopContextFull, ErrContextFull)
		}
		if err := c.AppendTokens([]int32{id}, false); err != nil {
			if errors.Is(err, ErrContextFull) {
				return finish(StopContextFull, err)
			}
			return finish(StopNone, err)
		}
		r.IDs = append(r.IDs, id)
		emit(dec.Write(m.TokenBytes(id)))
		if len(r.IDs) >= o.MaxTokens {
			return finish(StopMaxTokens, nil)
		}
	}
}
