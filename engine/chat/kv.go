package chat

import (
	"github.com/blip2chat/blip2chat/engine/generate"
	"github.com/blip2chat/blip2chat/engine/lm"
)

// The language model side of a chat: one context (its KV cache, kept
// between turns) and the driver that knows what it holds.

// driver returns the inference driver, making the context on first use,
// and again when the settings ask for more beams, or longer beams, than it
// holds (a context for beam search holds one sequence per beam, each with
// room for MaxTokens new tokens; greedy answers use the first).
func (c *Chat) driver() (*generate.Driver, error) {
	o := lm.ContextOptions{NCtx: c.s.NCtx, Threads: c.s.Threads, Exact: c.s.Exact}
	if n := c.s.Beams(); n > 1 {
		o.NSeq, o.NSeqNew = n, c.s.MaxTokens
	}
	if c.gen != nil && (o.NSeq > max(1, c.cxOpts.NSeq) || (o.NSeq > 1 && o.NSeqNew > c.cxOpts.NSeqNew)) {
		c.dropContext()
	}
	if c.gen == nil {
		cx, err := c.lm.NewContext(o)
		if err != nil {
			return nil, err
		}
		c.gen, c.cxOpts = generate.New(c.lm, cx), o
	}
	return c.gen, nil
}

// dropContext frees the context; the next turn makes a new one and
// evaluates its whole prompt.
func (c *Chat) dropContext() {
	if c.gen != nil {
		c.gen.Context().Close()
		c.gen = nil
	}
}

// nctx is the context size, without making the context.
func (c *Chat) nctx() int {
	if c.gen != nil {
		return c.gen.Context().NCtx()
	}
	return c.s.NCtx
}

// Usage reports how much of the context is filled.
func (c *Chat) Usage() Usage {
	u := Usage{Total: c.nctx()}
	if c.gen != nil {
		u.Used = c.gen.Used()
	}
	return u
}
