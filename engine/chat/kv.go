package chat

import (
	"github.com/blip2chat/blip2chat/engine/generate"
	"github.com/blip2chat/blip2chat/engine/lm"
)

// The language model side of a chat: one context (its KV cache, kept
// between turns) and the driver that knows what it holds.

// driver returns the inference driver, making the context on first use.
func (c *Chat) driver() (*generate.Driver, error) {
	if c.gen == nil {
		cx, err := c.lm.NewContext(lm.ContextOptions{NCtx: c.s.NCtx, Threads: c.s.Threads, Exact: c.s.Exact})
		if err != nil {
			return nil, err
		}
		c.gen = generate.New(c.lm, cx)
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
