package opt

import (
	"fmt"
	"time"

	"github.com/blip2chat/blip2chat/engine/kernels"
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/weights/gguf"
)

// Beam search in the OPT engine: each sequence has its own KV cache; a beam
// step runs the beams' rows through the decoder as one batch (every weight
// matrix read once, forward with each), each row attending to its own
// cache. Live sequence i uses cache phys[i]: a reorder renames caches and
// copies only for beams kept twice, and then only the positions after the
// fork (the prompt's part, the same in every cache, is copied once per
// beam search).

var _ lm.MultiSeq = (*Context)(nil)

// forkState records which caches hold the shared prefix.
type forkState struct {
	pos int    // positions [0, pos) are the same in every cache marked in has
	has []bool // per cache
}

func (c *Context) oneLive() error {
	if c.live != 1 {
		return fmt.Errorf("opt: the context holds %d beams; Reorder to one first", c.live)
	}
	return nil
}

// Seqs is the number of live sequences.
func (c *Context) Seqs() int { return c.live }

// AppendEach appends ids[i] to live sequence i at Pos(), all in one
// forward pass; Logits(i) is then sequence i's.
func (c *Context) AppendEach(ids []int32) (err error) {
	if c.err != nil {
		return c.err
	}
	n := len(ids)
	if n != c.live {
		return fmt.Errorf("opt: %d tokens for %d sequences", n, c.live)
	}
	for _, id := range ids {
		if id < 0 || int(id) >= c.m.hp.Vocab {
			return fmt.Errorf("opt: token id %d is outside the vocabulary (%d)", id, c.m.hp.Vocab)
		}
	}
	if err := c.room(1); err != nil {
		return err
	}
	// As run: a model file changed on disk is an error, not a fault.
	if err := c.m.file.Unchanged(); err != nil {
		return err
	}
	defer c.m.file.Guard(&err, gguf.PanicOnFault())
	start := time.Now()
	V, E := c.m.hp.Vocab, c.m.hp.WordEmbed
	if err := c.m.embed(c.x[:n*E], ids); err != nil {
		return err
	}
	if len(c.logits) < n*V {
		c.logits = make([]float32, n*V)
	}
	c.forward(n, c.logits[:n*V], true, true)
	c.nLogits, c.allKept = n, true
	c.stats.TokensIn += n
	c.stats.Evals++
	c.stats.GenTime += time.Since(start)
	return nil
}

// attendEach computes the keys and values of the n rows of in (row i at
// position pos of live sequence i), stores them in each sequence's cache
// and attends each row's query to its own cache.
func (c *Context) attendEach(li, n int, in, q, att []float32, scale float32) {
	hp := c.m.hp
	H := hp.Hidden
	L := &c.m.layers[li]
	pos := c.pos
	if len(c.kn) < n*H {
		c.kn, c.vn = make([]float32, n*H), make([]float32, n*H)
	}
	kn, vn := c.kn[:n*H], c.vn[:n*H]
	c.pool.MatMulT(kn, in, n, L.k.w, L.k.b)
	c.pool.MatMulT(vn, in, n, L.v.w, L.v.b)
	for i := range n {
		kv := &c.kv[c.phys[i]]
		kc := kv.k[li][:(pos+1)*H]
		vc := kv.v[li][:(pos+1)*H]
		copy(kc[pos*H:], kn[i*H:(i+1)*H])
		copy(vc[pos*H:], vn[i*H:(i+1)*H])
		c.att1 = kernels.AttentionArgs{Q: q[i*H : (i+1)*H], K: kc, V: vc, Out: att[i*H : (i+1)*H], Tq: 1, Tk: pos + 1,
			Heads: hp.Heads, HeadDim: hp.HeadDim(), Scale: scale, Causal: true}
		c.pool.Attention(&c.att1)
	}
}

// Reorder makes sequence i hold what sequence parents[i] held.
func (c *Context) Reorder(parents []int) error {
	if c.err != nil {
		return c.err
	}
	n := len(parents)
	if n < 1 || n > len(c.kv) {
		return fmt.Errorf("opt: reorder to %d sequences; the context holds 1..%d", n, len(c.kv))
	}
	for _, p := range parents {
		if p < 0 || p >= c.live {
			return fmt.Errorf("opt: reorder: parent %d is not one of the %d live sequences", p, c.live)
		}
	}
	if c.live == 1 && n > 1 {
		// A fork: the prompt so far becomes the shared prefix. Caches
		// that will not receive it lose their claim to the old one.
		c.fork.pos = c.pos
		for s := range c.fork.has {
			c.fork.has[s] = s == c.phys[0]
		}
	}
	claimed := make([]bool, len(c.kv))
	next := make([]int, len(c.kv))
	var copies []int
	for i, p := range parents {
		src := c.phys[p]
		if !claimed[src] {
			claimed[src] = true
			next[i] = src
			continue
		}
		copies = append(copies, i)
	}
	var free []int
	for s, cl := range claimed {
		if !cl {
			free = append(free, s)
		}
	}
	H := c.m.hp.Hidden
	for k, i := range copies {
		src, dst := &c.kv[c.phys[parents[i]]], free[k]
		from := 0
		if c.fork.has[dst] {
			from = c.fork.pos
		}
		d := &c.kv[dst]
		d.grow(c.pos, from, c.nCtx, H)
		for l := range d.k {
			copy(d.k[l][from*H:c.pos*H], src.k[l][from*H:c.pos*H])
			copy(d.v[l][from*H:c.pos*H], src.v[l][from*H:c.pos*H])
		}
		c.fork.has[dst] = true
		next[i] = dst
	}
	for k := len(copies); k < len(free); k++ {
		next[n+k-len(copies)] = free[k]
	}
	copy(c.phys, next)
	c.live, c.nLogits = n, 0
	return nil
}
