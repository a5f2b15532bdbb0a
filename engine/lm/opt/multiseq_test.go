package opt

import (
	"slices"
	"testing"

	"github.com/blip2chat/blip2chat/engine/lm"
)

// TestMultiSeqMatchesSingle steps three beams of the golden OPT together
// (forked from the prompt, reordered with a duplicate and a drop, then
// grown past the first cache allocation) and compares every row's logits
// with a one-sequence context fed the same path. A batched row goes through
// the same kernels as a single one except for the GEMM's row blocking:
// f32 agrees to 1e-4 (logits reach ~50; measured 8e-6 SIMD, 0 portable);
// q8_0's one-row GEMV sums its blocks in another order than the many-row
// GEMM: 1e-3 (measured 1.8e-4 SIMD, 5e-5 portable). The test runs the
// machine's kernels; make test runs it again portable and on AVX2.
func TestMultiSeqMatchesSingle(t *testing.T) {
	g := loadGolden(t)
	for _, typ := range []string{"f32", "q8_0"} {
		{
			name := typ
			tol := 1e-4
			if typ == "q8_0" {
				tol = 1e-3
			}
			t.Run(name, func(t *testing.T) {
				m := openGolden(t, typ)
				prefill := func(c *Context) {
					t.Helper()
					if err := c.AppendEmbeddings(g.soft, g.q, false); err != nil {
						t.Fatal(err)
					}
					if err := c.AppendTokens(g.ids, false); err != nil {
						t.Fatal(err)
					}
				}
				mc := newCtx(t, m, lm.ContextOptions{NSeq: 3, NBatch: 2})
				prefill(mc)
				base := mc.Pos()
				type step struct {
					parents []int
					ids     []int32
				}
				steps := []step{{[]int{0, 0, 0}, []int32{11, 12, 13}}, {[]int{2, 0, 2}, []int32{21, 22, 23}}, {[]int{1, 1, 0}, []int32{31, 32, 33}}}
				// Past kvInitRows: the caches grow while beams run.
				for k := 0; base+len(steps)+1 < kvInitRows+4; k++ {
					steps = append(steps, step{[]int{k % 3, 1, 2}, []int32{int32(40 + k%50), int32(100 + k%7), 7}})
				}
				paths := [][]int32{nil}
				var worst float64
				for si, st := range steps {
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
					if si > 3 && si != len(steps)-1 {
						continue // compare the first steps and the last
					}
					for i, path := range paths {
						sc := newCtx(t, m, lm.ContextOptions{})
						prefill(sc)
						if err := sc.AppendTokens(path, false); err != nil {
							t.Fatal(err)
						}
						worst = max(worst, maxAbsDiff(mc.Logits(i), sc.Logits(-1)))
						sc.Close()
					}
				}
				t.Logf("%d steps: max |multi - single| = %.3g", len(steps), worst)
				if worst > tol {
					t.Errorf("logits differ by %.3g > %g", worst, tol)
				}
				// One sequence again: Truncate and Append work on it.
				if err := mc.Truncate(base); err == nil {
					t.Error("Truncate with 3 live sequences succeeded")
				}
				if err := mc.Reorder([]int{1}); err != nil {
					t.Fatal(err)
				}
				if err := mc.Truncate(base + 2); err != nil {
					t.Fatal(err)
				}
				if err := mc.AppendTokens([]int32{9}, false); err != nil {
					t.Fatal(err)
				}
				sc := newCtx(t, m, lm.ContextOptions{})
				prefill(sc)
				if err := sc.AppendTokens(append(slices.Clone(paths[1][:2]), 9), false); err != nil {
					t.Fatal(err)
				}
				if d := maxAbsDiff(mc.Logits(-1), sc.Logits(-1)); d > tol {
					t.Errorf("after Reorder to one: logits differ by %.3g", d)
				}
				// A second beam search from the new end reuses the caches.
				if err := mc.Reorder([]int{0, 0}); err != nil {
					t.Fatal(err)
				}
				if err := mc.AppendEach([]int32{5, 6}); err != nil {
					t.Fatal(err)
				}
				for i, id := range []int32{5, 6} {
					sc := newCtx(t, m, lm.ContextOptions{})
					prefill(sc)
					if err := sc.AppendTokens(append(slices.Clone(paths[1][:2]), 9, id), false); err != nil {
						t.Fatal(err)
					}
					if d := maxAbsDiff(mc.Logits(i), sc.Logits(-1)); d > tol {
						t.Errorf("second fork, beam %d: logits differ by %.3g", i, d)
					}
				}
			})
		}
	}
}

func TestMultiSeqErrors(t *testing.T) {
	g := loadGolden(t)
	m := openGolden(t, "f32")
	c := newCtx(t, m, lm.ContextOptions{NSeq: 2})
	if err := c.AppendEmbeddings(g.soft, g.q, false); err != nil {
		t.Fatal(err)
	}
	for _, parents := range [][]int{nil, {0, 0, 0}, {1}, {-1}} {
		if err := c.Reorder(parents); err == nil {
			t.Errorf("Reorder(%v) succeeded", parents)
		}
	}
	if err := c.AppendEach([]int32{1, 2}); err == nil {
		t.Error("AppendEach of 2 tokens for 1 sequence succeeded")
	}
	if err := c.Reorder([]int{0, 0}); err != nil {
		t.Fatal(err)
	}
	if err := c.AppendEach([]int32{1, int32(m.hp.Vocab)}); err == nil {
		t.Error("AppendEach of a token outside the vocabulary succeeded")
	}
	if err := c.AppendTokens([]int32{1}, false); err == nil {
		t.Error("AppendTokens with 2 live sequences succeeded")
	}
}
