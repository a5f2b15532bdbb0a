package kernels

import "unsafe"

// bsrc describes the right-hand operand of the packed GEMM.
type bsrc struct {
	kind int
	w    *Matrix   // bNT: weight rows are the columns of the product
	b    []float32 // bNTStrided / bNN
	ld   int       // row stride of w or b, in elements
}

const (
	bNT        = iota // columns of the product are rows of w (any DType)
	bNTStrided        // columns are rows of b (f32, stride ld)
	bNN               // columns are columns of b (f32, stride ld)
)

// pack writes the panel for columns [j, j+nb) and depth [pc, pc+kc) into dst
// as kc groups of nr values (columns beyond nb are zero), converting to f32.
func (b *bsrc) pack(s *scratch, dst []float32, j, nb, pc, kc, nr int) {
	dst = dst[:kc*nr]
	switch b.kind {
	case bNN:
		for p := 0; p < kc; p++ {
			row := b.b[(pc+p)*b.ld+j:]
			d := dst[p*nr : p*nr+nr]
			copy(d, row[:nb])
			clear(d[nb:])
		}
		return
	case bNTStrided:
		packNT(dst, b.b[j*b.ld+pc:], b.ld, nb, kc, nr)
		return
	}
	w := b.w
	if w.Type == F32 {
		packNT(dst, w.F32[j*b.ld+pc:], b.ld, nb, kc, nr)
		return
	}
	// f16 and Q8_0: widen the kc-slice of each row into s.rows, then pack.
	s.rows = grow(s.rows, maxNR*kcBlock)
	rows := s.rows[:nb*kc]
	k := w.Cols
	for r := 0; r < nb; r++ {
		out := rows[r*kc : r*kc+kc]
		if w.Type == F16 {
			off := 2 * ((j+r)*k + pc)
			cvtF16(out, w.Raw[off:off+2*kc], true)
		} else {
			rb := k / q8Block * q8BlockBytes
			off := (j+r)*rb + pc/q8Block*q8BlockBytes
			dequantQ8(out, w.Raw[off:off+kc/q8Block*q8BlockBytes], true)
		}
	}
	packNT(dst, rows, kc, nb, kc, nr)
}

// packNT transposes nb <= nr rows of src (stride ld) over depth kc into dst.
func packNT(dst, src []float32, ld, nb, kc, nr int) {
	p := 0
	if nb == nr && hasSIMD { // packNT runs for the SIMD GEMM only
		p = kc &^ 7
		if p > 0 {
			_ = src[(nr-1)*ld+p-1]
			packNTAsm(&dst[0], &src[0], ld, p, nr)
		}
	}
	for r := 0; r < nb; r++ {
		row := src[r*ld : r*ld+kc]
		for q := p; q < kc; q++ {
			dst[q*nr+r] = row[q]
		}
	}
	for r := nb; r < nr; r++ {
		for q := p; q < kc; q++ {
			dst[q*nr+r] = 0
		}
	}
}

