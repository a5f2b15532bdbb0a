package kernels

// Matrix products.
//
// The SIMD path is a packed GEMM in the BLIS style: the right-hand matrix
// (the weight W, or B in GemmNT/GemmNN) is packed per call into panels of
// nr columns x kc rows, contiguous and converted to f32 (f16 weights are
// widened here, once per call, so the inner loop is the same f32 FMA
// micro-kernel for f32 and f16). The weights stream from memory, so each
// micro-kernel call also prefetches two rows of the next panel into L2 and
// packing does not wait on memory. MatMulT first lays out x per kc-block
// (packA: each row's kc-slice contiguous, rows padded to a multiple of mr),
// so a group of rows is a few contiguous KB; GemmNT/GemmNN read A in place.
// The micro-kernel keeps a 6x16 tile of C in twelve ymm registers (AVX2),
// or a 12x32 tile in 24 zmm registers (AVX-512), with a 6x32 variant for a
// short last group (m = 257 = 21*12 + 5), or an 8x8 tile in 16 NEON
// registers (arm64, FMLA by element on 4 depth steps of each row). Work is split into tasks over
// column chunks sized so the threads finish together (balancedChunks), and
// row chunks of at most mcMax rows, so a kc-slice of the left-hand rows
// stays in L2. Q8_0 weights with m >= gemvMaxRows rows take the integer GEMM of
// q8gemm.go, with the same structure.
//
// Rows m < gemvMaxRows (one token, or a beam's few; f32 weights: m <
// gemvMaxRowsF32) take the GEMV path: one dot product per output,
// memory-bound, W streamed once for all rows (a weight row is multiplied by
// every row before the next; Q8_0 weights by up to 8 rows in one pass, f16
// weights in tiles of rows x columns), each row's result the same as
// alone. For Q8_0 weights that path
// quantizes the activations to int8 per 32-block, like llama.cpp, and uses
// integer dot products.
//
// The portable path computes every output as a dot product along k in order
// (2 rows x 4 columns register-blocked), which is the test oracle.

const (
	maxMR       = 12  // largest micro-kernel tile: rows
	maxNR       = 32  // and columns
	kcBlock     = 256 // depth of a packed panel: 32 KB of f32 for nr = 32, stays in L1
	mcMax       = 390 // rows per task: a kc-slice of them is < 400 KB of L2
	gemvMaxRows = 9   // m below this takes the GEMV path (Q8_0, f16 weights)
	// f32 weights: the GEMV has no multi-row kernel (x in f32 for several
	// rows outgrows L1), and packing f32 panels costs no conversion.
	gemvMaxRowsF32 = 4

	tasksPerThread = 6 // parallel split granularity
)

// MatMulT computes dst[m x w.Rows] = x[m x w.Cols] . w^T (+ bias, if bias is
// not nil), on the worker pool. x and dst are row-major and dense and must
// not overlap. For Q8_0 weights, x is quantized per 32-block (ggml's
// scheme) and the products are integer dot products per block.
// Sizes that do not match panic: they are programming errors, not input.
func (p *Pool) MatMulT(dst, x []float32, m int, w *Matrix, bias []float32) {
	w.check()
	n, k := w.Rows, w.Cols
	if m < 0 || len(x) < m*k || len(dst) < m*n || (bias != nil && len(bias) < n) {
		panic("kernels: MatMulT: slice too short for m x w.Cols, m x w.Rows or bias")
	}
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		for i := 0; i < m; i++ {
			row := dst[i*n : i*n+n]
			if bias != nil {
				copy(row, bias[:n])
			} else {
				clear(row)
			}
		}
		return
	}
	p.lock()
	defer p.unlock()
	j := &p.mm
	*j = matmulJob{p: p, dst: dst, x: x, m: m, n: n, k: k, w: w, bias: bias, simd: p.im.simd}
	if w.Type == F16 && !hasF16C {
		j.simd = false
	}
	j.gemv = m < gemvMaxRows && (w.Type != F32 || m < gemvMaxRowsF32) && (m == 1 || !w.AnyRows)
	if j.simd && !j.gemv && w.Type != Q8_0 {
		j.ap = p.packA(x, k, m, k, p.im.kern.mr)
	}
	if w.Type == Q8_0 {
		if j.gemv {
			j.prepareQ8()
		} else {
			j.q8 = true
			j.prepareQ8A()
		}
	}
	ntask := j.plan(p.n)
	p.run(j, ntask)
	*j = matmulJob{}
}

