package kernels

import "math"

// attentionRef is the float64 reference used by the tests.
func attentionRef(a *AttentionArgs) []float64 {
	w := a.Heads * a.HeadDim
	ld := func(v int) int {
		if v == 0 {
			return w
		}
		return v
	}
	lq, lk, lv := ld(a.LdQ), ld(a.LdK), ld(a.LdV)
	out := make([]float64, a.Tq*w)
	sc := make([]float64, a.Tk)
	for h := 0; h < a.Heads; h++ {
		for i := 0; i < a.Tq; i++ {
			vis := a.Tk
			if a.Causal {
				vis = min(max(a.Tk-a.Tq+i+1, 0), a.Tk)
			}
			m := math.Inf(-1)
			for t := 0; t < vis; t++ {
				var d float64
				for c := 0; c < a.HeadDim; c++ {
					d += float64(a.Q[i*lq+h*a.HeadDim+c]) * float64(a.K[t*lk+h*a.HeadDim+c])
				}
				sc[t] = d * float64(a.Scale)
				m = math.Max(m, sc[t])
			}
			var sum float64
			for t := 0; t < vis; t++ {
				sc[t] = math.Exp(sc[t] - m)
				sum += sc[t]
			}
			for c := 0; c < a.HeadDim; c++ {
				var v float64
				for t := 0; t < vis; t++ {
					v += sc[t] / sum * float64(a.V[t*lv+h*a.HeadDim+c])
				}
				out[i*w+h*a.HeadDim+c] = v
			}
		}
	}
	return out
}