// gemmSIMD computes the tile rows [i0,i1) x columns [j0,j1) of
// C = alpha * A . B, with A row-major (stride lda) and B given by b,
// overwriting C (stride ldc). It runs on one thread with its scratch s.
// If ap is not nil, A is read from ap instead, as packed by packA (a and
// lda are then unused).
func gemmSIMD(mk *microKernel, s *scratch, i0, i1, j0, j1, k int, a []float32, lda int, ap *apacked, b *bsrc, c []float32, ldc int, alpha float32) {
	mr, nr, kernel := mk.mr, mk.nr, mk.fn
	s.bpack = grow(s.bpack, kcBlock*maxNR)
	s.apad = grow(s.apad, maxMR*kcBlock)
	full := i0 + (i1-i0)/mr*mr // rows [full, i1) are a short group
	for pc := 0; pc < k; pc += kcBlock {
		kc := min(kcBlock, k-pc)
		aoff := pc // A's column of the block
		if ap != nil {
			// Contiguous kc-slices of every row, zero rows up to a
			// multiple of mr: all groups read in place.
			a, lda = ap.block(pc, kc), kc
			full = roundUp(i1, mr)
			a, aoff = a[:full*lda], 0
		} else if full < i1 {
			pad := s.apad[:mr*kc]
			for r := 0; r < mr; r++ {
				if full+r < i1 {
					copy(pad[r*kc:r*kc+kc], a[(full+r)*lda+pc:])
				} else {
					clear(pad[r*kc : r*kc+kc])
				}
			}
		}
		accum := pc > 0
		for jr := j0; jr < j1; jr += nr {
			nb := min(nr, j1-jr)
			bp := s.bpack[:kc*nr]
			b.pack(s, bp, jr, nb, pc, kc, nr)
			if alpha != 1 {
				scaleGo(bp, alpha)
			}
			// B streams from memory (the weights are read once per call):
			// each kernel call brings two rows of the next panel into L2.
			pf := b.nextPanel(jr+nr, j0, j1, pc, kc, k, nr)
			for ir := i0; ir < i1; ir += mr {
				p, pld, pn := pf.next()
				if ir < full {
					_ = a[(ir+mr-1)*lda+aoff+kc-1]
					if nb == nr && ir+mr <= i1 {
						_ = c[(ir+mr-1)*ldc+jr+nr-1]
						kernel(kc, &a[ir*lda+aoff], lda, &bp[0], &c[ir*ldc+jr], ldc, p, pld, pn, accum)
						continue
					}
					edgeTile(mk, s, kc, &a[ir*lda+aoff], lda, bp, c, ir, jr, min(mr, i1-ir), nb, ldc, accum, p, pld, pn)
				} else {
					edgeTile(mk, s, kc, &s.apad[0], kc, bp, c, ir, jr, i1-ir, nb, ldc, accum, p, pld, pn)
				}
			}
			pf.rest()
		}
	}
}

// edgeTile runs the micro-kernel into s.ctile and copies the mb x nb corner
// out to C (adding to it when accum).
func edgeTile(mk *microKernel, s *scratch, kc int, a *float32, lda int, bp []float32, c []float32, ir, jr, mb, nb, ldc int, accum bool, pf *byte, pfld, pfn int) {
	nr := mk.nr
	t := s.ctile[:]
	fn := mk.fn
	if mk.half != nil && mb <= mk.mr/2 {
		fn = mk.half
	}
	fn(kc, a, lda, &bp[0], &t[0], nr, pf, pfld, pfn, false)
	for r := 0; r < mb; r++ {
		out := c[(ir+r)*ldc+jr : (ir+r)*ldc+jr+nb]
		src := t[r*nr : r*nr+nb]
		if accum {
			addTo(out, src)
		} else {
			copy(out, src)
		}
	}
}

// panelFetch is the rows of B that the next panel packs, to be brought into
// cache while the current panel computes: left rows of n bytes, ld bytes
// apart, from raw[off].
type panelFetch struct {
	raw         []byte
	off, ld, n  int
	left, lines int
}

// nextPanel returns the rows the panel after (columns [jn, jn+nr) at depth
// pc) packs: the next panel of the tile, or, after its last, the first panel
// at the next depth block.
func (b *bsrc) nextPanel(jn, j0, j1, pc, kc, k, nr int) panelFetch {
	if jn >= j1 {
		jn, pc = j0, pc+kc
		if pc >= k {
			return panelFetch{}
		}
		kc = min(kcBlock, k-pc)
	}
	var f panelFetch
	switch {
	case b.kind == bNTStrided:
		f = panelFetch{raw: f32Bytes(b.b), off: 4 * (jn*b.ld + pc), ld: 4 * b.ld, n: 4 * kc}
	case b.kind == bNT && b.w.Type == F32:
		f = panelFetch{raw: f32Bytes(b.w.F32), off: 4 * (jn*b.ld + pc), ld: 4 * b.ld, n: 4 * kc}
	case b.kind == bNT && b.w.Type == F16:
		f = panelFetch{raw: b.w.Raw, off: 2 * (jn*b.w.Cols + pc), ld: 2 * b.w.Cols, n: 2 * kc}
	default:
		return panelFetch{}
	}
	f.left = min(nr, j1-jn)
	f.lines = ceilDiv(f.n, 64) + 1 // the slice need not start on a line
	return f
}