// matmulJob is the state of one MatMulT call; the pool's mm is the only
// instance (calls are serialised by the pool lock), so starting it
// allocates nothing.
type matmulJob struct {
	p          *Pool
	dst, x     []float32
	m, n, k    int
	w          *Matrix
	bias       []float32
	simd, gemv bool
	q8         bool // Q8_0 weights, m >= gemvMaxRows: the integer GEMM

	g  grid     // task grid
	ap *apacked // x packed for the SIMD GEMM

	// Q8_0 GEMV: activations quantized once per call
	xq      []int8
	xd, xdt []float32
}

func (j *matmulJob) prepareQ8() {
	q8x := &j.p.q8x
	nb := j.k / q8Block
	if cap(q8x.q) < j.m*j.k {
		q8x.q = make([]int8, j.m*j.k)
	}
	if cap(q8x.d) < j.m*nb {
		q8x.d = make([]float32, j.m*nb)
	}
	j.xq = q8x.q[:j.m*j.k]
	j.xd = q8x.d[:j.m*nb]
	for i := 0; i < j.m; i++ {
		QuantizeRowQ8(j.xq[i*j.k:(i+1)*j.k], j.xd[i*nb:(i+1)*nb], j.x[i*j.k:(i+1)*j.k])
	}
	if j.m > 1 {
		if cap(q8x.dt) < 8*nb {
			q8x.dt = make([]float32, 8*nb)
		}
		j.xdt = q8x.dt[:8*nb]
		interleaveQ8Scales(j.xdt, j.xd, nb, j.m)
	}
}

// plan chooses the task grid and returns the number of tasks.
func (j *matmulJob) plan(threads int) int {
	m, n := j.m, j.n
	mr, colAlign := j.p.im.kern.mr, j.p.im.kern.nr
	switch {
	case !j.simd:
		mr, colAlign = 2, 4
	case j.q8:
		mr, colAlign = j.p.im.q8.mr, j.p.im.q8.nr
	}
	if j.gemv {
		// Memory-bound: only columns are split, in chunks of >= 64.
		j.g = newGrid(m, n, m, colAlign, 1, min(max(1, n/64), 4*threads))
		return j.g.tasks()
	}
	mChunks := ceilDiv(m, mcMax)
	panels := ceilDiv(n, colAlign)
	// About six tasks per thread, so a thread the OS takes away for a while
	// (a shared machine) holds up little work; chunks stay >= 4 panels wide
	// so each kc-slice of the left-hand rows is reused from L2 many times.
	nChunks := min(max(1, ceilDiv(tasksPerThread*threads, mChunks)), max(1, panels/4))
	if mChunks == 1 && threads > 1 {
		// One row chunk (m <= mcMax, e.g. the ViT's 257 tokens): whole
		// panels are the unit of work, and an odd task out (n = 1408: 11
		// chunks of 4 panels on 2 threads) costs more than narrow chunks.
		nChunks = balancedChunks(panels, threads)
	}
	if mChunks*nChunks < 2*threads && m >= 2*mr*threads {
		// Few columns (e.g. n = 88): split the rows further.
		mChunks = min(ceilDiv(2*threads, nChunks), ceilDiv(m, 2*mr))
	}
	j.g = newGrid(m, n, mr, colAlign, mChunks, nChunks)
	return j.g.tasks()
}

