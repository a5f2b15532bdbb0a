package kernels

import "math"

// Row-wise and element-wise kernels. Each has a portable reference (computed
// in float64 where it matters) and an AVX2 version for the 8-aligned part of
// the row (the tail runs in Go). Large calls are split over the pool.

// parallelMin is the element count below which a call stays on the caller.
const parallelMin = 1 << 16

// LayerNorm normalises each of rows rows of n values of x over its n values:
// dst = (x - mean) / sqrt(var + eps) * gamma + beta (biased variance, as
// PyTorch). dst may alias x; gamma and beta may be nil (1 and 0).
func (p *Pool) LayerNorm(dst, x []float32, rows, n int, gamma, beta []float32, eps float32) {
	if rows < 0 || n < 0 || len(x) < rows*n || len(dst) < rows*n ||
		(gamma != nil && len(gamma) < n) || (beta != nil && len(beta) < n) {
		panic("kernels: LayerNorm: slice too short for rows x n")
	}
	if rows == 0 || n == 0 {
		return
	}
	p.runElem(&elemJob{kind: eLayerNorm, simd: p.im.simd, dst: dst, x: x, rows: rows, n: n, g: gamma, b: beta, s: eps})
}

func layerNormRow(dst, x, gamma, beta []float32, eps float32, simd bool) {
	n := len(x)
	if simd && n >= 8 {
		p := n &^ 7
		sum := float64(sumAsm(&x[0], p))
		for _, v := range x[p:] {
			sum += float64(v)
		}
		mean := float32(sum / float64(n))
		sq := float64(sqDiffAsm(&x[0], p, mean))
		for _, v := range x[p:] {
			d := v - mean
			sq += float64(d * d)
		}
		rstd := float32(1 / math.Sqrt(sq/float64(n)+float64(eps)))
		normAsm(&dst[0], &x[0], p, mean, rstd)
		for i := p; i < n; i++ {
			dst[i] = (x[i] - mean) * rstd
		}
		switch {
		case gamma != nil && beta != nil:
			mulAddAsm(&dst[0], &gamma[0], &beta[0], p)
			for i := p; i < n; i++ {
				dst[i] = dst[i]*gamma[i] + beta[i]
			}
		case gamma != nil:
			mulAsm(&dst[0], &gamma[0], p)
			for i := p; i < n; i++ {
				dst[i] *= gamma[i]
			}
		case beta != nil:
			addAsm(&dst[0], &dst[0], &beta[0], p)
			for i := p; i < n; i++ {
				dst[i] += beta[i]
			}
		}
		return
	}
	var sum float64
	for _, v := range x {
		sum += float64(v)
	}
	mean := sum / float64(n)
	var sq float64
	for _, v := range x {
		d := float64(v) - mean
		sq += d * d
	}
	rstd := 1 / math.Sqrt(sq/float64(n)+float64(eps))
	for i, v := range x {
		y := (float64(v) - mean) * rstd
		if gamma != nil {
			y *= float64(gamma[i])
		}
		if beta != nil {
			y += float64(beta[i])
		}
		dst[i] = float32(y)
	}
}

// Softmax replaces the row x by softmax(x), subtracting the maximum first.
func Softmax(x []float32) {
	softmaxRow(x, machine.simd)
}

func softmaxRow(x []float32, simd bool) {
	n := len(x)
	if n == 0 {
		return
	}
	if simd && n >= 8 {
		p := n &^ 7
		m := maxAsm(&x[0], p)
		for _, v := range x[p:] {
			m = max(m, v)
		}
		sum := float64(expSubAsm(&x[0], p, m))
		for i := p; i < n; i++ {
			x[i] = float32(math.Exp(float64(x[i] - m)))
			sum += float64(x[i])
		}
		scaleAsm(&x[0], p, float32(1/sum))
		for i := p; i < n; i++ {
			x[i] *= float32(1 / sum)
		}
		return
	}
	m := x[0]
	for _, v := range x[1:] {
		m = max(m, v)
	}
	var sum float64
	for i, v := range x {
		e := math.Exp(float64(v - m))
		x[i] = float32(e)
		sum += e
	}
	inv := 1 / sum
	for i, v := range x {
		x[i] = float32(float64(v) * inv)
	}
}