// next returns the arguments of the micro-kernel's prefetch: two rows (or
// the last one twice), or nil when none are left.
func (f *panelFetch) next() (p *byte, ld, lines int) {
	if f.left <= 0 {
		return nil, 0, 0
	}
	p, ld, lines = &f.raw[f.off], f.ld, f.lines
	if f.left == 1 {
		ld = 0
	}
	f.left -= 2
	if f.left > 0 {
		f.off += 2 * f.ld
	}
	return p, ld, lines
}

// rest prefetches the rows left (when the tile has fewer row groups than
// the panel has rows).
func (f *panelFetch) rest() {
	for f.left > 0 {
		prefetchAsm(&f.raw[f.off], f.n)
		if f.left--; f.left > 0 {
			f.off += f.ld
		}
	}
}

// f32Bytes is the memory of v as bytes (for prefetch addresses).
func f32Bytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 4*len(v))
}

// GemmNT computes C = alpha * A . B^T for row-major strided matrices:
// A is m x k (stride lda), B is n x k (stride ldb), C is m x n (stride ldc).
// Large products run on the pool.
func (p *Pool) GemmNT(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, alpha float32) {
	checkGemm("GemmNT", m, n, k, a, lda, b, ldb, n, k, c, ldc)
	p.gemm(m, n, k, a, lda, bsrc{kind: bNTStrided, b: b, ld: ldb}, c, ldc, alpha)
}

// GemmNN computes C = A . B for row-major strided matrices: A is m x k
// (stride lda), B is k x n (stride ldb), C is m x n (stride ldc).
// Large products run on the pool.
func (p *Pool) GemmNN(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	checkGemm("GemmNN", m, n, k, a, lda, b, ldb, k, n, c, ldc)
	p.gemm(m, n, k, a, lda, bsrc{kind: bNN, b: b, ld: ldb}, c, ldc, 1)
}

func checkGemm(name string, m, n, k int, a []float32, lda int, b []float32, ldb, brows, bcols int, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic("kernels: " + name + ": negative size")
	}
	if m == 0 || n == 0 {
		return
	}
	if lda < k || ldb < bcols || ldc < n {
		panic("kernels: " + name + ": stride smaller than row width")
	}
	if (k > 0 && len(a) < (m-1)*lda+k) || (bcols > 0 && brows > 0 && len(b) < (brows-1)*ldb+bcols) || len(c) < (m-1)*ldc+n {
		panic("kernels: " + name + ": slice too short for its size and stride")
	}
}

// gemmJob is the state of one GemmNT/GemmNN call on the pool.
type gemmJob struct {
	p        *Pool
	m, n, k  int
	a, c     []float32
	lda, ldc int
	b        bsrc
	alpha    float32
	g        grid
}

func (p *Pool) gemm(m, n, k int, a []float32, lda int, b bsrc, c []float32, ldc int, alpha float32) {
	if m == 0 || n == 0 {
		return
	}
	p.lock()
	defer p.unlock()
	j := &p.gm
	*j = gemmJob{p: p, m: m, n: n, k: k, a: a, lda: lda, c: c, ldc: ldc, b: b, alpha: alpha}
	// Split only products worth waking the workers for (~1 MFLOP a task).
	tasks := max(1, min(tasksPerThread*p.n, m*n*k/(1<<19)))
	mr, nr := p.im.kern.mr, p.im.kern.nr
	mChunks := max(1, min(tasks, m/(4*mr)))
	nChunks := max(1, min(ceilDiv(tasks, mChunks), n/(4*nr)))
	j.g = newGrid(m, n, mr, nr, mChunks, nChunks)
	p.run(j, j.g.tasks())
	*j = gemmJob{}
}

