package generate

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/blip2chat/blip2chat/engine/lm"
)

func TestProcessors(t *testing.T) {
	inf := float32(math.Inf(-1))
	cases := []struct {
		name string
		in   []float32
		run  func(s []float32)
		want []float32
	}{
		{"penalty divides positive, multiplies negative, once per id",
			[]float32{3, -2, 1, 0.5}, func(s []float32) { RepetitionPenalty(s, []int32{0, 1, 1, 0, 9, -1}, 1.5) },
			[]float32{2, -3, 1, 0.5}},
		{"penalty 1 is off", []float32{3, -2}, func(s []float32) { RepetitionPenalty(s, []int32{0, 1}, 1) }, []float32{3, -2}},
		{"bigram ban", []float32{0, 0, 0, 0, 0, 0, 0},
			func(s []float32) { NoRepeatNGram(s, history{[]int32{5, 6}, []int32{5}}, 2) }, // 5 6 seen, last is 5
			[]float32{0, 0, 0, 0, 0, 0, inf}},
		{"trigram ban over prompt and answer", []float32{0, 0, 0, 0},
			func(s []float32) { NoRepeatNGram(s, history{[]int32{1, 2, 3}, []int32{0, 1, 2}}, 3) }, // 1 2 3 seen, ends 1 2
			[]float32{0, 0, 0, inf}},
		{"n-gram longer than the history", []float32{0, 0}, func(s []float32) { NoRepeatNGram(s, history{[]int32{1}, nil}, 3) }, []float32{0, 0}},
		{"temperature", []float32{2, -1}, func(s []float32) { Temperature(s, 0.5) }, []float32{4, -2}},
		{"top-k keeps ties", []float32{1, 3, 2, 2, 0}, func(s []float32) { TopK(s, 2) }, []float32{inf, 3, 2, 2, inf}},
		// probs 0.6652, 0.2447, 0.0900: 1-p = 0.1 drops only the last.
		{"top-p", []float32{2, 1, 0}, func(s []float32) { TopP(s, 0.9) }, []float32{2, 1, inf}},
		{"top-p keeps the best", []float32{2, 1, 0}, func(s []float32) { TopP(s, 0.01) }, []float32{2, inf, inf}},
		// probs as above: 0.2447 >= 0.3*0.6652 = 0.1996; 0.09 is not.
		{"min-p", []float32{2, 1, 0}, func(s []float32) { MinP(s, 0.3) }, []float32{2, 1, inf}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := slices.Clone(c.in)
			c.run(s)
			if !slices.Equal(s, c.want) {
				t.Errorf("got %v, want %v", s, c.want)
			}
		})
	}
}

func TestProcessorOrder(t *testing.T) {
	// min_new_tokens masks EOS after the penalty has seen it; the n-gram
	// ban and the penalty both act.
	p := DefaultParams()
	p.RepetitionPenalty, p.NoRepeatNgramSize, p.MinNewTokens = 2, 2, 1
	pr := newProcessor(p, []int32{3})
	s := []float32{4, -1, 1, 5}
	pr.apply(s, history{[]int32{0, 1}, nil}) // last token 1; bigram 0 1
	want := []float32{2, -2, 1, float32(math.Inf(-1))}
	if !slices.Equal(s, want) {
		t.Errorf("got %v, want %v", s, want)
	}
	// repeat_last_n 1: only the last token (1) is penalised.
	p.RepeatLastN, p.NoRepeatNgramSize, p.MinNewTokens = 1, 0, 0
	pr = newProcessor(p, nil)
	s = []float32{4, -1, 1, 5}
	pr.apply(s, history{[]int32{0, 1}, nil})
	if want := []float32{4, -2, 1, 5}; !slices.Equal(s, want) {
		t.Errorf("last n: got %v, want %v", s, want)
	}
}

