package generate

import (
	"fmt"
	"slices"

	"github.com/blip2chat/blip2chat/weights/hfconfig"
)

// Checkpoint is what resolving a checkpoint's decoding settings needs to
// know besides its generation_config.json.
type Checkpoint struct {
	Family   string // config.json model_type: "blip-2" or "instructblip"
	TextType string // text_config.model_type: "opt", "llama", "t5"
	// PromptTokens is how many positions generation_config's max_length and
	// min_length count before the first new token, as transformers 5 counts
	// them: decoder-only, the image placeholders (num_query_tokens), BOS
	// and the prompt's tokens; T5, the decoder start token.
	PromptTokens int
	ModelEOS     int32 // the tokenizer's end of sequence (</s>); -1 if none
	Newline      int32 // the token of "\n" (BLIP-2 OPT's stop token); -1 if unknown
}

// DefaultMaxNewTokens is the answer limit when generation_config.json sets
// none (its max_length is transformers' default 20).
const DefaultMaxNewTokens = 128

// MinMaxNewTokens is the floor of a max_length converted to new tokens:
// transformers counts the prompt (and in transformers 5 the image
// placeholders) in max_length, which leaves a BLIP-2 prompt no room or a
// few tokens; LAVIS's own captions run to 30.
const MinMaxNewTokens = 32

// StopTokens are the tokens that end an answer for the checkpoint, with a
// note for each place where they differ from generation_config.json:
//
//   - BLIP-2 OPT stops at "\n" (50118), as LAVIS trained it (captions are
//     text + "\n"); the hub's newer generation_config says so, older
//     checkpoints have no file;
//   - InstructBLIP-Vicuna stops at the tokenizer's </s> = 2: its
//     generation_config's eos_token_id 1 (<s> in LLaMA's vocabulary) was
//     copied from another model and never ends an answer;
//   - otherwise generation_config's eos_token_id (an int or a list), else
//     the model's.
func StopTokens(g *hfconfig.GenerationConfig, ck Checkpoint) ([]int32, []string) {
	var file []int32
	for _, id := range g.EOSTokenIDs {
		file = append(file, int32(id))
	}
	var notes []string
	switch {
	case ck.Family == "instructblip" && ck.TextType == "llama" && ck.ModelEOS >= 0:
		want := []int32{ck.ModelEOS}
		if len(file) > 0 && !slices.Equal(file, want) {
			notes = append(notes, fmt.Sprintf("stop token %d (</s>) instead of generation_config's eos_token_id %v, as LAVIS trained InstructBLIP-Vicuna", ck.ModelEOS, file))
		}
		return want, notes
	case len(file) > 0:
		return file, nil
	case ck.TextType == "opt" && ck.Newline >= 0:
		notes = append(notes, fmt.Sprintf(`stop token %d ("\n"), as LAVIS trained BLIP-2 OPT; the checkpoint has no generation_config eos_token_id`, ck.Newline))
		return []int32{ck.Newline}, notes
	case ck.ModelEOS >= 0:
		return []int32{ck.ModelEOS}, nil
	}
	return nil, nil
}

// FromGenerationConfig is the decoding transformers' generate() does with
// the checkpoint's generation_config.json and no arguments (the
// `reference` preset), with notes (one line each) where blip2chat has to
// differ:
//
//   - do_sample false: greedy (num_beams 1) or beam search (top_k and
//     top_p kept for when sampling is turned on); true: sampling with
//     temperature, top_k (default 50), top_p;
//   - num_beams, repetition_penalty, length_penalty, no_repeat_ngram_size
//     as given; the stop tokens as StopTokens says;
//   - max_new_tokens as given; else max_length, which counts the prompt
//     (ck.PromptTokens), converted to new tokens with MinMaxNewTokens as
//     the floor, and transformers' default max_length 20 (or none) read as
//     no limit given: DefaultMaxNewTokens;
//   - min_new_tokens as given, raised by min_length converted the same way.
//
// early_stopping, num_return_sequences and min_p are not read from the
// file (weights/hfconfig does not parse them): transformers' defaults.
func FromGenerationConfig(g *hfconfig.GenerationConfig, ck Checkpoint) (Params, []string) {
	p := DefaultParams()
	p.Preset = "reference"
	var notes []string
	// top_k and top_p are carried even without do_sample (they act only
	// when sampling), so that turning sampling on samples as generate()
	// with do_sample=True would.
	p.TopK, p.TopP = g.TopK, g.TopP
	if g.DoSample {
		p.Temperature = g.Temperature
		if p.Temperature <= 0 {
			// transformers refuses do_sample with temperature 0; the
			// intent is the most likely token.
			p.Temperature = 0
			notes = append(notes, "do_sample with temperature 0: greedy")
		}
	}
	p.NumBeams = max(1, g.NumBeams)
	p.RepetitionPenalty = g.RepetitionPenalty
	p.LengthPenalty = g.LengthPenalty
	p.NoRepeatNgramSize = g.NoRepeatNGramSize
	p.MinNewTokens = g.MinNewTokens

	switch def := hfconfig.DefaultGenerationConfig().MaxLength; {
	case g.MaxNewTokens > 0:
		p.MaxTokens = g.MaxNewTokens
	case g.MaxLength == def || g.MaxLength <= 0:
		p.MaxTokens = DefaultMaxNewTokens
		notes = append(notes, fmt.Sprintf("no max_new_tokens and transformers' default max_length %d (prompt included): at most %d new tokens", def, DefaultMaxNewTokens))
	default:
		n := g.MaxLength - ck.PromptTokens
		p.MaxTokens = max(n, MinMaxNewTokens)
		if n < MinMaxNewTokens {
			notes = append(notes, fmt.Sprintf("max_length %d counts the %d prompt positions, leaving %d new tokens: raised to %d", g.MaxLength, ck.PromptTokens, max(n, 0), MinMaxNewTokens))
		} else {
			notes = append(notes, fmt.Sprintf("max_length %d less the %d prompt positions: %d new tokens", g.MaxLength, ck.PromptTokens, n))
		}
	}
	if g.MinLength > 0 {
		if n := g.MinLength - ck.PromptTokens; n > p.MinNewTokens {
			p.MinNewTokens = n
			notes = append(notes, fmt.Sprintf("min_length %d less the %d prompt positions: at least %d new tokens", g.MinLength, ck.PromptTokens, n))
		} else if n <= 0 {
			notes = append(notes, fmt.Sprintf("min_length %d is within the %d prompt positions: no minimum", g.MinLength, ck.PromptTokens))
		}
	}
	p.MinNewTokens = min(p.MinNewTokens, p.MaxTokens)
	eos, eosNotes := StopTokens(g, ck)
	p.EOS = eos
	notes = append(notes, eosNotes...)
	return p, notes
}
