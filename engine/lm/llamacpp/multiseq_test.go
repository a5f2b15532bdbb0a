package llamacpp

import (
	"errors"
	"slices"
	"testing"

	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/engine/model/modeltest"
)

// prefill feeds the golden case's soft tokens and prompt (T5: encodes them
// and starts the decoder).
func prefill(t *testing.T, m *Model, c lm.Context, cs modeltest.Case) {
	t.Helper()
	soft, shape := modeltest.Float32(t, cs.Tensors(t), "language_model_inputs")
	q := shape[1]
	ids := cs.Golden.PromptIDs
	if m.Info().EncoderDecoder {
		emb, err := m.TokenEmbeddings(ids)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Encode(append(slices.Clone(soft), emb...), q+len(ids)); err != nil {
			t.Fatal(err)
		}
		if err := c.AppendTokens([]int32{m.Info().DecoderStart}, false); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := c.AppendEmbeddings(soft, q, false); err != nil {
		t.Fatal(err)
	}
	if err := c.AppendTokens(ids, false); err != nil {
		t.Fatal(err)
	}
}

// TestMultiSeqMatchesSingle steps three beams together (forked from the
// prompt, then reordered with a duplicate and a drop) and compares every
// row's logits with a one-sequence context fed the same path token by
// token. Batched rows go through llama.cpp's multi-row kernels (identical
// rows differ from a single one by ~2e-6), so the tolerance is 1e-4 for
// LLaMA (measured 3e-6) and 2e-3 for T5 (measured 4e-4): ggml's GELU reads
// an f16 table, which turns such input differences into steps of the
// table.
func TestMultiSeqMatchesSingle(t *testing.T) {
	for _, cs := range modeltest.Cases(t, "llama", "t5") {
		t.Run(cs.Name, func(t *testing.T) {
			tol := 1e-4
			if cs.TextType == "t5" {
				tol = 2e-3
			}
			m := openCase(t, cs, "f32")
			opts := lm.ContextOptions{NCtx: 128, Exact: true, Threads: 1}
			mo := opts
			mo.NSeq, mo.NSeqNew = 3, 8
			mc := newCtx(t, m, mo)
			prefill(t, m, mc, cs)
			base := mc.Pos()
			if mc.Seqs() != 1 {
				t.Fatalf("%d live sequences after the prompt", mc.Seqs())
			}
			steps := []struct {
				parents []int
				ids     []int32
			}{
				{[]int{0, 0, 0}, []int32{11, 12, 13}},
				{[]int{2, 0, 2}, []int32{21, 22, 23}},
				{[]int{1, 1, 0}, []int32{31, 32, 33}},
			}
			paths := [][]int32{nil}
			for _, st := range steps {
				if err := mc.Reorder(st.parents); err != nil {
					t.Fatal(err)
				}
				next := make([][]int32, len(st.parents))
				for i, p := range st.parents {
					next[i] = append(slices.Clone(paths[p]), st.ids[i])
				}
				paths = next
				if err := mc.AppendEach(st.ids); err != nil {
					t.Fatal(err)
				}
				if mc.Pos() != base+len(paths[0]) {
					t.Fatalf("Pos %d, want %d", mc.Pos(), base+len(paths[0]))
				}
				var worst float64
				for i, path := range paths {
					got := slices.Clone(mc.Logits(i))
					sc := newCtx(t, m, opts)
					prefill(t, m, sc, cs)
					for _, id := range path {
						if err := sc.AppendTokens([]int32{id}, false); err != nil {
							t.Fatal(err)
						}
					}
					worst = max(worst, modeltest.MaxAbsDiff(got, sc.Logits(-1)))
					sc.Close()
				}
				t.Logf("paths %v: max |multi - single| = %.3g", paths, worst)
				if worst > tol {
					t.Errorf("paths %v: logits differ by %.3g > %g", paths, worst, tol)
				}
			}
			// Back to one sequence: the context goes on as a plain one.
			if err := mc.AppendTokens([]int32{5}, false); err == nil {
				t.Error("AppendTokens with 3 live sequences succeeded")
			}
			if err := mc.Reorder([]int{2}); err != nil {
				t.Fatal(err)
			}
			if err := mc.Truncate(base + 1); err != nil {
				t.Fatal(err)
			}
			if err := mc.AppendTokens([]int32{7}, false); err != nil {
				t.Fatal(err)
			}
			got := slices.Clone(mc.Logits(-1))
			sc := newCtx(t, m, opts)
			prefill(t, m, sc, cs)
			if err := sc.AppendTokens([]int32{paths[2][0], 7}, false); err != nil {
				t.Fatal(err)
			}
			if d := modeltest.MaxAbsDiff(got, sc.Logits(-1)); d > tol {
				t.Errorf("after Reorder to one and Truncate: logits differ by %.3g", d)
			}
		})
	}
}

func TestReorderErrors(t *testing.T) {
	cs := modeltest.Cases(t, "llama")[0]
	m := openCase(t, cs, "f32")
	c := newCtx(t, m, lm.ContextOptions{NCtx: 64, NSeq: 2, Exact: true})
	prefill(t, m, c, cs)
	for _, parents := range [][]int{nil, {0, 0, 0}, {1}, {-1}} {
		if err := c.Reorder(parents); err == nil {
			t.Errorf("Reorder(%v) succeeded", parents)
		}
	}
	if err := c.AppendEach([]int32{1, 2}); err == nil {
		t.Error("AppendEach of 2 tokens for 1 live sequence succeeded")
	}
}

// TestMultiSeqCellsRunOut: beams that outgrow the cells made for them
// (NSeqNew) end with lm.ErrContextFull, not a llama.cpp failure.
func TestMultiSeqCellsRunOut(t *testing.T) {
	cs := modeltest.Cases(t, "llama")[0]
	m := openCase(t, cs, "f32")
	c := newCtx(t, m, lm.ContextOptions{NCtx: 256, NSeq: 3, NSeqNew: 1, Exact: true})
	prefill(t, m, c, cs)
	if err := c.Reorder([]int{0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	for c.Pos() < c.NCtx() {
		err := c.AppendEach([]int32{11, 12, 13})
		if errors.Is(err, lm.ErrContextFull) {
			t.Logf("cells ran out at position %d: %v", c.Pos(), err)
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("three beams reached position %d in a cache sized for one and 2x1 tokens", c.Pos())
}