// TestGreedy checks greedy decoding on the fake model: argmax of the
// processed logits, the penalty only when asked, EOS masking, stop tokens.
func TestGreedy(t *testing.T) {
	// After [] the best is a; after [a] a again (0.4 vs b 0.35): pure
	// greedy repeats a; penalty 1.5 on log-probs' logits... the fake's
	// logits are log-probs (negative), so the penalty multiplies them:
	// log .4 * 1.5 = -1.37 < log .35 = -1.05 and b wins.
	table := map[string][]float64{
		"[]":    {0.6, 0.2, 0.1, 0.1},
		"[0]":   {0.4, 0.35, 0.15, 0.1},
		"[0 0]": {0.4, 0.35, 0.15, 0.1},
		"[0 1]": {0.1, 0.1, 0.1, 0.7},
	}
	cases := []struct {
		name string
		p    func(*Params)
		want []int32
		end  int32
		stop lm.StopReason
	}{
		{"pure greedy repeats", func(p *Params) { p.MaxTokens = 3 }, []int32{tA, tA, tA}, -1, lm.StopMaxTokens},
		{"penalty", func(p *Params) { p.MaxTokens, p.RepetitionPenalty = 3, 1.5 }, []int32{tA, tB}, tEOS, lm.StopEOG},
		{"max tokens 0", func(p *Params) { p.MaxTokens = 0 }, nil, -1, lm.StopMaxTokens},
		{"stop tokens replaced", func(p *Params) { p.MaxTokens, p.RepetitionPenalty, p.EOS = 5, 1.5, []int32{tB} }, []int32{tA}, tB, lm.StopEOG},
		{"min new tokens", func(p *Params) { p.MaxTokens, p.RepetitionPenalty, p.MinNewTokens = 3, 1.5, 3 }, []int32{tA, tB, tC}, -1, lm.StopMaxTokens},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := DefaultParams()
			c.p(&p)
			f := newFakeLM(table)
			var seen []int32
			r, err := decodeT(context.Background(), f, p, []int32{tEOS}, func(pg progress) { seen = append(seen, pg.token) })
			if err != nil {
				t.Fatal(err)
			}
			s := r.seqs[0]
			if !slices.Equal(s.IDs, c.want) || s.End != c.end || r.stop != c.stop {
				t.Errorf("ids %v end %d stop %v; want %v end %d stop %v", s.IDs, s.End, r.stop, c.want, c.end, c.stop)
			}
			// Every returned token was fed; the end token was not.
			if !slices.Equal(f.seqs[0], s.IDs) && !(len(s.IDs) == 0 && len(f.seqs[0]) == 0) {
				t.Errorf("context holds %v, want %v", f.seqs[0], s.IDs)
			}
			wantSeen := slices.Clone(c.want)
			if c.end >= 0 {
				wantSeen = append(wantSeen, c.end)
			}
			if !slices.Equal(seen, wantSeen) {
				t.Errorf("progress saw %v, want %v", seen, wantSeen)
			}
		})
	}
}

// TestSampling checks that sampling is reproducible with a seed, follows
// the warpers (top-k 1 is greedy) and varies with the seed.
func TestSampling(t *testing.T) {
	run := func(p Params) []int32 {
		r, err := decodeT(context.Background(), newFakeLM(nil), p, []int32{tEOS}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r.seqs[0].IDs
	}
	p := DefaultParams()
	p.Temperature, p.MaxTokens, p.Seed = 1, 20, 7
	p.EOS = []int32{99} // never: uniform draws all 20
	a, b := run(p), run(p)
	if !slices.Equal(a, b) || len(a) != 20 {
		t.Errorf("seed 7 gave %v then %v", a, b)
	}
	p.Seed = 8
	if c := run(p); slices.Equal(a, c) {
		t.Errorf("seeds 7 and 8 drew the same %v", a)
	}
	// top-p 0.2 over four equal tokens: sorted ascending (stable), the
	// first three have cumulative mass <= 0.8 and go: token 3 is left.
	p.TopP = 0.2
	for _, id := range run(p) {
		if id != 3 {
			t.Fatalf("top-p 0.2 drew %d", id)
		}
	}
}

// TestDraw: draw picks token i for a share of [0, 1) equal to its softmax
// probability (evenly spaced u: within 1/N), never a masked token, and the
// warpers run in transformers' order (temperature before top-p: at
// temperature 0.5 the second token's probability falls below what top-p
// 0.8 keeps, at temperature 1 it does not).
func TestDraw(t *testing.T) {
	inf := float32(math.Inf(-1))
	scores := []float32{2, inf, 1, 0, inf}
	const n = 10000
	counts := make([]int, len(scores))
	for i := range n {
		counts[draw(scores, (float64(i)+0.5)/n)]++
	}
	e := []float64{math.Exp(2), 0, math.Exp(1), 1, 0}
	sum := e[0] + e[2] + e[3]
	for i, c := range counts {
		if want := e[i] / sum; math.Abs(float64(c)/n-want) > 1.0/n+1e-9 {
			t.Errorf("token %d drawn %d/%d times, probability %.4f", i, c, n, want)
		}
	}
	for _, c := range []struct {
		temp float64
		want []float32
	}{
		// probs at T=1: .665 .245 .090: the lowest (.090 <= .2) goes, .335 stays.
		{1, []float32{2, 1, inf}},
		// at T=0.5 (scores 4, 2, 0): .867 .117 .016: .133 <= .2 goes.
		{0.5, []float32{4, inf, inf}},
	} {
		p := DefaultParams()
		p.Temperature, p.TopP = c.temp, 0.8
		s := []float32{2, 1, 0}
		warp(s, p)
		if !slices.Equal(s, c.want) {
			t.Errorf("temperature %v, top-p 0.8: %v, want %v", c.temp, s, c.want)
		}
	}
}
