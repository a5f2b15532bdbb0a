package generate

import (
	"fmt"
	"strings"

	"github.com/blip2chat/blip2chat/weights/hfconfig"
)

// Preset is a named decoding a user can pick.
type Preset struct {
	Name        string
	Description string
	// Prompt is the prompt LAVIS used with the setting: "{}" stands for
	// the question; a prompt without "{}" is the caption prompt (the
	// question empty); "" keeps the model's template. ask uses it when the
	// preset is named; a chat keeps its template.
	Prompt string
	Params Params
	// Notes say, one line each, where the preset follows the checkpoint's
	// generation_config.json loosely (see FromGenerationConfig and
	// StopTokens).
	Notes []string
}

// PresetNames lists the presets, in the order help shows them.
func PresetNames() []string { return []string{"reference", "caption", "vqa", "instruct", "creative"} }

// NewPreset resolves a preset for a checkpoint (generation_config.json g,
// facts ck). Every preset stops at the checkpoint's stop tokens
// (StopTokens).
//
//   - reference: generation_config.json as transformers reads it;
//   - caption: LAVIS's captioning (caption_coco_*_eval.yaml: 5 beams,
//     30 new tokens at most, 8 at least; the pretrained models' prompt is
//     empty, as the template's caption). InstructBLIP: its COCO caption
//     setting, prompt "A short image caption.", 5 beams, 10 to 80 new
//     tokens;
//   - vqa: LAVIS's predict_answers (5 beams, 10 new tokens at most, 1 at
//     least; "Question: {} Short answer:"), with LAVIS's length_penalty
//     defaults: 0 for BLIP-2 OPT, -1 for FlanT5 and InstructBLIP (whose
//     OK-VQA prompt is "Question: {} Short Answer:"), which favour short
//     answers;
//   - instruct: the InstructBLIP model card's generate(): 5 beams, at most
//     256 new tokens, at least 1, repetition penalty 1.5, length penalty 1
//     (its top_p 0.9 and temperature 1 do nothing without sampling);
//   - creative: sampling with llama.cpp's chat habits (temperature 0.8,
//     top-k 40, top-p 0.95, min-p 0.05, repetition penalty 1.1 over the
//     last 64 tokens), blip2chat's defaults before presets existed.
func NewPreset(name string, g *hfconfig.GenerationConfig, ck Checkpoint) (Preset, error) {
	eos, notes := StopTokens(g, ck)
	beams := func(n, maxNew, minNew int, lp float64) Params {
		p := DefaultParams()
		p.NumBeams, p.MaxTokens, p.MinNewTokens, p.LengthPenalty = n, maxNew, minNew, lp
		return p
	}
	instruct := ck.Family == "instructblip"
	var pr Preset
	switch name {
	case "reference":
		p, n := FromGenerationConfig(g, ck)
		pr = Preset{Description: "the checkpoint's generation_config.json, as transformers' generate() reads it", Params: p}
		notes = n // includes the stop-token notes
	case "caption":
		if instruct {
			pr = Preset{Description: "LAVIS's InstructBLIP COCO captions: 5 beams, 10 to 80 new tokens",
				Prompt: "A short image caption.", Params: beams(5, 80, 10, 1)}
		} else {
			pr = Preset{Description: "LAVIS's BLIP-2 captions: 5 beams, 8 to 30 new tokens, no prompt",
				Prompt: "", Params: beams(5, 30, 8, 1)}
		}
	case "vqa":
		lp := -1.0
		prompt := "Question: {} Short answer:"
		if instruct {
			prompt = "Question: {} Short Answer:"
		} else if ck.TextType == "opt" {
			lp = 0
		}
		pr = Preset{Description: fmt.Sprintf("LAVIS's short answers: 5 beams, 1 to 10 new tokens, length penalty %g", lp),
			Prompt: prompt, Params: beams(5, 10, 1, lp)}
	case "instruct":
		p := beams(5, 256, 1, 1)
		p.RepetitionPenalty = 1.5
		pr = Preset{Description: "the InstructBLIP model card: 5 beams, 1 to 256 new tokens, repetition penalty 1.5", Params: p}
	case "creative":
		p := DefaultParams()
		p.Temperature, p.TopK, p.TopP, p.MinP = 0.8, 40, 0.95, 0.05
		p.RepetitionPenalty, p.RepeatLastN = 1.1, 64
		p.MaxTokens = DefaultMaxNewTokens
		pr = Preset{Description: "sampling: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, repetition penalty 1.1 over the last 64 tokens", Params: p}
	default:
		return Preset{}, fmt.Errorf("no preset %q (presets: %s)", name, strings.Join(PresetNames(), ", "))
	}
	pr.Name, pr.Notes = name, notes
	pr.Params.Preset = name
	pr.Params.EOS = eos
	return pr, nil
}
