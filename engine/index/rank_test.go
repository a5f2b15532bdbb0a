package index

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/blip2chat/blip2chat/engine/kernels"
)

// randomEmbeddings are n images of q random unit vectors of e floats.
func randomEmbeddings(n, q, e int, seed uint64) *Embeddings {
	r := rand.New(rand.NewPCG(seed, 1))
	emb := &Embeddings{Folder: "/p", Q: q, E: e, Data: make([]float32, n*q*e), Paths: make([]string, n)}
	for i := range emb.Paths {
		emb.Paths[i] = fmt.Sprintf("%05d.jpg", i)
	}
	for row := 0; row < n*q; row++ {
		v := emb.Data[row*e : (row+1)*e]
		var s float64
		for j := range v {
			v[j] = float32(r.NormFloat64())
			s += float64(v[j]) * float64(v[j])
		}
		for j := range v {
			v[j] /= float32(math.Sqrt(s))
		}
	}
	return emb
}

// TestScanBound: the int8 scan's error bound holds for every image and
// texts of several kinds (random, spiky, one of the vectors itself), with
// the kernels' scorer and the portable one, and leaves few images to
// score exactly; Rank's k best equal ranking everything exactly.
func TestScanBound(t *testing.T) {
	const n, q, e = 600, 32, 256 // 19,200 vectors: above scanRows
	emb := randomEmbeddings(n, q, e, 11)
	// Spiky vectors: most of the weight in one element of a block.
	for i := 0; i < 5; i++ {
		v := emb.Data[(i*q+3)*e : (i*q+4)*e]
		clear(v)
		v[i*7], v[i*7+1] = 0.999, float32(math.Sqrt(1-0.999*0.999))
	}
	sc := emb.scanMatrix()
	pool := kernels.NewPool(2)
	defer pool.Close()
	kern := func(scores, text []float32, w *kernels.Matrix) { pool.MatMulT(scores, text, 1, w, nil) }
	spiky := make([]float32, e)
	spiky[7] = 1
	texts := map[string][]float32{
		"random": randomEmbeddings(1, 1, e, 12).Data,
		"spiky":  spiky,
		"a row":  append([]float32(nil), emb.Data[(4*q+9)*e:(4*q+10)*e]...),
	}
	for name, text := range texts {
		for sname, score := range map[string]Scorer{"kernels": kern, "portable": nil} {
			if score == nil {
				score = dotRows
			}
			dots := make([]float32, n*q)
			score(dots, text, sc.m)
			bound := sc.bound(text)
			worst := 0.0
			for r := 0; r < n*q; r++ {
				var exact float64
				for j, x := range emb.Data[r*e : (r+1)*e] {
					exact += float64(x) * float64(text[j])
				}
				worst = max(worst, math.Abs(float64(dots[r])-exact))
			}
			t.Logf("%s text, %s: bound %.4f, largest error %.4f", name, sname, bound, worst)
			if worst > bound {
				t.Errorf("%s text, %s: the int8 scan is %.4g from the exact score, above its bound %.4g", name, sname, worst, bound)
			}
		}
		all := emb.Rank(text, 0, nil) // every image, summed as Rank's exact scores are
		for _, k := range []int{1, 10, 100} {
			got := emb.Rank(text, k, kern)
			for i := range got {
				if got[i] != all[i] {
					t.Errorf("%s text, k=%d #%d: %v, ranking all gives %v", name, k, i, got[i], all[i])
				}
			}
		}
	}
}
