package main

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/blip2chat/blip2chat/engine/model/modeltest"
)

// softmaxRow is the reference probability distribution of one raw logits
// row, in float64.
func softmaxRow(row []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range row {
		m = max(m, float64(v))
	}
	p := make([]float64, len(row))
	var s float64
	for i, v := range row {
		p[i] = math.Exp(float64(v) - m)
		s += p[i]
	}
	for i := range p {
		p[i] /= s
	}
	return p
}

// TestAskTokenProbs: on each golden case (LLaMA, T5, OPT), `ask --json`
// gives each answer token's probability and its 5 best alternatives, equal
// to the softmax of the --logits-out row it was chosen from to 1e-6
// (decoder-only models: "step_logits"; T5: "decoder_logits"), greedy and
// sampled with a temperature and a repetition penalty (which change the
// distribution drawn from, not the one reported); beam search gives one
// per token of the winning sequence.
func TestAskTokenProbs(t *testing.T) {
	lib := modeltest.LibDir(t)
	for _, c := range modeltest.Cases(t, "llama", "t5", "opt") {
		t.Run(c.Name, func(t *testing.T) {
			dir := askModelDir(t, c, "f32")
			img := filepath.Join(modeltest.GoldenDir(t), "images", c.Golden.Image)
			name := "step_logits"
			if c.TextType == "t5" {
				name = "decoder_logits"
			}
			for _, variant := range []struct {
				label string
				args  []string
			}{
				{"greedy", []string{"--greedy"}},
				{"sampling", []string{"--temp", "0.8", "--seed", "7", "--repeat-penalty", "1.3"}},
			} {
				out := filepath.Join(t.TempDir(), "logits.safetensors")
				args := append([]string{"ask", "-m", dir, img, askQuestion(c), "--exact", "--json", "--max-tokens", "6",
					"--logits-out", out, "--llama-lib", lib, "--threads", "1"}, variant.args...)
				r := runJSON(t, args)
				if len(r.IDs) == 0 || len(r.Tokens) != len(r.IDs) {
					t.Fatalf("%s: %d tokens for ids %v", variant.label, len(r.Tokens), r.IDs)
				}
				rows, shape := readLogits(t, out, name)
				if shape[0] < len(r.IDs) {
					t.Fatalf("%s: %s has %d rows for %d tokens", variant.label, name, shape[0], len(r.IDs))
				}
				V := shape[1]
				worst := 0.0
				for i, tok := range r.Tokens {
					p := softmaxRow(rows[i*V : (i+1)*V])
					if tok.ID != r.IDs[i] {
						t.Errorf("%s: token %d has id %d, ids[%d] = %d", variant.label, i, tok.ID, i, r.IDs[i])
					}
					worst = max(worst, math.Abs(tok.P-p[tok.ID]))
					if len(tok.Top) != 5 {
						t.Errorf("%s: token %d: %d alternatives", variant.label, i, len(tok.Top))
						continue
					}
					best := 0.0
					for _, v := range p {
						best = max(best, v)
					}
					worst = max(worst, math.Abs(tok.Top[0].P-best))
					for j := 1; j < len(tok.Top); j++ {
						if tok.Top[j].P > tok.Top[j-1].P {
							t.Errorf("%s: token %d: alternatives not best first: %+v", variant.label, i, tok.Top)
						}
					}
				}
				t.Logf("%s: %d tokens, max |p - softmax(logits-out row)| %.3g", variant.label, len(r.Tokens), worst)
				if worst > 1e-6 {
					t.Errorf("%s: token probabilities differ from the softmax of the --logits-out rows by %.3g > 1e-6", variant.label, worst)
				}
			}
			// Beam search: the winning sequence's tokens (no step rows to
			// compare with: several beams each step).
			r := runJSON(t, []string{"ask", "-m", dir, img, askQuestion(c), "--exact", "--json", "--max-tokens", "6",
				"--num-beams", "3", "--llama-lib", lib, "--threads", "1"})
			if len(r.Tokens) != len(r.IDs) || len(r.IDs) == 0 {
				t.Fatalf("beam search: %d tokens for ids %v", len(r.Tokens), r.IDs)
			}
			for i, tok := range r.Tokens {
				if tok.ID != r.IDs[i] || !(tok.P > 0 && tok.P <= 1) || len(tok.Top) != 5 || tok.Top[0].P < tok.P {
					t.Errorf("beam search: token %d %+v (id %d)", i, tok, r.IDs[i])
				}
			}
		})
	}
}
