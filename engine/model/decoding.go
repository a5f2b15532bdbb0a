package model

import (
	"github.com/blip2chat/blip2chat/engine/generate"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
)

// The decoding a model folder asks for: its generation_config.json (copied
// by convert from the checkpoint; transformers' defaults when the folder
// has none) read with the checkpoint's rules (generate.FromGenerationConfig,
// generate.StopTokens), and the presets resolved for it.

// GenerationFile is the checkpoint's decoding settings inside a model folder.
const GenerationFile = "generation_config.json"

// GenerationConfig is the model folder's generation_config.json.
func (m *Model) GenerationConfig() *hfconfig.GenerationConfig { return m.gen }

// PromptPositions is how many positions generation_config's max_length and
// min_length count before the first new token for a prompt of n text
// tokens, as transformers 5 counts them: decoder-only, the image
// placeholders (one per soft token) and the tokens; T5, the decoder start
// token.
func (m *Model) PromptPositions(n int) int {
	if m.LM.Info().EncoderDecoder {
		return 1
	}
	return m.Vision.Info().NumQueryTokens + n
}

// Checkpoint is what resolving decoding settings needs to know of this
// model besides generation_config.json, for a prompt that takes
// promptPositions (PromptPositions).
func (m *Model) Checkpoint(promptPositions int) generate.Checkpoint {
	vi, li := m.Vision.Info(), m.LM.Info()
	ck := generate.Checkpoint{Family: vi.Family, TextType: vi.LLMFamily, PromptTokens: promptPositions,
		ModelEOS: li.EOS, Newline: -1}
	if ids, err := m.LM.Tokenize("\n", false); err == nil && len(ids) == 1 {
		ck.Newline = ids[0]
	}
	return ck
}

// Preset resolves the preset name ("reference", "caption", "vqa",
// "instruct", "creative") for this checkpoint and a prompt that takes
// promptPositions.
func (m *Model) Preset(name string, promptPositions int) (generate.Preset, error) {
	return generate.NewPreset(name, m.gen, m.Checkpoint(promptPositions))
}

// StopTokens are the tokens that end this checkpoint's answers
// (generate.StopTokens): BLIP-2 OPT's "\n", InstructBLIP-Vicuna's </s>,
// else generation_config's eos_token_id or the tokenizer's.
func (m *Model) StopTokens() []int32 {
	ids, _ := generate.StopTokens(m.gen, m.Checkpoint(0))
	return ids
}

// ChatPreset names the preset a chat starts with, the one that answers a
// conversation's questions best for the family:
//
//   - InstructBLIP: "instruct", the model card's generate() (5 beams, up
//     to 256 tokens, repetition penalty 1.5): instruction-tuned, it gives
//     full answers, and the penalty keeps Vicuna from looping;
//   - BLIP-2 (OPT, FlanT5): "vqa", LAVIS's VQA decoding (5 beams, up to
//     10 tokens; FlanT5 with length penalty -1): the models are not
//     chat-tuned, were evaluated on questions this way, and answer briefly;
//     sampled, they wander.
func (m *Model) ChatPreset() string {
	if m.Vision.Info().Family == "instructblip" {
		return "instruct"
	}
	return "vqa"
}

// CaptionPositions is PromptPositions for the family's caption prompt,
// the length a chat's max_length conversion assumes.
func (m *Model) CaptionPositions() int {
	tmpl := m.Template()
	n := 0
	if ids, err := m.LM.Tokenize(tmpl.Format(nil, ""), true); err == nil {
		n = len(ids)
	}
	return m.PromptPositions(n)
}
