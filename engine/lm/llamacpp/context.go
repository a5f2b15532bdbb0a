package llamacpp

import (
	"errors"
	"fmt"
	"time"

	"github.com/blip2chat/blip2chat/engine/llamacpp/capi"
	"github.com/blip2chat/blip2chat/engine/lm"
)

// DefaultBatch is the most rows passed to llama_decode at once when
// ContextOptions.NBatch is 0 (llama.cpp's own default).
const DefaultBatch = 512

// Context is an lm.Context on a llama.cpp context with one sequence.
type Context struct {
	m      *Model
	c      *capi.Context
	nCtx   int // positions allowed: what was asked, even if llama.cpp padded its cache
	nBatch int
	pos    int

	lastRows int       // rows of the last Append
	all      []float32 // with all: logits of every row of the last Append
	lastAll  bool
	stats    lm.Stats
}

// NewContext makes a context. NCtx is what the caller asked (llama.cpp
// rounds its KV cache up to a multiple of 256; the Context still refuses
// positions past NCtx). For T5 the batch size is NCtx so that one Encode
// call takes the whole prompt (llama_encode needs n_ubatch >= its rows).
func (m *Model) NewContext(o lm.ContextOptions) (lm.Context, error) {
	return m.newContext(o)
}

func (m *Model) newContext(o lm.ContextOptions) (*Context, error) {
	nCtx := o.NCtx
	if nCtx == 0 {
		nCtx = m.info.NCtx
	}
	if nCtx < 1 {
		return nil, fmt.Errorf("context size %d is not positive", nCtx)
	}
	if need, ok := m.kvBytes(nCtx, o.Exact); ok {
		if mem := float64(lm.PhysicalMemory()); mem > 0 && need > mem {
			return nil, fmt.Errorf("a context of %d positions needs %.1f GB for its KV cache, more than the %.1f GB of memory this machine has",
				nCtx, need/(1<<30), mem/(1<<30))
		}
	}
	threads := lm.Threads(o.Threads)
	nBatch := o.NBatch
	if nBatch <= 0 {
		nBatch = DefaultBatch
	}
	nBatch = min(nBatch, nCtx)
	p := m.lib.DefaultContextParams()
	p.NCtx = uint32(nCtx)
	p.NSeqMax = 1
	p.NThreads, p.NThreadsBatch = int32(threads), int32(threads)
	p.NoPerf = true
	if m.info.EncoderDecoder {
		nBatch = nCtx
		p.NUbatch = uint32(nCtx)
	} else {
		p.NUbatch = min(p.NUbatch, uint32(nBatch))
	}
	p.NBatch = uint32(nBatch)
	if o.Exact {
		p.FlashAttnType = 0     // LLAMA_FLASH_ATTN_TYPE_DISABLED
		p.TypeK, p.TypeV = 0, 0 // GGML_TYPE_F32
	}
	c, err := m.m.NewContext(p)
	if err != nil {
		return nil, err
	}
	nCtx = min(nCtx, c.NCtx())
	return &Context{m: m, c: c, nCtx: nCtx, nBatch: min(nBatch, c.NBatch())}, nil
}

// kvBytes estimates the KV cache of a context of nCtx positions from the
// model's metadata: keys and values of every (decoder) layer, f16 or, with
// exact, f32. ok is false when the metadata does not say (per-layer head
// counts, an unknown layout): llama.cpp then reports what it cannot
// allocate itself.
func (m *Model) kvBytes(nCtx int, exact bool) (bytes float64, ok bool) {
	f, arch := m.file, m.info.Arch
	get := func(key string) int {
		v, _ := f.Int(arch + "." + key)
		return v
	}
	layers := get("block_count")
	if d := get("decoder_block_count"); m.info.EncoderDecoder && d > 0 {
		layers = d
	}
	heads, headsKV, width := get("attention.head_count"), get("attention.head_count_kv"), get("embedding_length")
	if headsKV == 0 {
		headsKV = heads
	}
	keyLen, valLen := get("attention.key_length"), get("attention.value_length")
	if keyLen == 0 && heads > 0 {
		keyLen = width / heads
	}
	if valLen == 0 {
		valLen = keyLen
	}
	if layers <= 0 || headsKV <= 0 || keyLen <= 0 {
		return 0, false
	}
	elem := 2.0 // f16
	if exact {
		elem = 4
	}
	return float64(nCtx) * float64(layers) * float64(headsKV) * float64(keyLen+valLen) * elem, true
}

// unchanged checks, before each call into llama.cpp, that the model file is
// as it was loaded: llama.cpp maps it too, and a read past the end of a
// file truncated under it (SIGBUS) kills the process in C code, where Go
// cannot catch it. Reading the whole file into memory instead (llama.cpp's
// LoadModeNone) would close that last window (a file changed during one
// decode call) but costs the load time (2.5 s against 0.1-0.3 s for a
// 2.2 GB model, warm cache, measured) and a copy of the model in memory
// on every run; one fstat per call costs a microsecond.
func (m *Model) unchanged() error {
	if m.file == nil {
		return nil
	}
	return m.file.Unchanged()
}

// Llama is the underlying llama.cpp context.
func (c *Context) Llama() *capi.Context { return c.c }

