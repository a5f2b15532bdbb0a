// Package generate is blip2chat's one inference driver: it puts the soft
// tokens and the prompt into a language model's context (prefill) and
// decodes the answer with transformers' semantics (greedy, sampling, beam
// search, the logits processors in transformers' order). chat, ask, bench
// and batch all go through it.
package generate

import (
	"encoding/json"
	"fmt"
	"math"
)

// Params are the decoding settings, named after transformers' generate()
// arguments. They are the one settings type from the checkpoint's
// generation_config to the session file: the JSON names of the fields that
// existed before (temperature, top_p, top_k, max_tokens, seed) are kept so
// that old sessions load. Decode into DefaultParams() so that fields an
// older file lacks keep their defaults (LengthPenalty's default is 1, not 0).
type Params struct {
	// Preset names the preset these settings came from ("" for none);
	// informational: the fields below are what decoding uses.
	Preset string `json:"preset,omitempty"`

	// Temperature 0 means no sampling: greedy (NumBeams 1) or beam search.
	Temperature float64 `json:"temperature"`
	TopK        int     `json:"top_k"`      // 0: off
	TopP        float64 `json:"top_p"`      // 1: off
	MinP        float64 `json:"min_p"`      // 0: off
	Seed        int64   `json:"seed"`       // -1: a new random seed each answer
	MaxTokens   int     `json:"max_tokens"` // max_new_tokens
	// MinNewTokens masks the end-of-sequence tokens while fewer new tokens
	// exist (transformers' min_new_tokens).
	MinNewTokens int `json:"min_new_tokens,omitempty"`

	// RepetitionPenalty divides positive logits (multiplies negative ones)
	// of every token already in the sequence: prompt text tokens and
	// generated ones, never soft tokens. 1: off. RepeatLastN > 0 limits it
	// to the last N tokens (llama.cpp's habit); 0 is the whole sequence, as
	// transformers does.
	RepetitionPenalty float64 `json:"repetition_penalty,omitempty"`
	RepeatLastN       int     `json:"repeat_last_n,omitempty"`
	NoRepeatNgramSize int     `json:"no_repeat_ngram_size,omitempty"`

	// Beam search (NumBeams > 1, Temperature 0).
	NumBeams           int           `json:"num_beams,omitempty"`
	LengthPenalty      float64       `json:"length_penalty"`
	EarlyStopping      EarlyStopping `json:"early_stopping,omitempty"`
	NumReturnSequences int           `json:"num_return_sequences,omitempty"`

	// EOS, when set, replaces the model's stop tokens.
	EOS []int32 `json:"eos_token_id,omitempty"`
}

// EarlyStopping is transformers' early_stopping: when beam search ends.
type EarlyStopping string

const (
	// EarlyStopFalse (the default, "") stops when no running beam can
	// beat the worst kept hypothesis by transformers' heuristic.
	EarlyStopFalse EarlyStopping = ""
	// EarlyStopTrue stops as soon as NumBeams hypotheses are finished.
	EarlyStopTrue EarlyStopping = "true"
	// EarlyStopNever stops only when no running beam can beat the worst
	// kept hypothesis at any future length (the canonical beam search).
	EarlyStopNever EarlyStopping = "never"
)

// ParseEarlyStopping reads "true", "false" or "never".
func ParseEarlyStopping(s string) (EarlyStopping, error) {
	switch s {
	case "true", "True":
		return EarlyStopTrue, nil
	case "false", "False", "":
		return EarlyStopFalse, nil
	case "never":
		return EarlyStopNever, nil
	}
	return "", fmt.Errorf("early stopping takes true, false or never, not %q", s)
}

// String is the value as transformers spells it.
func (e EarlyStopping) String() string {
	if e == EarlyStopFalse {
		return "false"
	}
	return string(e)
}

// UnmarshalJSON takes JSON true/false (generation_config.json) or the
// strings "true", "false", "never".
func (e *EarlyStopping) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case bool:
		*e = EarlyStopFalse
		if v {
			*e = EarlyStopTrue
		}
		return nil
	case string:
		p, err := ParseEarlyStopping(v)
		*e = p
		return err
	case nil:
		*e = EarlyStopFalse
		return nil
	}
	return fmt.Errorf("early_stopping: %s is not true, false or \"never\"", b)
}

// DefaultParams are transformers' generate() defaults (greedy, no
// penalty), with DefaultMaxNewTokens as the answer limit.
func DefaultParams() Params {
	return Params{TopK: 0, TopP: 1, Seed: -1, MaxTokens: DefaultMaxNewTokens, RepetitionPenalty: 1, NumBeams: 1,
		LengthPenalty: 1, NumReturnSequences: 1}
}

