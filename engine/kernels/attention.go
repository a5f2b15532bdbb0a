package kernels

// AttentionArgs describes scaled dot-product attention over Heads heads laid
// side by side in each row: head h of query row i is
// Q[i*LdQ + h*HeadDim : ... + HeadDim], likewise K, V (Tk rows) and Out (Tq
// rows). A zero Ld means Heads*HeadDim.
type AttentionArgs struct {
	Q, K, V, Out           []float32
	Tq, Tk, Heads, HeadDim int
	LdQ, LdK, LdV, LdOut   int
	Scale                  float32
	Causal                 bool // query i sees keys 0..Tk-Tq+i
	// Probs, if set, receives the softmax probabilities, Heads x Tq x Tk
	// (head-major, as transformers' output_attentions): what users see of
	// where a model looked. Nil costs nothing.
	Probs []float32
}

// Attention computes Out = softmax(Scale * Q K^T) V for every head, in f32
// with the row maximum subtracted before exp. Heads (and, when there are few
// heads, blocks of query rows) run in parallel on the pool; the scores live
// in per-thread scratch, so steady-state calls allocate nothing.
func (p *Pool) Attention(a *AttentionArgs) {
	hd, H := a.HeadDim, a.Heads
	if a.Tq < 0 || a.Tk < 0 || H < 0 || hd < 0 {
		panic("kernels: Attention: negative size")
	}
	if a.Tq == 0 || H == 0 || hd == 0 {
		return
	}
	p.lock()
	defer p.unlock()
	j := &p.at
	*j = attnJob{p: p, a: *a}
	aa := &j.a
	w := H * hd
	for _, ld := range []*int{&aa.LdQ, &aa.LdK, &aa.LdV, &aa.LdOut} {
		if *ld == 0 {
			*ld = w
		}
		if *ld < w {
			panic("kernels: Attention: row stride smaller than Heads*HeadDim")
		}
	}
	if len(aa.Q) < (aa.Tq-1)*aa.LdQ+w || len(aa.Out) < (aa.Tq-1)*aa.LdOut+w ||
		(aa.Tk > 0 && (len(aa.K) < (aa.Tk-1)*aa.LdK+w || len(aa.V) < (aa.Tk-1)*aa.LdV+w)) {
		panic("kernels: Attention: Q, K, V or Out too short for its rows and stride")
	}
	if aa.Probs != nil && len(aa.Probs) < H*aa.Tq*aa.Tk {
		panic("kernels: Attention: Probs shorter than Heads x Tq x Tk")
	}
	// Split query rows too when there are fewer heads than tasksPerThread a thread.
	j.qc = aa.Tq
	mr := p.im.kern.mr
	if H < tasksPerThread*p.n && aa.Tq >= 4*mr {
		chunks := min(ceilDiv(tasksPerThread*p.n, H), aa.Tq/(2*mr))
		j.qc = roundUp(ceilDiv(aa.Tq, chunks), mr)
	}
	j.qn = ceilDiv(aa.Tq, j.qc)
	p.run(j, H*j.qn)
	*j = attnJob{}
}

type attnJob struct {
	p      *Pool
	a      AttentionArgs
	qc, qn int // query rows per task, tasks per head
}

func (j *attnJob) run(worker, task int) {
	a := &j.a
	s := j.p.scratch[worker]
	h, q0 := task/j.qn, task%j.qn*j.qc
	q1 := min(q0+j.qc, a.Tq)
	rows, tk, hd := q1-q0, a.Tk, a.HeadDim
	out := a.Out[q0*a.LdOut+h*hd:]
	if tk == 0 {
		for i := 0; i < rows; i++ {
			clear(out[i*a.LdOut : i*a.LdOut+hd])
		}
		return
	}
	s.s = grow(s.s, rows*tk)
	S := s.s
	q := a.Q[q0*a.LdQ+h*hd:]
	kb := bsrc{kind: bNTStrided, b: a.K[h*hd:], ld: a.LdK}
	gemmTile(&j.p.im, s, 0, rows, 0, tk, hd, q, a.LdQ, &kb, S, tk, a.Scale)
	for i := 0; i < rows; i++ {
		row := S[i*tk : i*tk+tk]
		vis := tk
		if a.Causal {
			vis = min(max(tk-a.Tq+q0+i+1, 0), tk)
		}
		if vis > 0 {
			softmaxRow(row[:vis], j.p.im.simd)
		}
		clear(row[vis:])
		if a.Probs != nil {
			copy(a.Probs[(h*a.Tq+q0+i)*tk:], row)
		}
	}
	vb := bsrc{kind: bNN, b: a.V[h*hd:], ld: a.LdV}
	gemmTile(&j.p.im, s, 0, rows, 0, hd, tk, S, tk, &vb, out, a.LdOut, 1)
}