// GELU applies x * Phi(x) = 0.5 x (1 + erf(x/sqrt 2)) in place. The portable
// version uses math.Erf; the AVX2 one the Abramowitz-Stegun 7.1.26 erf with a
// vector exp (as PyTorch's CPU kernel), |error| <= 2e-7 * |x| + 2 ulp.
func (p *Pool) GELU(x []float32) {
	p.runElem(&elemJob{kind: eGELU, simd: p.im.simd, x: x, n: len(x), rows: 1})
}

func geluRange(x []float32, simd bool) {
	p := 0
	if simd && len(x) >= 8 {
		p = len(x) &^ 7
		geluAsm(&x[0], p)
	}
	for i := p; i < len(x); i++ {
		v := float64(x[i])
		x[i] = float32(0.5 * v * (1 + math.Erf(v*(1/math.Sqrt2))))
	}
}

// ReLU applies max(x, 0) in place.
func ReLU(x []float32) { relu(x, machine.simd) }

func relu(x []float32, simd bool) {
	p := 0
	if simd && len(x) >= 8 {
		p = len(x) &^ 7
		reluAsm(&x[0], p)
	}
	for i := p; i < len(x); i++ {
		if !(x[i] > 0) {
			x[i] = 0
		}
	}
}

// Add sets dst = a + b element-wise; the slices may alias.
func Add(dst, a, b []float32) {
	if len(a) < len(dst) || len(b) < len(dst) {
		panic("kernels: Add: a or b shorter than dst")
	}
	addRange(dst, a, b, machine.simd)
}

func addRange(dst, a, b []float32, simd bool) {
	n := len(dst)
	p := 0
	if simd && n >= 8 {
		p = n &^ 7
		addAsm(&dst[0], &a[0], &b[0], p)
	}
	a, b = a[:n], b[:n]
	for i := p; i < n; i++ {
		dst[i] = a[i] + b[i]
	}
}

// AddBias adds bias (len n) to each of the rows rows of x (rows x n).
func AddBias(x []float32, rows int, bias []float32) { addBias(x, rows, bias, machine.simd) }

func addBias(x []float32, rows int, bias []float32, simd bool) {
	n := len(bias)
	if rows < 0 || len(x) < rows*n {
		panic("kernels: AddBias: x shorter than rows x len(bias)")
	}
	for i := 0; i < rows; i++ {
		row := x[i*n : i*n+n]
		addRange(row, row, bias, simd)
	}
}

// Scale multiplies x by s in place.
func Scale(x []float32, s float32) { scale(x, s, machine.simd) }

func scale(x []float32, s float32, simd bool) {
	p := 0
	if simd && len(x) >= 8 {
		p = len(x) &^ 7
		scaleAsm(&x[0], p, s)
	}
	for i := p; i < len(x); i++ {
		x[i] *= s
	}
}

// elemJob splits row-wise (LayerNorm) or range-wise (GELU) kernels.
type elemJob struct {
	kind       int
	simd       bool
	dst, x     []float32
	g, b       []float32
	rows, n    int
	s          float32
	chunk, cnt int
}

const (
	eLayerNorm = iota
	eGELU
)

func (p *Pool) runElem(e *elemJob) {
	total := e.rows * e.n
	if total == 0 {
		return
	}
	if total < parallelMin || p.n == 1 {
		e.chunk, e.cnt = max(e.rows, 1), 1
		if e.kind == eGELU {
			e.chunk = e.n
		}
		e.run(0, 0)
		return
	}
	p.lock()
	defer p.unlock()
	j := &p.el
	*j = *e
	tasks := 4 * p.n
	if j.kind == eGELU {
		j.chunk = roundUp(ceilDiv(j.n, tasks), 64)
		j.cnt = ceilDiv(j.n, j.chunk)
	} else {
		j.chunk = ceilDiv(j.rows, tasks)
		j.cnt = ceilDiv(j.rows, j.chunk)
	}
	p.run(j, j.cnt)
	*j = elemJob{}
}

func (e *elemJob) run(worker, task int) {
	switch e.kind {
	case eGELU:
		lo := task * e.chunk
		hi := min(lo+e.chunk, e.n)
		if lo < hi {
			geluRange(e.x[lo:hi], e.simd)
		}
	case eLayerNorm:
		n := e.n
		lo := task * e.chunk
		hi := min(lo+e.chunk, e.rows)
		for r := lo; r < hi; r++ {
			var g, b []float32
			if e.g != nil {
				g = e.g[:n]
			}
			if e.b != nil {
				b = e.b[:n]
			}
			layerNormRow(e.dst[r*n:r*n+n], e.x[r*n:r*n+n], g, b, e.s, e.simd)
		}
	}
}
