package generate

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/blip2chat/blip2chat/engine/lm"
)

// Tokens of the fake model's 4-token vocabulary.
const (
	tA, tB, tC, tEOS = 0, 1, 2, 3
)

// fakeLM is a Seqs whose next-token distribution is a table keyed by the
// sequence so far (uniform where the table has nothing), so that beam
// search results can be computed by hand. Its logits are log-probabilities.
type fakeLM struct {
	table map[string][]float64
	seqs  [][]int32
	steps int // Step calls (model forwards after the prompt)
	rows  int // rows fed in those calls
	// reuse makes Logits(i) return the same memory after each Step, as
	// a real context's logits buffer, so that a decoder that keeps a
	// row past Step sees it change.
	reuse bool
	bufs  [][]float32
}

func newFakeLM(table map[string][]float64) *fakeLM {
	return &fakeLM{table: table, seqs: [][]int32{{}}}
}

func key(ids []int32) string { return fmt.Sprint(ids) }

func (f *fakeLM) Logits(i int) []float32 {
	if i >= len(f.seqs) {
		return nil
	}
	p, ok := f.table[key(f.seqs[i])]
	if !ok {
		p = []float64{0.25, 0.25, 0.25, 0.25}
	}
	out := make([]float32, len(p))
	if f.reuse {
		for len(f.bufs) <= i {
			f.bufs = append(f.bufs, nil)
		}
		if len(f.bufs[i]) != len(p) {
			f.bufs[i] = make([]float32, len(p))
		}
		out = f.bufs[i]
	}
	for j, v := range p {
		out[j] = float32(math.Log(v))
	}
	return out
}

func (f *fakeLM) Step(ids []int32) error {
	if len(ids) != len(f.seqs) {
		return fmt.Errorf("fake: %d ids for %d sequences", len(ids), len(f.seqs))
	}
	for i, id := range ids {
		f.seqs[i] = append(slices.Clone(f.seqs[i]), id)
	}
	f.steps++
	f.rows += len(ids)
	if f.reuse {
		for i := range f.seqs {
			f.Logits(i) // the new logits overwrite the old
		}
	}
	return nil
}

func (f *fakeLM) Reorder(parents []int) error {
	next := make([][]int32, len(parents))
	for i, p := range parents {
		if p < 0 || p >= len(f.seqs) {
			return fmt.Errorf("fake: parent %d of %d sequences", p, len(f.seqs))
		}
		next[i] = slices.Clone(f.seqs[p])
	}
	f.seqs = next
	return nil
}

func lg(p float64) float64 { return math.Log(p) }

type wantSeq struct {
	ids   []int32
	end   int32
	score float64
}

