package opt

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/blip2chat/blip2chat/engine/kernels"
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/weights/gguf"
)

// DefaultBatch is the most rows one forward pass takes when
// ContextOptions.NBatch is 0; longer appends run in several passes.
const DefaultBatch = 512

// kvInitRows is the first capacity of the KV cache, which then doubles as
// positions fill, so that a short chat does not pay for the whole context.
const kvInitRows = 256

// Context is one sequence with its KV cache (lm.Context). It is not safe for
// concurrent use.
type Context struct {
	m      *Model
	nCtx   int
	nBatch int
	pos    int

	// KV caches, one per sequence (multiseq.go); live sequence i uses
	// kv[phys[i]].
	kv   []kvCache
	phys []int
	live int
	fork forkState
	kn   []float32 // a beam step's new keys and values (AppendEach)
	vn   []float32

	// Activations for up to nBatch rows.
	x, h, a, q, att, ff []float32
	last                []float32 // one row of width E: the head's input when only the last row is kept

	logits  []float32 // kept rows x Vocab
	nLogits int       // rows of the last Append
	allKept bool      // every row's logits were kept

	att1  kernels.AttentionArgs
	pool  *kernels.Pool // the threads of this context (ContextOptions.Threads)
	stats lm.Stats
	err   error // set when closed
}