func (j *gemmJob) run(worker, task int) {
	s := j.p.scratch[worker]
	i0, i1, c0, c1 := j.g.tile(task)
	if i0 < i1 && c0 < c1 {
		gemmTile(&j.p.im, s, i0, i1, c0, c1, j.k, j.a, j.lda, &j.b, j.c, j.ldc, j.alpha)
	}
}

// gemmTile computes rows [i0,i1) x columns [j0,j1) of C = alpha A.B on one
// thread, with the SIMD kernel or the portable loops.
func gemmTile(im *impl, s *scratch, i0, i1, j0, j1, k int, a []float32, lda int, b *bsrc, c []float32, ldc int, alpha float32) {
	if k == 0 {
		for i := i0; i < i1; i++ {
			clear(c[i*ldc+j0 : i*ldc+j1])
		}
		return
	}
	if im.simd {
		gemmSIMD(&im.kern, s, i0, i1, j0, j1, k, a, lda, nil, b, c, ldc, alpha)
		return
	}
	switch b.kind {
	case bNN:
		// C[i,:] = sum_p A[i,p] B[p,:], in order of p.
		for i := i0; i < i1; i++ {
			out := c[i*ldc+j0 : i*ldc+j1]
			clear(out)
			arow := a[i*lda : i*lda+k]
			for p, v := range arow {
				axpy(out, b.b[p*b.ld+j0:p*b.ld+j1], v)
			}
		}
	default:
		for i := i0; i < i1; i++ {
			x := a[i*lda : i*lda+k]
			for col := j0; col < j1; col++ {
				c[i*ldc+col] = alpha * dotGo(x, b.b[col*b.ld:col*b.ld+k])
			}
		}
	}
}

// axpy: y += a*x.
func axpy(y, x []float32, a float32) {
	x = x[:len(y)]
	for i := range y {
		y[i] += a * x[i]
	}
}

func scaleGo(x []float32, s float32) {
	for i := range x {
		x[i] *= s
	}
}

// apacked is the left-hand matrix of one call re-laid for the micro-kernel:
// for each depth block [pc, pc+kc), the kc-slices of all rows one after the
// other (rows beyond m zero, up to mpad, a multiple of mr). The kernel then
// reads a group's rows from a few contiguous KB instead of mr rows a full
// row apart (fewer pages and cache sets), and the short last group needs no
// copy.
type apacked struct {
	buf     []float32
	m, mpad int
	k       int
}

// block returns the packed rows of the depth block starting at pc.
func (ap *apacked) block(pc, kc int) []float32 {
	return ap.buf[ap.mpad*pc : ap.mpad*(pc+kc)]
}

// apackJob packs rows of A into the pool's apack, a few rows a task.
type apackJob struct {
	ap        *apacked
	a         []float32
	lda, rows int
}

func (j *apackJob) run(worker, task int) {
	ap := j.ap
	for pc := 0; pc < ap.k; pc += kcBlock {
		kc := min(kcBlock, ap.k-pc)
		blk := ap.block(pc, kc)
		for i := task * j.rows; i < min((task+1)*j.rows, ap.mpad); i++ {
			if i < ap.m {
				copy(blk[i*kc:i*kc+kc], j.a[i*j.lda+pc:])
			} else {
				clear(blk[i*kc : i*kc+kc])
			}
		}
	}
}

// packA lays out the m x k matrix a (stride lda) in the pool's apack for a
// kernel with mr rows, on the pool.
func (p *Pool) packA(a []float32, lda, m, k, mr int) *apacked {
	ap := &p.apack
	ap.m, ap.mpad, ap.k = m, roundUp(m, mr), k
	ap.buf = grow(ap.buf, ap.mpad*k)
	j := &p.ap
	*j = apackJob{ap: ap, a: a, lda: lda}
	// ~64K elements a task: worth a wake-up, small enough to balance.
	j.rows = max(1, (1<<16)/k)
	p.run(j, ceilDiv(ap.mpad, j.rows))
	*j = apackJob{}
	return ap
}