// TestBeamSearchByHand runs beam search on tables whose results were worked
// out by hand (the comments give the candidates of each step).
func TestBeamSearchByHand(t *testing.T) {
	// Case "basic": 2 beams, 4 candidates a step.
	//  step 1: a -0.69, b -1.20, c -2.30, EOS -2.30 (c first: lower index);
	//          EOS ranks 3 >= 2: dropped. Running a, b.
	//  step 2: aEOS -1.20 (rank 0: finished, length 2), ba -1.56, ac -2.30,
	//          aa -3.00. Running ba, ac.
	//  step 3 (last): acEOS -2.47, baa -2.95, bab, bac: ranks 0 and 1 finish.
	basic := map[string][]float64{
		"[]":    {0.5, 0.3, 0.1, 0.1},
		"[0]":   {0.1, 0.1, 0.2, 0.6},
		"[1]":   {0.7, 0.1, 0.1, 0.1},
		"[0 2]": {0.05, 0.05, 0.05, 0.85},
	}
	aEOS := lg(.5) + lg(.6)
	acEOS := lg(.5) + lg(.2) + lg(.85)
	baa := lg(.3) + lg(.7) + lg(.25)

	// Case "stop": 2 beams; step 1 finishes EOS at rank 1 (score -0.92,
	// length 1); step 2 finishes aEOS at rank 1 (-3.22/2): 2 kept. The best
	// running beam aa (-0.80/2 = -0.40) can still beat the worst kept
	// (-1.61): early_stopping false goes on and step 3 finds aaEOS
	// (-1.16/3 = -0.39); early_stopping true stops at step 2.
	stop := map[string][]float64{
		"[]":    {0.5, 0.05, 0.05, 0.4},
		"[0]":   {0.9, 0.01, 0.01, 0.08},
		"[0 0]": {0.1, 0.1, 0.1, 0.7},
	}
	eosOnly := lg(.4)
	aEOS2 := lg(.5) + lg(.08)
	aaEOS := lg(.5) + lg(.9) + lg(.7)

	// Case "heuristic": both running beams end at step 2 (aEOS -0.80, bEOS
	// -1.31: ranks 0 and 1); the best running aa is -0.69+log(1/30)=-4.09:
	// /2 = -2.05 <= worst kept -0.65, so early_stopping false stops after
	// step 2 with no further forward pass. "never" (lp 1 > 0) divides by
	// max_new_tokens instead: -4.09/10 > -0.65 goes on; uniform steps add
	// -1.39 each: after step 3 -5.48/10 = -0.55 goes on, after step 4
	// -6.87/10 = -0.69 stops.
	third := 1.0 / 30
	heur := map[string][]float64{
		"[]":  {0.5, 0.3, 0.1, 0.1},
		"[0]": {third, third, third, 0.9},
		"[1]": {third, third, third, 0.9},
	}
	haEOS := lg(.5) + lg(.9)
	hbEOS := lg(.3) + lg(.9)

	cases := []struct {
		name      string
		table     map[string][]float64
		p         func(*Params)
		want      []wantSeq
		wantSteps int // Step calls
		stop      lm.StopReason
	}{
		{"basic", basic, func(p *Params) { p.NumBeams, p.MaxTokens, p.NumReturnSequences = 2, 3, 2 },
			[]wantSeq{{[]int32{tA}, tEOS, aEOS / 2}, {[]int32{tA, tC}, tEOS, acEOS / 3}}, 2, lm.StopEOG},
		{"basic one returned", basic, func(p *Params) { p.NumBeams, p.MaxTokens = 2, 3 },
			[]wantSeq{{[]int32{tA}, tEOS, aEOS / 2}}, 2, lm.StopEOG},
		// length_penalty -1: score = sum * length; the same hypotheses.
		{"negative length penalty", basic, func(p *Params) { p.NumBeams, p.MaxTokens, p.NumReturnSequences, p.LengthPenalty = 2, 3, 2, -1 },
			[]wantSeq{{[]int32{tA}, tEOS, aEOS * 2}, {[]int32{tA, tC}, tEOS, acEOS * 3}}, 2, lm.StopEOG},
		// length_penalty 2: acEOS/9 = -0.27 beats aEOS/4 = -0.30 and baa/9.
		{"length penalty 2", basic, func(p *Params) { p.NumBeams, p.MaxTokens, p.NumReturnSequences, p.LengthPenalty = 2, 3, 2, 2 },
			[]wantSeq{{[]int32{tA, tC}, tEOS, acEOS / 9}, {[]int32{tA}, tEOS, aEOS / 4}}, 2, lm.StopEOG},
		// max 2 new tokens: step 2 is the last: aEOS and ba finish.
		{"max tokens", basic, func(p *Params) { p.NumBeams, p.MaxTokens, p.NumReturnSequences = 2, 2, 2 },
			[]wantSeq{{[]int32{tA}, tEOS, aEOS / 2}, {[]int32{tB, tA}, -1, (lg(.3) + lg(.7)) / 2}}, 1, lm.StopEOG},
		// 3 beams, max 3: step 2 runs ba, ac, aa; step 3 finishes acEOS,
		// baa and bab (tied with baa, ranked after it: dropped).
		{"three beams", basic, func(p *Params) { p.NumBeams, p.MaxTokens, p.NumReturnSequences = 3, 3, 3 },
			[]wantSeq{{[]int32{tA}, tEOS, aEOS / 2}, {[]int32{tA, tC}, tEOS, acEOS / 3}, {[]int32{tB, tA, tA}, -1, baa / 3}}, 2, lm.StopEOG},
		{"early stopping false", stop, func(p *Params) { p.NumBeams, p.MaxTokens, p.NumReturnSequences = 2, 3, 2 },
			[]wantSeq{{[]int32{tA, tA}, tEOS, aaEOS / 3}, {nil, tEOS, eosOnly}}, 2, lm.StopEOG},
		{"early stopping true", stop, func(p *Params) {
			p.NumBeams, p.MaxTokens, p.NumReturnSequences, p.EarlyStopping = 2, 3, 2, EarlyStopTrue
		}, []wantSeq{{nil, tEOS, eosOnly}, {[]int32{tA}, tEOS, aEOS2 / 2}}, 1, lm.StopEOG},
		{"heuristic stops", heur, func(p *Params) { p.NumBeams, p.MaxTokens, p.NumReturnSequences = 2, 10, 2 },
			[]wantSeq{{[]int32{tA}, tEOS, haEOS / 2}, {[]int32{tB}, tEOS, hbEOS / 2}}, 1, lm.StopEOG},
		{"never", heur, func(p *Params) {
			p.NumBeams, p.MaxTokens, p.NumReturnSequences, p.EarlyStopping = 2, 10, 2, EarlyStopNever
		}, []wantSeq{{[]int32{tA}, tEOS, haEOS / 2}, {[]int32{tB}, tEOS, hbEOS / 2}}, 3, lm.StopEOG},
		// min_new_tokens 2 masks EOS on steps 1 and 2 (the basic case's
		// aEOS is gone): step 3 finishes acEOS-like paths only.
		{"min new tokens", basic, func(p *Params) { p.NumBeams, p.MaxTokens, p.MinNewTokens = 2, 3, 3 },
			nil, 2, lm.StopMaxTokens},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := DefaultParams()
			c.p(&p)
			f := newFakeLM(c.table)
			r, err := decodeT(context.Background(), f, p, []int32{tEOS}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if f.steps != c.wantSteps {
				t.Errorf("%d forward steps, want %d", f.steps, c.wantSteps)
			}
			if r.stop != c.stop {
				t.Errorf("stop %v, want %v", r.stop, c.stop)
			}
			if c.want == nil {
				// Checked below by property.
				return
			}
			if len(r.seqs) != len(c.want) {
				t.Fatalf("%d sequences %+v, want %d", len(r.seqs), r.seqs, len(c.want))
			}
			for i, w := range c.want {
				g := r.seqs[i]
				if !slices.Equal(g.IDs, w.ids) || g.End != w.end || math.Abs(g.Score-w.score) > 1e-5 {
					t.Errorf("sequence %d: ids %v end %d score %.6f; want %v end %d score %.6f", i, g.IDs, g.End, g.Score, w.ids, w.end, w.score)
				}
			}
		})
	}
}