// NCtx is the number of positions the context holds.
func (c *Context) NCtx() int { return c.nCtx }

// Pos is the number of positions filled.
func (c *Context) Pos() int { return c.pos }

// Stats returns the counters.
func (c *Context) Stats() lm.Stats { return c.stats }

// AppendEmbeddings decodes n embedding rows at Pos().
func (c *Context) AppendEmbeddings(rows []float32, n int, all bool) error {
	w := c.m.info.NEmbd
	if n <= 0 || len(rows) != n*w {
		return fmt.Errorf("append: %d floats are not %d rows of %d", len(rows), n, w)
	}
	return c.append(n, all, func(i, j int) capi.Batch {
		return capi.Batch{Embd: rows[i*w : j*w], Width: w}
	})
}

// AppendTokens decodes ids at Pos().
func (c *Context) AppendTokens(ids []int32, all bool) error {
	if len(ids) == 0 {
		return errors.New("append: no tokens")
	}
	return c.append(len(ids), all, func(i, j int) capi.Batch {
		return capi.Batch{Tokens: ids[i:j]}
	})
}

// append decodes n rows in chunks of at most nBatch; chunk(i, j) makes the
// batch of rows [i, j).
func (c *Context) append(n int, all bool, chunk func(i, j int) capi.Batch) error {
	if c.pos+n > c.nCtx {
		return fmt.Errorf("append: %d rows at position %d: %w (%d positions)", n, c.pos, lm.ErrContextFull, c.nCtx)
	}
	if err := c.m.unchanged(); err != nil {
		return err
	}
	start := time.Now()
	c.lastRows, c.lastAll = 0, all
	if all {
		c.all = grow(c.all, n*c.m.info.NVocab)
	}
	nv := c.m.info.NVocab
	for i := 0; i < n; i += c.nBatch {
		j := min(i+c.nBatch, n)
		b := chunk(i, j)
		b.Pos = int32(c.pos)
		if all {
			b.Logits = make([]bool, j-i)
			for k := range b.Logits {
				b.Logits[k] = true
			}
		}
		if err := c.c.Decode(b); err != nil {
			// Keep Pos in step with what the cache holds.
			c.resync()
			return err
		}
		c.stats.Evals++
		if b.Embd != nil {
			c.stats.EmbeddingRowsIn += j - i
		} else {
			c.stats.TokensIn += j - i
		}
		c.pos += j - i
		if all {
			for k := range j - i {
				l, err := c.c.Logits(k)
				if err != nil {
					return err
				}
				copy(c.all[(i+k)*nv:(i+k+1)*nv], l)
			}
		}
	}
	c.lastRows = n
	c.account(n, start)
	return nil
}

func (c *Context) account(n int, start time.Time) {
	if n > 1 {
		c.stats.PromptTime += time.Since(start)
	} else {
		c.stats.GenTime += time.Since(start)
	}
}

// resync sets Pos from the KV cache after a failed call.
func (c *Context) resync() {
	c.pos = int(c.c.MemorySeqPosMax(0)) + 1
	c.lastRows = 0
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// Logits returns the logits of row i of the last Append (-1: the last row).
func (c *Context) Logits(i int) []float32 {
	if c.lastRows == 0 {
		return nil
	}
	if i < 0 {
		i += c.lastRows
	}
	if i < 0 || i >= c.lastRows {
		return nil
	}
	nv := c.m.info.NVocab
	if c.lastAll {
		return c.all[i*nv : (i+1)*nv]
	}
	if i != c.lastRows-1 {
		return nil
	}
	l, err := c.c.Logits(-1)
	if err != nil {
		return nil
	}
	return l
}

// Truncate drops positions >= pos.
func (c *Context) Truncate(pos int) error {
	if pos < 0 || pos > c.pos {
		return fmt.Errorf("truncate to %d: the context holds %d positions", pos, c.pos)
	}
	if pos == c.pos {
		return nil
	}
	if !c.c.MemorySeqRm(0, int32(pos), -1) {
		return fmt.Errorf("llama.cpp cannot drop positions %d.. of its cache", pos)
	}
	c.pos, c.lastRows = pos, 0
	return nil
}

// Encode runs the encoder (T5) over n embedding rows and empties the
// decoder.
func (c *Context) Encode(rows []float32, n int) error {
	if !c.m.info.EncoderDecoder {
		return errors.New("encode: the model has no encoder")
	}
	w := c.m.info.NEmbd
	if n <= 0 || len(rows) != n*w {
		return fmt.Errorf("encode: %d floats are not %d rows of %d", len(rows), n, w)
	}
	if n > c.nCtx {
		return fmt.Errorf("encode: %d rows: %w (%d positions)", n, lm.ErrContextFull, c.nCtx)
	}
	if err := c.m.unchanged(); err != nil {
		return err
	}
	start := time.Now()
	c.c.MemoryClear(false)
	c.pos, c.lastRows = 0, 0
	if err := c.c.Encode(capi.EmbdBatch(rows, w, 0)); err != nil {
		return err
	}
	c.stats.Evals++
	c.stats.EncoderRowsIn += n
	c.stats.PromptTime += time.Since(start)
	return nil
}

// Close frees the context.
func (c *Context) Close() error { return c.c.Close() }
