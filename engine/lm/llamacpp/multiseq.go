package llamacpp

import (
	"errors"
	"fmt"
	"time"

	"github.com/blip2chat/blip2chat/engine/llamacpp/capi"
	"github.com/blip2chat/blip2chat/engine/lm"
)

// Beam search in llama.cpp: one llama.cpp sequence per beam in a unified KV
// cache. A fork (llama_memory_seq_cp) shares the prompt's cells between
// sequences, so cells are needed for the prompt once plus each beam's own
// new tokens; the context is made with NCtx + (NSeq-1)*NSeqNew cells.
// Logical sequence i lives in llama.cpp sequence phys[i]: a reorder moves a
// beam's cache by renaming it and copies only for beams that are kept twice.

var _ lm.MultiSeq = (*Context)(nil)

// seqNew is the room each forked sequence gets.
func seqNew(o lm.ContextOptions, nCtx int) int {
	if o.NSeqNew > 0 {
		return min(o.NSeqNew, nCtx)
	}
	return nCtx
}

func (c *Context) oneLive(op string) error {
	if c.live != 1 {
		return fmt.Errorf("%s: the context holds %d beams; Reorder to one first", op, c.live)
	}
	return nil
}

// resetSeqs makes sequence 0 (llama.cpp's 0) the only live one.
func (c *Context) resetSeqs() {
	c.live = 1
	for i := range c.phys {
		c.phys[i] = int32(i)
	}
}

// encoderBatch puts every encoder row in every sequence: llama.cpp's
// cross-attention lets a decoder row see the encoder rows that share one of
// its sequences.
func (c *Context) encoderBatch(rows []float32, w, n int) capi.Batch {
	b := capi.EmbdBatch(rows, w, 0)
	if len(c.phys) > 1 {
		all := make([]int32, len(c.phys))
		for i := range all {
			all[i] = int32(i)
		}
		b.RowSeqs = make([][]int32, n)
		for i := range b.RowSeqs {
			b.RowSeqs[i] = all
		}
	}
	return b
}

// Seqs is the number of live sequences.
func (c *Context) Seqs() int { return c.live }

// AppendEach appends ids[i] to live sequence i, all at Pos(), in one
// llama_decode call; Logits(i) is then sequence i's.
func (c *Context) AppendEach(ids []int32) error {
	n := len(ids)
	if n != c.live {
		return fmt.Errorf("append: %d tokens for %d sequences", n, c.live)
	}
	if c.pos+1 > c.nCtx {
		return fmt.Errorf("append: 1 row at position %d: %w (%d positions)", c.pos, lm.ErrContextFull, c.nCtx)
	}
	if err := c.m.unchanged(); err != nil {
		return err
	}
	start := time.Now()
	b := capi.Batch{Tokens: ids, RowSeqs: make([][]int32, n), RowPos: make([]int32, n), Logits: make([]bool, n)}
	for i := range n {
		b.RowSeqs[i] = c.phys[i : i+1]
		b.RowPos[i] = int32(c.pos)
		b.Logits[i] = true
	}
	c.lastRows = 0
	if err := c.c.Decode(b); err != nil {
		if errors.Is(err, capi.ErrKVFull) {
			// The beams outgrew the cells made for them (NSeqNew).
			return fmt.Errorf("append: %v: %w", err, lm.ErrContextFull)
		}
		return err
	}
	c.stats.Evals++
	c.stats.TokensIn += n
	nv := c.m.info.NVocab
	c.all = grow(c.all, n*nv)
	for i := range n {
		l, err := c.c.Logits(i)
		if err != nil {
			return err
		}
		copy(c.all[i*nv:(i+1)*nv], l)
	}
	c.pos++
	c.lastRows, c.lastAll = n, true
	c.stats.GenTime += time.Since(start)
	return nil
}

// Reorder makes sequence i hold what sequence parents[i] held.
func (c *Context) Reorder(parents []int) error {
	n := len(parents)
	if n < 1 || n > len(c.phys) {
		return fmt.Errorf("reorder: %d sequences; the context holds 1..%d", n, len(c.phys))
	}
	for _, p := range parents {
		if p < 0 || p >= c.live {
			return fmt.Errorf("reorder: parent %d is not one of the %d live sequences", p, c.live)
		}
	}
	// The first child of a parent takes its cache as it is; later children
	// get copies, made in caches no child takes.
	claimed := make([]bool, len(c.phys))
	next := make([]int32, len(c.phys))
	var copies []int // children that need a copy
	for i, p := range parents {
		src := c.phys[p]
		if !claimed[src] {
			claimed[src] = true
			next[i] = src
			continue
		}
		next[i] = -1
		copies = append(copies, i)
	}
	var free []int32
	for s := range claimed {
		if !claimed[s] {
			free = append(free, int32(s))
			// Empty it (a dropped beam, or a stale one).
			if !c.c.MemorySeqRm(int32(s), -1, -1) {
				return errors.New("reorder: llama.cpp cannot drop a sequence")
			}
		}
	}
	for k, i := range copies {
		dst := free[k]
		if err := c.c.MemorySeqCp(c.phys[parents[i]], dst, -1, -1); err != nil {
			return err
		}
		next[i] = dst
	}
	// The unused ids follow, so phys stays a permutation.
	for k := len(copies); k < len(free); k++ {
		next[n+k-len(copies)] = free[k]
	}
	copy(c.phys, next)
	c.live, c.lastRows = n, 0
	return nil
}