// TestBeamSearchProperties checks the cases without hand-written answers.
func TestBeamSearchProperties(t *testing.T) {
	basic := map[string][]float64{
		"[]":    {0.5, 0.3, 0.1, 0.1},
		"[0]":   {0.1, 0.1, 0.2, 0.6},
		"[1]":   {0.7, 0.1, 0.1, 0.1},
		"[0 2]": {0.05, 0.05, 0.05, 0.85},
	}
	t.Run("min new tokens masks EOS", func(t *testing.T) {
		p := DefaultParams()
		p.NumBeams, p.MaxTokens, p.MinNewTokens, p.NumReturnSequences = 2, 3, 3, 2
		r, err := decodeT(context.Background(), newFakeLM(basic), p, []int32{tEOS}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range r.seqs {
			if len(s.IDs) != 3 {
				t.Errorf("sequence %v has %d new tokens, want 3 (EOS masked before)", s.IDs, len(s.IDs))
			}
		}
		// Step 1: a, b run; step 2: ba -1.56 and ac -2.30 run; step 3 (EOS
		// still masked): baa, bab (-2.95) finish.
		if want := []int32{tB, tA, tA}; !slices.Equal(r.seqs[0].IDs, want) {
			t.Errorf("best %v, want %v", r.seqs[0].IDs, want)
		}
	})
	t.Run("three beams sorted", func(t *testing.T) {
		p := DefaultParams()
		p.NumBeams, p.MaxTokens, p.NumReturnSequences = 3, 3, 3
		r, err := decodeT(context.Background(), newFakeLM(basic), p, []int32{tEOS}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.seqs) != 3 {
			t.Fatalf("%d sequences", len(r.seqs))
		}
		for i := 1; i < 3; i++ {
			if r.seqs[i].Score > r.seqs[i-1].Score {
				t.Errorf("sequences not best first: %+v", r.seqs)
			}
		}
		for _, s := range r.seqs {
			n := len(s.IDs)
			if s.End >= 0 {
				n++
			}
			if math.Abs(s.Score-s.LogProb/float64(n)) > 1e-6 {
				t.Errorf("score %v is not logprob %v / length %d", s.Score, s.LogProb, n)
			}
		}
	})
	t.Run("ties go to the lower index", func(t *testing.T) {
		// Uniform everywhere: every candidate ties; the first beams take
		// tokens a, b (flat order), and at the last step a,a and a,b.
		p := DefaultParams()
		p.NumBeams, p.MaxTokens, p.NumReturnSequences = 2, 2, 2
		r, err := decodeT(context.Background(), newFakeLM(nil), p, []int32{tEOS}, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := [][]int32{{tA, tA}, {tA, tB}}
		for i, w := range want {
			if !slices.Equal(r.seqs[i].IDs, w) {
				t.Errorf("sequence %d = %v, want %v", i, r.seqs[i].IDs, w)
			}
		}
	})
	t.Run("several stop tokens", func(t *testing.T) {
		// c is a stop token too: keep = 3*2 candidates, and c at rank 2
		// of step 1 (>= 2 beams) is dropped, not kept running.
		p := DefaultParams()
		p.NumBeams, p.MaxTokens, p.NumReturnSequences = 2, 3, 2
		f := newFakeLM(basic)
		r, err := decodeT(context.Background(), f, p, []int32{tEOS, tC}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range r.seqs {
			if slices.Contains(s.IDs, tC) {
				t.Errorf("stop token c inside %v", s.IDs)
			}
		}
		// a,c ends at c now: step 2's candidates aEOS -1.20, ba, ac(stop)
		// -2.30 ranked 2: dropped.
		if r.seqs[0].End != tEOS || !slices.Equal(r.seqs[0].IDs, []int32{tA}) {
			t.Errorf("best %+v, want [a] ended by EOS", r.seqs[0])
		}
	})
	t.Run("eos replaced by params", func(t *testing.T) {
		p := DefaultParams()
		p.NumBeams, p.MaxTokens, p.EOS = 2, 3, []int32{tB}
		r, err := decodeT(context.Background(), newFakeLM(basic), p, []int32{tEOS}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(r.seqs[0].IDs, tB) {
			t.Errorf("%v holds the stop token b", r.seqs[0].IDs)
		}
	})
	t.Run("cancel keeps the best so far", func(t *testing.T) {
		p := DefaultParams()
		p.NumBeams, p.MaxTokens = 2, 50
		ctx, cancel := context.WithCancel(context.Background())
		steps := 0
		r, err := decodeT(ctx, newFakeLM(nil), p, []int32{tEOS}, func(pg progress) {
			steps++
			if pg.step == 3 {
				cancel()
			}
		})
		if err != context.Canceled || r.stop != lm.StopCancelled {
			t.Fatalf("err %v stop %v, want cancelled", err, r.stop)
		}
		if len(r.seqs) != 1 || len(r.seqs[0].IDs) != 3 {
			t.Errorf("best so far %+v, want a 3-token hypothesis", r.seqs)
		}
	})
	t.Run("weights read once a step", func(t *testing.T) {
		p := DefaultParams()
		p.NumBeams, p.MaxTokens = 5, 6
		f := newFakeLM(nil)
		// No stop token in the vocabulary: no beam ends early.
		if _, err := decodeT(context.Background(), f, p, []int32{99}, nil); err != nil {
			t.Fatal(err)
		}
		// 6 steps: 5 forwards of 5 rows after the prompt.
		if f.steps != 5 || f.rows != 25 {
			t.Errorf("%d forwards of %d rows, want 5 of 25", f.steps, f.rows)
		}
	})
}

// decodeT decodes with no prompt context and no tracer, eos the model's stop
// tokens (p.EOS replaces them), as the driver does.
func decodeT(ctx context.Context, m seqs, p Params, eos []int32, on func(progress)) (decoded, error) {
	return decode(ctx, m, p, nil, p.StopTokens(eos), on, tracer{})
}