// Sampling reports whether the next token is drawn at random.
func (p Params) Sampling() bool { return p.Temperature > 0 }

// Beams is the number of beams (1 without beam search).
func (p Params) Beams() int {
	if p.Sampling() || p.NumBeams < 1 {
		return 1
	}
	return p.NumBeams
}

// Validate checks every field's range; the error names the field as
// transformers does.
func (p Params) Validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"temperature", p.Temperature}, {"top_p", p.TopP}, {"min_p", p.MinP},
		{"repetition_penalty", p.RepetitionPenalty}, {"length_penalty", p.LengthPenalty}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("%s is %v", f.name, f.v)
		}
	}
	const big = 1 << 24
	switch {
	case p.Temperature < 0:
		return fmt.Errorf("temperature %v is negative (0 means no sampling)", p.Temperature)
	case p.TopK < 0 || p.TopK > big:
		return fmt.Errorf("top_k %d is outside 0..%d", p.TopK, big)
	case p.TopP < 0 || p.TopP > 1:
		return fmt.Errorf("top_p %v is outside 0..1", p.TopP)
	case p.MinP < 0 || p.MinP > 1:
		return fmt.Errorf("min_p %v is outside 0..1", p.MinP)
	case p.Seed < -1 || p.Seed > math.MaxUint32-1:
		return fmt.Errorf("seed %d: use -1 (random) or 0..%d", p.Seed, math.MaxUint32-1)
	case p.MaxTokens < 0 || p.MaxTokens > big:
		return fmt.Errorf("max_new_tokens %d is outside 0..%d", p.MaxTokens, big)
	case p.MinNewTokens < 0 || p.MinNewTokens > big:
		return fmt.Errorf("min_new_tokens %d is outside 0..%d", p.MinNewTokens, big)
	case p.RepetitionPenalty < 0:
		return fmt.Errorf("repetition_penalty %v is negative", p.RepetitionPenalty)
	case p.RepeatLastN < 0 || p.RepeatLastN > big:
		return fmt.Errorf("repeat_last_n %d is outside 0..%d", p.RepeatLastN, big)
	case p.NoRepeatNgramSize < 0 || p.NoRepeatNgramSize > big:
		return fmt.Errorf("no_repeat_ngram_size %d is outside 0..%d", p.NoRepeatNgramSize, big)
	case p.NumBeams < 0 || p.NumBeams > 64:
		return fmt.Errorf("num_beams %d is outside 1..64", p.NumBeams)
	case p.NumReturnSequences < 0 || p.NumReturnSequences > max(1, p.NumBeams):
		return fmt.Errorf("num_return_sequences %d must be between 1 and num_beams (%d)", p.NumReturnSequences, max(1, p.NumBeams))
	}
	if _, err := ParseEarlyStopping(string(p.EarlyStopping)); err != nil {
		return err
	}
	for _, id := range p.EOS {
		if id < 0 {
			return fmt.Errorf("eos_token_id %d is negative", id)
		}
	}
	return nil
}

// Changes lists the decoding settings of p that differ from base (a
// preset's), as name=value with transformers' names, for showing what was
// changed from a preset.
func (p Params) Changes(base Params) []string {
	var out []string
	add := func(name string, a, b any) {
		if fmt.Sprint(a) != fmt.Sprint(b) {
			out = append(out, fmt.Sprintf("%s=%v", name, a))
		}
	}
	add("temperature", p.Temperature, base.Temperature)
	if p.Sampling() {
		add("top_k", p.TopK, base.TopK)
		add("top_p", p.TopP, base.TopP)
		add("min_p", p.MinP, base.MinP)
		add("seed", p.Seed, base.Seed)
	} else {
		add("num_beams", p.Beams(), base.Beams())
	}
	if p.Beams() > 1 {
		add("length_penalty", p.LengthPenalty, base.LengthPenalty)
		add("early_stopping", p.EarlyStopping, base.EarlyStopping)
		add("num_return_sequences", p.NumReturnSequences, base.NumReturnSequences)
	}
	add("max_new_tokens", p.MaxTokens, base.MaxTokens)
	add("min_new_tokens", p.MinNewTokens, base.MinNewTokens)
	add("repetition_penalty", p.RepetitionPenalty, base.RepetitionPenalty)
	add("repeat_last_n", p.RepeatLastN, base.RepeatLastN)
	add("no_repeat_ngram_size", p.NoRepeatNgramSize, base.NoRepeatNgramSize)
	add("eos_token_id", p.EOS, base.EOS)
	return out
}
