package generate

import (
	"slices"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/weights/hfconfig"
)

// Checkpoint facts of the hub models (hub-checkpoints.md): 32 query
// tokens, BOS and a 10-token prompt.
var (
	ckOPT      = Checkpoint{Family: "blip-2", TextType: "opt", PromptTokens: 43, ModelEOS: 2, Newline: 50118}
	ckT5       = Checkpoint{Family: "blip-2", TextType: "t5", PromptTokens: 1, ModelEOS: 1, Newline: -1}
	ckVicuna   = Checkpoint{Family: "instructblip", TextType: "llama", PromptTokens: 43, ModelEOS: 2, Newline: 13}
	ckInstruT5 = Checkpoint{Family: "instructblip", TextType: "t5", PromptTokens: 1, ModelEOS: 1, Newline: -1}
)

func parseGen(t *testing.T, js string) *hfconfig.GenerationConfig {
	t.Helper()
	if js == "" {
		return hfconfig.DefaultGenerationConfig() // no generation_config.json
	}
	g, err := hfconfig.ParseGenerationConfig([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestFromGenerationConfig(t *testing.T) {
	cases := []struct {
		name  string
		file  string
		ck    Checkpoint
		check func(p Params) bool
		note  string // a note must contain this ("" : no note at all)
	}{
		{"blip2-opt-2.7b (2024 file)", `{"_from_model_config": true, "bos_token_id": 2, "eos_token_id": 50118, "pad_token_id": 1}`, ckOPT,
			func(p Params) bool {
				return !p.Sampling() && p.Beams() == 1 && p.RepetitionPenalty == 1 && p.MaxTokens == DefaultMaxNewTokens && slices.Equal(p.EOS, []int32{50118}) &&
					p.TopK == 50 && p.TopP == 1 // carried for sampling turned on
			}, "default max_length 20"},
		{"blip2-opt-2.7b (2023: no file)", "", ckOPT,
			func(p Params) bool { return slices.Equal(p.EOS, []int32{50118}) }, `("\n")`},
		{"blip2-flan-t5-xl", `{"bos_token_id": 1, "decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0}`, ckT5,
			func(p Params) bool { return slices.Equal(p.EOS, []int32{1}) && p.Beams() == 1 }, "default max_length"},
		{"instructblip-vicuna-7b: eos 1 is <s>", `{"bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 32000}`, ckVicuna,
			func(p Params) bool { return slices.Equal(p.EOS, []int32{2}) }, "instead of generation_config's eos_token_id [1]"},
		{"instructblip-flan-t5 keeps its eos", `{"eos_token_id": 1}`, ckInstruT5,
			func(p Params) bool { return slices.Equal(p.EOS, []int32{1}) }, "default max_length"},
		{"every field", `{"max_new_tokens": 40, "num_beams": 5, "repetition_penalty": 1.5, "eos_token_id": [2, 50118],
			"length_penalty": -1, "no_repeat_ngram_size": 3, "min_new_tokens": 2, "do_sample": false, "temperature": 0.7}`, ckOPT,
			func(p Params) bool {
				return !p.Sampling() && p.Beams() == 5 && p.MaxTokens == 40 && p.RepetitionPenalty == 1.5 &&
					p.LengthPenalty == -1 && p.NoRepeatNgramSize == 3 && p.MinNewTokens == 2 && slices.Equal(p.EOS, []int32{2, 50118})
			}, ""},
		{"max_length within the prompt", `{"max_length": 30, "eos_token_id": 2}`, ckVicuna,
			func(p Params) bool { return p.MaxTokens == MinMaxNewTokens }, "leaving 0 new tokens: raised to 32"},
		{"max_length past the prompt", `{"max_length": 200, "eos_token_id": 2}`, ckVicuna,
			func(p Params) bool { return p.MaxTokens == 157 }, "max_length 200 less the 43 prompt positions: 157"},
		{"max_length on T5 counts the decoder start", `{"max_length": 51}`, ckT5,
			func(p Params) bool { return p.MaxTokens == 50 }, "50 new tokens"},
		{"sampling", `{"do_sample": true, "temperature": 0.7, "top_p": 0.9, "max_new_tokens": 20}`, ckT5,
			func(p Params) bool { return p.Sampling() && p.Temperature == 0.7 && p.TopK == 50 && p.TopP == 0.9 }, ""},
		{"sampling at temperature 0", `{"do_sample": true, "temperature": 0, "max_new_tokens": 20}`, ckT5,
			func(p Params) bool { return !p.Sampling() }, "greedy"},
		{"min_length past the prompt", `{"min_length": 50, "max_new_tokens": 20}`, ckOPT,
			func(p Params) bool { return p.MinNewTokens == 7 }, "at least 7 new tokens"},
		{"min_length within the prompt", `{"min_length": 1, "max_new_tokens": 20}`, ckOPT,
			func(p Params) bool { return p.MinNewTokens == 0 }, "no minimum"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, notes := FromGenerationConfig(parseGen(t, c.file), c.ck)
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			if p.Preset != "reference" || !c.check(p) {
				t.Errorf("params %+v", p)
			}
			joined := strings.Join(notes, "\n")
			if c.note == "" && len(notes) > 0 {
				t.Errorf("notes %q, want none", notes)
			}
			if !strings.Contains(joined, c.note) {
				t.Errorf("notes %q, want one with %q", notes, c.note)
			}
		})
	}
}

func TestPresets(t *testing.T) {
	opt := parseGen(t, `{"eos_token_id": 50118}`)
	vicuna := parseGen(t, `{"eos_token_id": 1}`)
	t5 := parseGen(t, `{"eos_token_id": 1}`)
	cases := []struct {
		name   string
		g      *hfconfig.GenerationConfig
		ck     Checkpoint
		beams  int
		maxNew int
		minNew int
		lp     float64
		rep    float64
		prompt string
		eos    []int32
	}{
		{"caption", opt, ckOPT, 5, 30, 8, 1, 1, "", []int32{50118}},
		{"caption", vicuna, ckVicuna, 5, 80, 10, 1, 1, "A short image caption.", []int32{2}},
		{"vqa", opt, ckOPT, 5, 10, 1, 0, 1, "Question: {} Short answer:", []int32{50118}},
		{"vqa", t5, ckT5, 5, 10, 1, -1, 1, "Question: {} Short answer:", []int32{1}},
		{"vqa", vicuna, ckVicuna, 5, 10, 1, -1, 1, "Question: {} Short Answer:", []int32{2}},
		{"instruct", vicuna, ckVicuna, 5, 256, 1, 1, 1.5, "", []int32{2}},
		{"reference", opt, ckOPT, 1, DefaultMaxNewTokens, 0, 1, 1, "", []int32{50118}},
	}
	for _, c := range cases {
		t.Run(c.name+"/"+c.ck.Family+"-"+c.ck.TextType, func(t *testing.T) {
			pr, err := NewPreset(c.name, c.g, c.ck)
			if err != nil {
				t.Fatal(err)
			}
			p := pr.Params
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			if pr.Name != c.name || p.Preset != c.name || p.Sampling() || p.Beams() != c.beams || p.MaxTokens != c.maxNew ||
				p.MinNewTokens != c.minNew || p.LengthPenalty != c.lp || p.RepetitionPenalty != c.rep ||
				pr.Prompt != c.prompt || !slices.Equal(p.EOS, c.eos) {
				t.Errorf("preset %+v", pr)
			}
		})
	}
	pr, err := NewPreset("creative", opt, ckOPT)
	if err != nil {
		t.Fatal(err)
	}
	if p := pr.Params; !p.Sampling() || p.Temperature != 0.8 || p.TopK != 40 || p.TopP != 0.95 || p.MinP != 0.05 ||
		p.RepetitionPenalty != 1.1 || p.RepeatLastN != 64 || p.Beams() != 1 || !slices.Equal(p.EOS, []int32{50118}) {
		t.Errorf("creative %+v", p)
	}
	if _, err := NewPreset("fast", opt, ckOPT); err == nil || !strings.Contains(err.Error(), "reference, caption, vqa, instruct, creative") {
		t.Errorf("unknown preset: %v", err)
	}
	for _, n := range PresetNames() {
		if _, err := NewPreset(n, opt, ckOPT); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

// TestChanges lists what differs from a preset, under generate()'s names,
// only for the settings that act (top-k without sampling does not).
func TestChanges(t *testing.T) {
	vqa, err := NewPreset("vqa", parseGen(t, `{"eos_token_id": 1}`), ckT5)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		f    func(p *Params)
		want string
	}{
		{"none", func(p *Params) {}, ""},
		{"beams and length", func(p *Params) { p.NumBeams, p.MaxTokens = 3, 20 }, "num_beams=3 max_new_tokens=20"},
		{"top-k without sampling", func(p *Params) { p.TopK = 7 }, ""},
		{"sampling", func(p *Params) { p.Temperature, p.TopK = 0.7, 7 }, "temperature=0.7 top_k=7"},
		{"stop tokens", func(p *Params) { p.EOS = []int32{1, 5}; p.RepetitionPenalty = 1.2 }, "repetition_penalty=1.2 eos_token_id=[1 5]"},
	} {
		p := vqa.Params
		c.f(&p)
		if got := strings.Join(p.Changes(vqa.Params), " "); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