// balancedChunks returns how many column chunks to split panels column
// panels into for threads threads: the count whose equal-sized chunks,
// handed out in turn, finish soonest (ceil(chunks/threads) rounds of
// ceil(panels/chunks) panels), among about 1 to 8 chunks a thread; of equal
// ones, the nearest to tasksPerThread a thread (spare tasks balance a busy
// machine). E.g. 44 panels on 2 threads: 4 chunks of 11, not 11 chunks of
// 4 (6 rounds against 5).
func balancedChunks(panels, threads int) int {
	best, bestCost, bestDist := 1, panels, abs(1-tasksPerThread*threads)
	for c := threads; c <= min(panels, 8*threads); c++ {
		cost := ceilDiv(c, threads) * ceilDiv(panels, c)
		d := abs(c - tasksPerThread*threads)
		if cost < bestCost || cost == bestCost && d < bestDist {
			best, bestCost, bestDist = c, cost, d
		}
	}
	return best
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// grid splits an m x n result into mChunks x nChunks tiles whose edges fall
// on multiples of mu rows and nu columns and whose sizes differ by at most
// one unit, so equal tasks balance across threads.
type grid struct {
	m, n, mu, nu     int
	mUnits, nUnits   int
	mChunks, nChunks int
}

func newGrid(m, n, mu, nu, mChunks, nChunks int) grid {
	g := grid{m: m, n: n, mu: mu, nu: nu, mUnits: ceilDiv(m, mu), nUnits: ceilDiv(n, nu)}
	g.mChunks = min(max(mChunks, 1), g.mUnits)
	g.nChunks = min(max(nChunks, 1), g.nUnits)
	return g
}

func (g *grid) tasks() int { return g.mChunks * g.nChunks }

// tile returns the rows [i0,i1) and columns [j0,j1) of a task.
func (g *grid) tile(task int) (i0, i1, j0, j1 int) {
	ti, tj := task/g.nChunks, task%g.nChunks
	i0 = ti * g.mUnits / g.mChunks * g.mu
	i1 = min((ti+1)*g.mUnits/g.mChunks*g.mu, g.m)
	j0 = tj * g.nUnits / g.nChunks * g.nu
	j1 = min((tj+1)*g.nUnits/g.nChunks*g.nu, g.n)
	return
}

func (j *matmulJob) run(worker, task int) {
	s := j.p.scratch[worker]
	i0, i1, j0, j1 := j.g.tile(task)
	if i0 >= i1 || j0 >= j1 {
		return
	}
	k := j.k
	switch {
	case j.gemv:
		j.runGEMV(s, i0, i1, j0, j1)
		return
	case j.q8 && j.simd:
		gemmQ8(s, &j.p.im.q8, i0, i1, j0, j1, j.p.q8a, k/q8Block*q8ABytes, j.w, j.dst, j.n)
	case j.q8:
		j.runQ8Portable(i0, i1, j0, j1)
		return
	case j.simd:
		b := bsrc{kind: bNT, w: j.w, ld: k}
		gemmSIMD(&j.p.im.kern, s, i0, i1, j0, j1, k, j.x, k, j.ap, &b, j.dst, j.n, 1)
	default:
		j.runPortable(s, i0, i1, j0, j1)
		return
	}
	if j.bias != nil {
		for i := i0; i < i1; i++ {
			row := j.dst[i*j.n+j0 : i*j.n+j1]
			addRange(row, row, j.bias[j0:j1], j.simd)
		}
	}
}

// runGEMV computes rows [i0,i1) x columns [j0,j1) one dot product at a
// time, all rows of a weight row in turn: the weights stream from memory
// once whatever the row count (a beam's rows cost little more than one;
// Q8_0 and f16 weights take several rows a pass), and each row's result is
// the same as alone.
func (j *matmulJob) runGEMV(s *scratch, i0, i1, j0, j1 int) {
	k, n, w := j.k, j.n, j.w
	nb := k / q8Block
	rb := nb * q8BlockBytes
	for c := j0; c < j1; {
		g := 1
		switch w.Type {
		case Q8_0:
			dotQ8Rows(j.dst[i0*n+c:], n, j.xq[i0*k:i1*k], j.xd[i0*nb:i1*nb], j.xdt, w.Raw[c*rb:c*rb+rb], i1-i0, j.simd)
		case F16:
			g = min(8, j1-c) // a tile of columns: x is read once for them
			dotF16Tile(j.dst[i0*n+c:], n, j.x[i0*k:i1*k], i1-i0, w.Raw[2*c*k:2*(c+g)*k], g, j.simd)
		default:
			for i := i0; i < i1; i++ {
				j.dst[i*n+c] = dotF32(j.x[i*k:i*k+k], w.F32[c*k:c*k+k], j.simd)
			}
		}
		if j.bias != nil {
			for i := i0; i < i1; i++ {
				for q := c; q < c+g; q++ {
					j.dst[i*n+q] += j.bias[q]
				}
			}
		}
		c += g
	}
}

// runPortable computes a tile with the reference dot products: each output
// is sum_p x[i,p]*w[c,p] accumulated in f32 in order of p, then + bias.
func (j *matmulJob) runPortable(s *scratch, i0, i1, j0, j1 int) {
	k, n := j.k, j.n
	s.rows = grow(s.rows, 4*k)
	for c := j0; c < j1; c += 4 {
		nc := min(4, j1-c)
		var wr [4][]float32
		for r := 0; r < nc; r++ {
			wr[r] = weightRowF32(j.w, c+r, s.rows[r*k:r*k+k], false)
		}
		for i := i0; i < i1; i++ {
			x := j.x[i*k : i*k+k]
			out := j.dst[i*n+c : i*n+c+nc]
			if nc == 4 && i+1 < i1 {
				x1 := j.x[(i+1)*k : (i+1)*k+k]
				v := dot2x4(x, x1, wr[0], wr[1], wr[2], wr[3])
				copy(out, v[:4])
				copy(j.dst[(i+1)*n+c:(i+1)*n+c+4], v[4:])
				if j.bias != nil {
					addTo(out, j.bias[c:c+4])
					addTo(j.dst[(i+1)*n+c:(i+1)*n+c+4], j.bias[c:c+4])
				}
				i++
				continue
			}
			for r := 0; r < nc; r++ {
				out[r] = dotGo(x, wr[r])
			}
			if j.bias != nil {
				addTo(out, j.bias[c:c+nc])
			}
		}
	}
}

// weightRowF32 returns row r of w as f32: the row itself for F32, else
// converted into buf (exactly: f16 and q*d are representable in f32).
func weightRowF32(w *Matrix, r int, buf []float32, simd bool) []float32 {
	k := w.Cols
	switch w.Type {
	case F16:
		cvtF16(buf[:k], w.Raw[2*r*k:2*(r*k+k)], simd && hasF16C)
		return buf[:k]
	case Q8_0:
		rb := k / q8Block * q8BlockBytes
		dequantQ8(buf[:k], w.Raw[r*rb:r*rb+rb], simd && hasF16C)
		return buf[:k]
	}
	return w.F32[r*k : r*k+k]
}

// dotGo is the reference dot product: f32, in order.
func dotGo(x, w []float32) float32 {
	w = w[:len(x)]
	var s float32
	for p, v := range x {
		s += v * w[p]
	}
	return s
}

// dot2x4 computes the 8 dot products of rows x0, x1 with w0..w3, each in
// order of p (so each equals dotGo), sharing the loads.
func dot2x4(x0, x1, w0, w1, w2, w3 []float32) [8]float32 {
	x1 = x1[:len(x0)]
	w0 = w0[:len(x0)]
	w1 = w1[:len(x0)]
	w2 = w2[:len(x0)]
	w3 = w3[:len(x0)]
	var c00, c01, c02, c03, c10, c11, c12, c13 float32
	for p, a := range x0 {
		b := x1[p]
		v0, v1, v2, v3 := w0[p], w1[p], w2[p], w3[p]
		c00 += a * v0
		c01 += a * v1
		c02 += a * v2
		c03 += a * v3
		c10 += b * v0
		c11 += b * v1
		c12 += b * v2
		c13 += b * v3
	}
	return [8]float32{c00, c01, c02, c03, c10, c11, c12, c13}
}

func addTo(dst, b []float32) {
	b = b[:len(dst)]
	for i := range dst {
		dst[i] += b[i]
	}
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
func roundUp(a, b int) int { return ceilDiv(a, b) * b }
