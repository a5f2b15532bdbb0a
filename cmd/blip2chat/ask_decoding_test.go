package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/engine/model/modeltest"
)

// goldenDecoding is the part of testdata/golden/<case>/decoding.json (transformers'
// generate() on the golden checkpoint) the acceptance tests read.
type goldenDecoding struct {
	Inputs struct {
		Prompt    string  `json:"prompt"`
		PromptIDs []int32 `json:"prompt_ids"`
	} `json:"inputs"`
	Modes map[string]struct {
		Kwargs map[string]any `json:"generate_kwargs"`
		EOS    []int32        `json:"eos_token_id"`
		IDs    []int32        `json:"ids"` // greedy
		Steps  []struct {
			Top2Gap float64 `json:"top2_gap"`
		} `json:"steps"`
		Sequences []struct {
			IDs          []int32 `json:"ids"` // the end token included
			Score        float64 `json:"score"`
			SeqScore     float64 `json:"sequences_score"`
			EndedWithEOS bool    `json:"ended_with_eos"`
		} `json:"sequences"`
	} `json:"modes"`
}

func readGoldenDecoding(t *testing.T, c modeltest.Case) goldenDecoding {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(c.Dir, "decoding.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d goldenDecoding
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// kwargsFlags turns generate()'s keyword arguments into ask's flags.
func kwargsFlags(t *testing.T, kw map[string]any) []string {
	t.Helper()
	var args []string
	num := func(v any) string { return fmt.Sprint(v.(float64)) }
	keys := make([]string, 0, len(kw))
	for k := range kw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	beams := 1.0
	if b, ok := kw["num_beams"].(float64); ok {
		beams = b
	}
	if beams == 1 {
		args = append(args, "--greedy")
	}
	for _, k := range keys {
		v := kw[k]
		switch k {
		case "num_beams":
			if beams > 1 {
				args = append(args, "--num-beams", num(v))
			}
		case "max_new_tokens":
			args = append(args, "--max-tokens", num(v))
		case "min_new_tokens":
			args = append(args, "--min-new-tokens", num(v))
		case "repetition_penalty":
			args = append(args, "--repeat-penalty", num(v))
		case "length_penalty":
			args = append(args, "--length-penalty", num(v))
		case "no_repeat_ngram_size":
			args = append(args, "--no-repeat-ngram-size", num(v))
		case "num_return_sequences":
			args = append(args, "--num-return-sequences", num(v))
		case "early_stopping":
			args = append(args, "--early-stopping", fmt.Sprint(v))
		case "eos_token_id":
			args = append(args, "--eos-token-id", num(v))
		case "do_sample":
			if v.(bool) {
				t.Fatal("the goldens hold no sampling")
			}
		case "return_dict_in_generate", "output_scores", "output_logits", "top_p", "temperature":
		default:
			t.Fatalf("generate_kwargs %q has no ask flag", k)
		}
	}
	return args
}

// askScoreTol is how far ask's beam scores may be from transformers' in
// exact mode: 1e-3 for LLaMA (llama.cpp) and OPT (the Go engine), whose
// logits agree to ~1e-5. llama.cpp's T5 computes GELU from an f16 table:
// its logits differ by up to ~1e-2 and each step's chosen log-probability
// by up to ~4e-3, so a T5 sequence's summed log-probability is held to
// 0.02, that is its score to 0.02 / length^length_penalty.
func askScoreTol(textType string, length int, lp float64) float64 {
	if textType == "t5" {
		return 0.02 / math.Pow(float64(length), lp)
	}
	return 1e-3
}

// TestAskDecodingModes runs every decoding.json mode through `blip2chat
// ask` with the flags named after its generate() arguments, in exact mode,
// on llama.cpp LLaMA (BLIP-2 and InstructBLIP), llama.cpp T5 and the OPT
// engine: the same prompt ids, the same new token ids (greedy: up to the
// first step whose top-2 gap is below 1e-3, 0.02 for T5), the same
// returned sequences, scores within askScoreTol. T5's beam candidates have
// margins below 0.02 from the third step on, where the search could
// legitimately go another way; it does not on any of these modes.
func TestAskDecodingModes(t *testing.T) {
	lib := modeltest.LibDir(t)
	for _, c := range modeltest.Cases(t, "llama", "t5", "opt") {
		t.Run(c.Name, func(t *testing.T) {
			dir := askModelDir(t, c, "f32")
			gd := readGoldenDecoding(t, c)
			img := filepath.Join(modeltest.GoldenDir(t), "images", c.Golden.Image)
			names := make([]string, 0, len(gd.Modes))
			for n := range gd.Modes {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, name := range names {
				mode := gd.Modes[name]
				t.Run(name, func(t *testing.T) {
					flags := kwargsFlags(t, mode.Kwargs)
					args := append([]string{"ask", "-m", dir, img, gd.Inputs.Prompt, "--raw-prompt", "--exact", "--json",
						"--llama-lib", lib, "--threads", "1"}, flags...)
					r := runJSON(t, args)
					if !slices.Equal(r.PromptIDs, gd.Inputs.PromptIDs) {
						t.Fatalf("prompt ids %v, want %v", r.PromptIDs, gd.Inputs.PromptIDs)
					}
					if !slices.Equal(r.Settings.StopTokens(nil), mode.EOS) {
						t.Fatalf("stop tokens %v, transformers used %v", r.Settings.EOS, mode.EOS)
					}
					lp := 1.0
					if v, ok := mode.Kwargs["length_penalty"].(float64); ok {
						lp = v
					}
					if len(mode.Sequences) == 0 { // greedy
						gap := 1e-3
						if c.TextType == "t5" {
							gap = 0.02
						}
						k := len(mode.Steps)
						for i, s := range mode.Steps {
							if s.Top2Gap < gap {
								k = i
								break
							}
						}
						if len(r.IDs) < k || !slices.Equal(r.IDs[:k], mode.IDs[:k]) || r.Score != nil {
							t.Errorf("greedy ids %v (score %v), want %v in the first %d steps", r.IDs, r.Score, mode.IDs, k)
						}
						t.Logf("%s: ids equal over %d of %d steps", strings.Join(flags, " "), k, len(mode.Steps))
						return
					}
					// Beam search: the sequences returned, best first.
					got := []askBeam{{IDs: r.IDs, Text: r.Text}}
					if r.Score != nil {
						got[0].Score = *r.Score
					}
					if len(mode.Sequences) > 1 {
						got = r.Beams
					}
					if len(got) != len(mode.Sequences) {
						t.Fatalf("%d sequences, want %d", len(got), len(mode.Sequences))
					}
					var worst float64
					for i, w := range mode.Sequences {
						want := w.IDs
						if w.EndedWithEOS {
							want = want[:len(want)-1] // ask's ids stop before the end token
						}
						score := w.SeqScore
						if score == 0 {
							score = w.Score
						}
						if !slices.Equal(got[i].IDs, want) {
							t.Errorf("sequence %d: %v, want %v", i, got[i].IDs, want)
						}
						d := math.Abs(got[i].Score - score)
						worst = max(worst, d)
						if tol := askScoreTol(c.TextType, len(w.IDs), lp); d > tol {
							t.Errorf("sequence %d: score %.6f, transformers' %.6f (off by %.3g > %.3g)", i, got[i].Score, score, d, tol)
						}
					}
					if r.Score == nil || *r.Score != got[0].Score || !slices.Equal(r.IDs, got[0].IDs) {
						t.Errorf("answer %v score %v is not the best sequence %+v", r.IDs, r.Score, got[0])
					}
					t.Logf("%s: %d sequences equal, scores within %.3g", strings.Join(flags, " "), len(got), worst)
				})
			}
		})
	}
}

// TestAskGreedyRepeats: blip2-opt's pure greedy answer repeats token 29
// (golden.json's greedy_ids, transformers' argmax); `ask --greedy --exact`
// gives it, and --repeat-penalty 1.5 gives transformers' penalised answer
// (decoding.json mode a) instead.
func TestAskGreedyRepeats(t *testing.T) {
	lib := modeltest.LibDir(t)
	c := modeltest.Cases(t, "opt")[0]
	pure := c.Golden.GreedyIDs
	if len(pure) < 4 || pure[0] != 29 || slices.ContainsFunc(pure, func(id int32) bool { return id != 29 }) {
		t.Fatalf("golden greedy ids %v no longer repeat token 29", pure)
	}
	penalised := readGoldenDecoding(t, c).Modes["a_greedy_repetition_penalty"].IDs
	dir := askModelDir(t, c, "f32")
	img := filepath.Join(modeltest.GoldenDir(t), "images", c.Golden.Image)
	base := []string{"ask", "-m", dir, img, askQuestion(c), "--exact", "--json", "--greedy", "--max-tokens", fmt.Sprint(len(pure)),
		"--llama-lib", lib, "--threads", "1"}
	if r := runJSON(t, base); !slices.Equal(r.IDs, pure) {
		t.Errorf("--greedy: %v, want the repeats %v", r.IDs, pure)
	}
	if r := runJSON(t, append(base, "--repeat-penalty", "1.5")); !slices.Equal(r.IDs, penalised[:len(pure)]) {
		t.Errorf("--greedy --repeat-penalty 1.5: %v, want %v", r.IDs, penalised[:len(pure)])
	}
}

// TestAskCheckpointSettings: with no decoding flags, ask decodes as the
// folder's generation_config.json says (model.generate(**inputs)): its
// max_new_tokens, num_beams, repetition_penalty and eos_token_id give the
// answer the same flags give; a file with only max_length has the prompt's
// positions taken off, with a floor and a note.
func TestAskCheckpointSettings(t *testing.T) {
	lib := modeltest.LibDir(t)
	c := modeltest.Cases(t, "llama")[0] // BLIP-2 LLaMA: eos_token_id is read as given
	base := askModelDir(t, c, "f32")
	img := filepath.Join(modeltest.GoldenDir(t), "images", c.Golden.Image)
	ask := func(dir string, flags ...string) askResult {
		return runJSON(t, append([]string{"ask", "-m", dir, img, askQuestion(c), "--exact", "--json", "--llama-lib", lib, "--threads", "1"}, flags...))
	}
	withFile := func(js string) string { return modeltest.LinkModelDir(t, base, []byte(js)) }

	// The beam answer without a stop token in reach, then with its second
	// token made the stop token.
	free := ask(base, "--num-beams", "3", "--max-tokens", "6", "--repeat-penalty", "1.4")
	if len(free.IDs) < 2 {
		t.Fatalf("beam answer %v: too short to pick a stop token from", free.IDs)
	}
	stop := free.IDs[1]
	file := ask(withFile(fmt.Sprintf(`{"max_new_tokens": 6, "num_beams": 3, "repetition_penalty": 1.4, "eos_token_id": [%d]}`, stop)))
	flags := ask(base, "--num-beams", "3", "--max-tokens", "6", "--repeat-penalty", "1.4", "--eos-token-id", fmt.Sprint(stop))
	s := file.Settings
	if file.Preset != "reference" || s.Beams() != 3 || s.MaxTokens != 6 || s.RepetitionPenalty != 1.4 || !slices.Equal(s.EOS, []int32{stop}) {
		t.Errorf("settings from the file: %+v", s)
	}
	if !slices.Equal(file.IDs, flags.IDs) || file.Score == nil || flags.Score == nil || *file.Score != *flags.Score {
		t.Errorf("from the file %v (%v), from the flags %v (%v)", file.IDs, file.Score, flags.IDs, flags.Score)
	}
	if slices.Contains(file.IDs, stop) || slices.Equal(file.IDs, free.IDs) {
		t.Errorf("answer %v holds the stop token %d (without it: %v)", file.IDs, stop, free.IDs)
	}

	// Only max_length: it counts the soft tokens and the prompt.
	for _, c := range []struct {
		maxLength int
		extra     int // new tokens past the prompt asked for
		note      string
	}{
		{0, 40, "less the"},    // room for 40 new tokens
		{0, 3, "raised to 32"}, // 3 new tokens: the floor
		{20, 0, "default max_length 20"},
	} {
		r := ask(base, "--max-tokens", "0") // the prompt's positions
		positions := r.Timings.PromptRows
		n := c.maxLength
		if n == 0 {
			n = positions + c.extra
		}
		got := ask(withFile(fmt.Sprintf(`{"max_length": %d}`, n)))
		want := max(n-positions, 32)
		if n == 20 {
			want = 128
		}
		if got.Settings.MaxTokens != want || len(got.IDs) > want || !strings.Contains(strings.Join(got.Notes, "\n"), c.note) {
			t.Errorf("max_length %d over %d positions: max_new_tokens %d (want %d), %d ids, notes %q (want %q)",
				n, positions, got.Settings.MaxTokens, want, len(got.IDs), got.Notes, c.note)
		}
	}
}