// NewContext makes a context (lm.Model). NCtx is capped at the learned
// positions (Info.NCtxTrain); NBatch defaults to DefaultBatch; the context
// runs on lm.Threads(Threads) threads of its own, as a
// llama.cpp context does. Exact changes nothing: the OPT engine always
// computes in f32 with an f32 KV cache.
func (m *Model) NewContext(o lm.ContextOptions) (lm.Context, error) {
	c, err := m.newContext(o)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (m *Model) newContext(o lm.ContextOptions) (*Context, error) {
	if o.NCtx < 0 || o.NBatch < 0 || o.Threads < 0 {
		return nil, fmt.Errorf("opt: negative context option (ctx %d, batch %d, threads %d)", o.NCtx, o.NBatch, o.Threads)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, fmt.Errorf("%s: model is closed", m.path)
	}
	m.contexts++
	m.mu.Unlock()

	nCtx := o.NCtx
	if nCtx == 0 {
		nCtx = m.info.NCtx
	}
	nCtx = min(nCtx, m.info.NCtxTrain)
	nb := o.NBatch
	if nb == 0 {
		nb = DefaultBatch
	}
	nb = min(nb, nCtx)
	threads := lm.Threads(o.Threads)
	hp := m.hp
	c := &Context{m: m, nCtx: nCtx, nBatch: nb, pool: kernels.NewPool(threads)}
	c.x = make([]float32, nb*hp.WordEmbed)
	c.h = make([]float32, nb*hp.Hidden)
	c.a = make([]float32, nb*max(hp.Hidden, hp.WordEmbed))
	c.q = make([]float32, nb*hp.Hidden)
	c.att = make([]float32, nb*hp.Hidden)
	c.ff = make([]float32, nb*hp.FFN)
	c.last = make([]float32, hp.WordEmbed)
	nSeq := max(1, o.NSeq)
	c.kv = make([]kvCache, nSeq)
	c.phys = make([]int, nSeq)
	for i := range c.kv {
		c.kv[i] = newKVCache(hp.Layers)
		c.phys[i] = i
	}
	c.live = 1
	c.fork.has = make([]bool, nSeq)
	for i := range c.fork.has {
		c.fork.has[i] = true // everything holds the empty prefix
	}
	if nSeq > nb {
		// AppendEach feeds nSeq rows at once.
		for _, b := range []*[]float32{&c.x, &c.h, &c.a, &c.q, &c.att, &c.ff} {
			*b = make([]float32, len(*b)/nb*nSeq)
		}
	}
	if o.AllLogits {
		c.logits = make([]float32, nb*hp.Vocab)
	} else {
		c.logits = make([]float32, hp.Vocab)
	}
	return c, nil
}

// NCtx is the number of positions the context holds.
func (c *Context) NCtx() int { return c.nCtx }

// Pos is the number of positions filled.
func (c *Context) Pos() int { return c.pos }

// Stats returns the counters since the context was made.
func (c *Context) Stats() lm.Stats { return c.stats }

// Encode is for encoder-decoder models; OPT is decoder-only.
func (c *Context) Encode(rows []float32, n int) error {
	return errors.New("opt: OPT is decoder-only; it has no encoder")
}

// Truncate drops positions >= pos from the KV cache.
func (c *Context) Truncate(pos int) error {
	if c.err != nil {
		return c.err
	}
	if pos < 0 || pos > c.pos {
		return fmt.Errorf("opt: truncate to %d: the context holds %d positions", pos, c.pos)
	}
	if err := c.oneLive(); err != nil {
		return err
	}
	c.pos = pos
	c.fork.pos = min(c.fork.pos, pos)
	c.nLogits = 0
	return nil
}

// Logits returns the logits of row i of the last Append (i = -1: its last
// row); nil when that row's logits were not kept.
func (c *Context) Logits(i int) []float32 {
	n := c.nLogits
	if n == 0 {
		return nil
	}
	if i == -1 {
		i = n - 1
	}
	if i < 0 || i >= n {
		return nil
	}
	V := c.m.hp.Vocab
	if !c.allKept {
		if i != n-1 {
			return nil
		}
		return c.logits[:V]
	}
	return c.logits[i*V : (i+1)*V]
}

// AppendEmbeddings appends n rows of input embeddings (n x Info.NEmbd, the
// soft tokens) at Pos().
func (c *Context) AppendEmbeddings(rows []float32, n int, all bool) error {
	if c.err != nil {
		return c.err
	}
	E := c.m.hp.WordEmbed
	if n <= 0 {
		return fmt.Errorf("opt: append of %d embedding rows", n)
	}
	if len(rows) != n*E {
		return fmt.Errorf("opt: %d values for %d embedding rows of width %d", len(rows), n, E)
	}
	if err := c.room(n); err != nil {
		return err
	}
	c.stats.EmbeddingRowsIn += n
	return c.run(n, all, func(dst []float32, from, cnt int) error {
		copy(dst, rows[from*E:(from+cnt)*E])
		return nil
	})
}

// AppendTokens appends tokens at Pos().
func (c *Context) AppendTokens(ids []int32, all bool) error {
	if c.err != nil {
		return c.err
	}
	n := len(ids)
	if n == 0 {
		return errors.New("opt: append of no tokens")
	}
	for _, id := range ids {
		if id < 0 || int(id) >= c.m.hp.Vocab {
			return fmt.Errorf("opt: token id %d is outside the vocabulary (%d)", id, c.m.hp.Vocab)
		}
	}
	if err := c.room(n); err != nil {
		return err
	}
	c.stats.TokensIn += n
	return c.run(n, all, func(dst []float32, from, cnt int) error {
		return c.m.embed(dst, ids[from:from+cnt])
	})
}

// AppendPrompt appends n soft-token rows and then the tokens ids in one
// pass (lm.PromptAppender): the prompt of a new image is one GEMM per
// weight matrix, not two.
func (c *Context) AppendPrompt(rows []float32, n int, ids []int32, all bool) error {
	if c.err != nil {
		return c.err
	}
	E := c.m.hp.WordEmbed
	if n < 0 || len(rows) != n*E {
		return fmt.Errorf("opt: %d values for %d embedding rows of width %d", len(rows), n, E)
	}
	if n+len(ids) == 0 {
		return errors.New("opt: append of an empty prompt")
	}
	for _, id := range ids {
		if id < 0 || int(id) >= c.m.hp.Vocab {
			return fmt.Errorf("opt: token id %d is outside the vocabulary (%d)", id, c.m.hp.Vocab)
		}
	}
	if err := c.room(n + len(ids)); err != nil {
		return err
	}
	c.stats.EmbeddingRowsIn += n
	c.stats.TokensIn += len(ids)
	return c.run(n+len(ids), all, func(dst []float32, from, cnt int) error {
		// Rows [from, from+cnt): soft rows first, then token embeddings.
		soft := max(0, min(n, from+cnt)-from)
		if soft > 0 {
			copy(dst[:soft*E], rows[from*E:(from+soft)*E])
		}
		if soft == cnt {
			return nil
		}
		t := from + soft - n
		return c.m.embed(dst[soft*E:cnt*E], ids[t:t+cnt-soft])
	})
}

func (c *Context) room(n int) error {
	if c.pos+n > c.nCtx {
		return fmt.Errorf("opt: %d positions after %d do not fit in %d: %w", n, c.pos, c.nCtx, lm.ErrContextFull)
	}
	return nil
}

// run feeds n rows in passes of at most nBatch; input writes rows
// [from, from+cnt) of the input into dst.
func (c *Context) run(n int, all bool, input func(dst []float32, from, cnt int) error) (err error) {
	if err := c.oneLive(); err != nil {
		return err
	}
	// The weights are read from the file's mapping: a file changed on
	// disk is an error, not a fault.
	if err := c.m.file.Unchanged(); err != nil {
		return err
	}
	defer c.m.file.Guard(&err, gguf.PanicOnFault())
	start := time.Now()
	V, E := c.m.hp.Vocab, c.m.hp.WordEmbed
	if all && len(c.logits) < n*V {
		c.logits = make([]float32, n*V)
	}
	c.nLogits = 0
	for from := 0; from < n; from += c.nBatch {
		cnt := min(c.nBatch, n-from)
		if err := input(c.x[:cnt*E], from, cnt); err != nil {
			return err
		}
		var out []float32
		switch {
		case all:
			out = c.logits[from*V : (from+cnt)*V]
		case from+cnt == n:
			out = c.logits[:V]
		}
		c.forward(cnt, out, all, false)
		c.stats.Evals++
	}
	c.nLogits, c.allKept = n, all
	if d := time.Since(start); n > 1 {
		c.stats.PromptTime += d
	} else {
		c.stats.GenTime += d
	}
	return nil
}

// kvCache is one sequence's KV cache: per layer, rows x Hidden keys and
// values.
type kvCache struct {
	k, v [][]float32
	rows int
}

func newKVCache(layers int) kvCache {
	return kvCache{k: make([][]float32, layers), v: make([][]float32, layers)}
}

// grow makes the cache hold at least rows positions, keeping the first
// keep.
func (kv *kvCache) grow(rows, keep, nCtx, H int) {
	if rows <= kv.rows {
		return
	}
	newRows := min(max(rows, 2*kv.rows, kvInitRows), nCtx)
	for l := range kv.k {
		k := make([]float32, newRows*H)
		v := make([]float32, newRows*H)
		copy(k, kv.k[l][:keep*H])
		copy(v, kv.v[l][:keep*H])
		kv.k[l], kv.v[l] = k, v
	}
	kv.rows = newRows
}

// forward runs n rows (in c.x) through the decoder and advances pos: at
// positions pos..pos+n-1 of sequence 0, or, with each, row i at position
// pos of live sequence i (a beam step: the weights are read once for all
// rows). logits (nil: none) receives the logits of every row when all,
// else of the last row only.
func (c *Context) forward(n int, logits []float32, all, each bool) {
	m := c.m
	hp := m.hp
	H, E, F := hp.Hidden, hp.WordEmbed, hp.FFN
	pos := c.pos
	seqs := 1
	if each {
		seqs = n
	}
	for i := range seqs {
		c.kv[c.phys[i]].grow(pos+n/seqs, pos, c.nCtx, H)
	}

	x := c.x[:n*E]
	h := c.h[:n*H]
	a := c.a[:n*H]
	q := c.q[:n*H]
	att := c.att[:n*H]
	ff := c.ff[:n*F]

	if m.projIn != nil {
		c.pool.MatMulT(h, x, n, m.projIn, nil)
	} else {
		copy(h, x)
	}
	if each {
		pe := m.posEmbd[(pos+hp.PosOffset)*H : (pos+hp.PosOffset+1)*H]
		for i := range n {
			kernels.Add(h[i*H:(i+1)*H], h[i*H:(i+1)*H], pe)
		}
	} else {
		pe := m.posEmbd[(pos+hp.PosOffset)*H : (pos+hp.PosOffset+n)*H]
		kernels.Add(h, h, pe)
	}

	eps := hp.Eps
	scale := float32(1 / math.Sqrt(float64(hp.HeadDim())))
	for li := range m.layers {
		L := &m.layers[li]
		in := h
		if hp.PreLN {
			c.pool.LayerNorm(a, h, n, H, L.attnNorm.w, L.attnNorm.b, eps)
			in = a
		}
		c.pool.MatMulT(q, in, n, L.q.w, L.q.b)
		if each {
			c.attendEach(li, n, in, q, att, scale)
		} else {
			kv := &c.kv[c.phys[0]]
			kc := kv.k[li][:(pos+n)*H]
			vc := kv.v[li][:(pos+n)*H]
			c.pool.MatMulT(kc[pos*H:], in, n, L.k.w, L.k.b)
			c.pool.MatMulT(vc[pos*H:], in, n, L.v.w, L.v.b)
			c.att1 = kernels.AttentionArgs{Q: q, K: kc, V: vc, Out: att, Tq: n, Tk: pos + n,
				Heads: hp.Heads, HeadDim: hp.HeadDim(), Scale: scale, Causal: true}
			c.pool.Attention(&c.att1)
		}
		c.pool.MatMulT(a, att, n, L.o.w, L.o.b)
		kernels.Add(h, h, a)
		if !hp.PreLN {
			c.pool.LayerNorm(h, h, n, H, L.attnNorm.w, L.attnNorm.b, eps)
		}

		in = h
		if hp.PreLN {
			c.pool.LayerNorm(a, h, n, H, L.ffnNorm.w, L.ffnNorm.b, eps)
			in = a
		}
		c.pool.MatMulT(ff, in, n, L.up.w, L.up.b)
		if hp.Activation == "gelu" {
			c.pool.GELU(ff)
		} else {
			kernels.ReLU(ff)
		}
		c.pool.MatMulT(a, ff, n, L.down.w, L.down.b)
		kernels.Add(h, h, a)
		if !hp.PreLN {
			c.pool.LayerNorm(h, h, n, H, L.ffnNorm.w, L.ffnNorm.b, eps)
		}
	}
	c.pos = pos + n/seqs
	if logits == nil {
		return
	}

	// The head: only the rows whose logits are wanted.
	rows, hs := n, h
	if !all {
		rows, hs = 1, h[(n-1)*H:n*H]
	}
	if hp.FinalNorm {
		c.pool.LayerNorm(hs, hs, rows, H, m.outNorm.w, m.outNorm.b, eps)
	}
	if m.projOut != nil {
		out := c.a[:rows*E]
		c.pool.MatMulT(out, hs, rows, m.projOut, nil)
		hs = out
	}
	c.pool.MatMulT(logits, hs, rows, m.output, nil)
}

// Close frees the context's buffers.
func (c *Context) Close() error {
	if c.err != nil {
		return nil
	}
	c.err = errors.New("opt: context is closed")
	c.pool.Close()
	c.nLogits = 0
	c.kv, c.x, c.h, c.a, c.q, c.att, c.ff, c.logits = nil, nil, nil, nil, nil, nil, nil, nil
	c.m.mu.Lock()
	c.m.contexts--
	c.m.mu.Unlock()
	return nil
}
