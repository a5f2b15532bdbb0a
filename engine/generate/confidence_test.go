package generate

import (
	"context"
	"math"
	"slices"
	"testing"
)

// softmax64 is the reference: the softmax of a raw logits row in float64.
func softmax64(logits []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range logits {
		m = max(m, float64(v))
	}
	out := make([]float64, len(logits))
	var s float64
	for i, v := range logits {
		out[i] = math.Exp(float64(v) - m)
		s += out[i]
	}
	for i := range out {
		out[i] /= s
	}
	return out
}

// checkTokens checks a sequence's TokenProbs against the raw logits that
// rawAt gives for each prefix of its ids: one per id, P the softmax of the
// raw row at the id, Top the best of that row in order.
func checkTokens(t *testing.T, label string, s Sequence, rawAt func(prefix []int32) []float32) {
	t.Helper()
	if len(s.Tokens) != len(s.IDs) {
		t.Fatalf("%s: %d tokens for %d ids", label, len(s.Tokens), len(s.IDs))
	}
	for i, tok := range s.Tokens {
		raw := rawAt(s.IDs[:i])
		p := softmax64(raw)
		if tok.ID != s.IDs[i] || math.Abs(tok.P-p[tok.ID]) > 1e-12 {
			t.Errorf("%s: token %d: %+v, want id %d p %v", label, i, tok, s.IDs[i], p[s.IDs[i]])
		}
		order := make([]int, len(raw))
		for j := range order {
			order[j] = j
		}
		slices.SortStableFunc(order, func(a, b int) int {
			switch {
			case raw[a] > raw[b]:
				return -1
			case raw[a] < raw[b]:
				return 1
			}
			return 0
		})
		if want := min(TopAlternatives, len(raw)); len(tok.Top) != want {
			t.Fatalf("%s: token %d: %d alternatives, want %d", label, i, len(tok.Top), want)
		}
		for j, a := range tok.Top {
			if int(a.ID) != order[j] || math.Abs(a.P-p[a.ID]) > 1e-12 {
				t.Errorf("%s: token %d alternative %d: %+v, want id %d p %v", label, i, j, a, order[j], p[order[j]])
			}
		}
	}
}

// TestTokenProbs: greedy decoding, sampling (temperature, top-k, a
// repetition penalty: the processed distribution differs from the raw one)
// and beam search record, for every returned token, the softmax of the raw
// logits it was chosen from.
func TestTokenProbs(t *testing.T) {
	table := map[string][]float64{
		"[]":      {0.5, 0.3, 0.1, 0.05, 0.05, 0, 0},
		"[0]":     {0.2, 0.35, 0.2, 0.05, 0.1, 0.05, 0.05},
		"[0 1]":   {0.6, 0.1, 0.1, 0.1, 0.05, 0.04, 0.01},
		"[0 1 0]": {0.1, 0.1, 0.1, 0.6, 0.05, 0.04, 0.01},
		"[1]":     {0.1, 0.1, 0.1, 0.6, 0.05, 0.04, 0.01},
	}
	for k, v := range table {
		for i := range v {
			v[i] += 1e-3 // log(0) is -Inf; keep every logit finite
		}
		table[k] = v
	}
	rawAt := func(prefix []int32) []float32 {
		f := newFakeLM(table)
		f.seqs = [][]int32{slices.Clone(prefix)}
		return f.Logits(0)
	}
	greedy := DefaultParams()
	greedy.MaxTokens = 6
	penalty := greedy
	penalty.RepetitionPenalty = 1.5
	sampling := greedy
	sampling.Temperature, sampling.TopK, sampling.Seed = 0.7, 3, 42
	beams := greedy
	beams.NumBeams, beams.NumReturnSequences = 3, 3
	for _, c := range []struct {
		name string
		p    Params
	}{{"greedy", greedy}, {"repetition penalty", penalty}, {"sampling", sampling}, {"beam search", beams}} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeLM(table)
			f.reuse = true
			dec, err := decodeT(context.Background(), f, c.p, []int32{tEOS}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(dec.seqs) == 0 || len(dec.seqs[0].IDs) == 0 {
				t.Fatalf("nothing decoded: %+v", dec)
			}
			for i, s := range dec.seqs {
				checkTokens(t, c.name+" sequence "+string(rune('0'+i)), s, rawAt)
			}
		})
	}
}

// TestDriverNamesTokens: the driver gives every token and alternative its
// text, beam search's answer included.
func TestDriverNamesTokens(t *testing.T) {
	m := newFake()
	_, d := start(t, m, 64)
	r, err := d.Decode(context.Background(), greedyOptions(100))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Tokens) != len(r.IDs) || len(r.IDs) == 0 {
		t.Fatalf("%d tokens for ids %v", len(r.Tokens), r.IDs)
	}
	for _, tok := range r.Tokens {
		if tok.Text != string(m.pieces[tok.ID]) || len(tok.Top) == 0 {
			t.Errorf("token %+v", tok)
		}
		for _, a := range tok.Top {
			if a.Text != string(m.pieces[a.ID]) {
				t.Errorf("alternative %+v", a)
			}
		}
	}
}
