package capi

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"unsafe"
)

// Context is an inference state (llama_context): the KV cache and the
// outputs of the last Decode. It is not safe for concurrent use.
type Context struct {
	model      *Model
	c          uintptr
	mem        uintptr // llama_memory_t; 0 for models without one
	nCtx       int
	nBatch     int
	nUbatch    int
	nSeqMax    int
	outputsMax int // most output rows per Decode (cparams.n_outputs_max)
	nEmbdInp   int

	// outputs of the last Decode, to validate Logits indices
	lastRows int
	lastOut  []bool
	nOut     int

	// per-call arrays lent to C, reused between calls
	pos, nSeqID, seqID []int32
	seqPtr             []*int32
	logits             []int8
}

// NewContext makes an inference context for the model. Read the sizes
// llama.cpp actually chose from NCtx, NBatch and NUbatch.
func (m *Model) NewContext(p ContextParams) (*Context, error) {
	mh := m.handle()
	if m.vocabOnly {
		return nil, fmt.Errorf("%s was loaded with VocabOnly: it has no weights to run", m.path)
	}
	l := m.lib
	l.log.takeError()
	c := l.c.llama_init_from_model(mh, p)
	if c == 0 {
		return nil, fmt.Errorf("%s", l.withReason("llama.cpp cannot make a context for "+m.path))
	}
	ctx := &Context{
		model:    m,
		c:        c,
		mem:      l.c.llama_get_memory(c),
		nCtx:     int(l.c.llama_n_ctx(c)),
		nBatch:   int(l.c.llama_n_batch(c)),
		nUbatch:  int(l.c.llama_n_ubatch(c)),
		nSeqMax:  int(l.c.llama_n_seq_max(c)),
		nEmbdInp: m.NEmbdInp(),
	}
	// Mirrors llama_context's constructor: exceeding this aborts in
	// output_reserve.
	ctx.outputsMax = int(p.NOutputsMax)
	if p.NOutputsMax == 0 || m.HasEncoder() {
		ctx.outputsMax = ctx.nBatch
	}
	return ctx, nil
}

// Close frees the context. It is safe to call more than once.
func (c *Context) Close() error {
	if c.c != 0 {
		c.model.lib.c.llama_free(c.c)
		c.c, c.mem = 0, 0
	}
	return nil
}

func (c *Context) handle() uintptr {
	if c.c == 0 {
		panic("llamacpp: use of a closed Context")
	}
	return c.c
}

// Model is the model the context runs.
func (c *Context) Model() *Model { return c.model }

// NCtx is the context size in tokens: positions must stay below it.
func (c *Context) NCtx() int { return c.nCtx }

// NBatch is the most rows one Decode call takes.
func (c *Context) NBatch() int { return c.nBatch }

// NUbatch is the most rows one Encode call takes.
func (c *Context) NUbatch() int { return c.nUbatch }

// SetThreads sets the threads used for single-token steps (n) and for
// batches (nBatch).
func (c *Context) SetThreads(n, nBatch int) {
	c.model.lib.c.llama_set_n_threads(c.handle(), int32(max(n, 1)), int32(max(nBatch, 1)))
}

// Batch is the input of one Encode or Decode call: rows of either token ids
// or embeddings (the BLIP-2 soft tokens), by default all in one sequence at
// consecutive positions.
type Batch struct {
	Tokens []int32   // token ids; set exactly one of Tokens and Embd
	Embd   []float32 // embedding rows, row-major, Width floats each
	Width  int       // floats per Embd row: must equal Model.NEmbdInp
	Pos    int32     // position of the first row; row i is at Pos+i
	Seq    int32     // sequence the rows belong to
	// Logits marks the rows whose logits Decode keeps; nil keeps only the
	// last row's. Encode keeps every row's output and ignores it.
	Logits []bool

	// Several sequences (beam search), overriding Seq and Pos when set:
	// row i belongs to the sequences RowSeqs[i] (a decoder row to one, an
	// encoder row to every sequence whose decoder attends to it) and sits
	// at position RowPos[i].
	RowSeqs [][]int32
	RowPos  []int32
}

func (b *Batch) seqsOf(i int) []int32 {
	if b.RowSeqs != nil {
		return b.RowSeqs[i]
	}
	return []int32{b.Seq}
}

func (b *Batch) posOf(i int) int32 {
	if b.RowPos != nil {
		return b.RowPos[i]
	}
	return b.Pos + int32(i)
}

// TokenBatch is a batch of tokens at positions pos, pos+1, ... of sequence
// 0, keeping the logits of the last one.
func TokenBatch(tokens []int32, pos int32) Batch { return Batch{Tokens: tokens, Pos: pos} }

// EmbdBatch is a batch of embedding rows of the given width at positions
// pos, pos+1, ... of sequence 0.
func EmbdBatch(embd []float32, width int, pos int32) Batch {
	return Batch{Embd: embd, Width: width, Pos: pos}
}

// Rows is the number of rows in the batch.
func (b *Batch) Rows() int {
	if b.Embd != nil {
		if b.Width <= 0 {
			return 0
		}
		return len(b.Embd) / b.Width
	}
	return len(b.Tokens)
}

// check validates b against what llama.cpp accepts without aborting, for an
// Encode (maxRows = n_ubatch) or a Decode (maxRows = n_batch).
func (c *Context) check(op string, b *Batch, maxRows int, what string) (int, error) {
	switch {
	case b.Tokens != nil && b.Embd != nil:
		return 0, fmt.Errorf("%s: batch has both tokens and embeddings", op)
	case b.Tokens == nil && b.Embd == nil:
		return 0, fmt.Errorf("%s: empty batch", op)
	}
	n := b.Rows()
	if b.Embd != nil {
		if b.Width != c.nEmbdInp {
			return 0, fmt.Errorf("%s: embedding rows are %d wide, the model takes %d", op, b.Width, c.nEmbdInp)
		}
		if len(b.Embd) != n*b.Width {
			return 0, fmt.Errorf("%s: %d embedding floats is not a whole number of %d-wide rows", op, len(b.Embd), b.Width)
		}
		for i, v := range b.Embd {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return 0, fmt.Errorf("%s: embedding row %d holds %v", op, i/b.Width, v)
			}
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("%s: empty batch", op)
	}
	if n > maxRows {
		return 0, fmt.Errorf("%s: %d rows is more than the context's %s of %d", op, n, what, maxRows)
	}
	for i, t := range b.Tokens {
		if t < 0 || t >= c.model.nVocab {
			return 0, fmt.Errorf("%s: token %d (row %d) is outside the vocabulary (0..%d)", op, t, i, c.model.nVocab-1)
		}
	}
	if (b.RowSeqs != nil && len(b.RowSeqs) != n) || (b.RowPos != nil && len(b.RowPos) != n) {
		return 0, fmt.Errorf("%s: %d rows but %d sequence sets and %d positions", op, n, len(b.RowSeqs), len(b.RowPos))
	}
	for i := range n {
		seqs := b.seqsOf(i)
		if len(seqs) == 0 {
			return 0, fmt.Errorf("%s: row %d belongs to no sequence", op, i)
		}
		for _, s := range seqs {
			if s < 0 || int(s) >= c.nSeqMax {
				return 0, fmt.Errorf("%s: sequence %d is outside 0..%d", op, s, c.nSeqMax-1)
			}
		}
		if p := b.posOf(i); p < 0 {
			return 0, fmt.Errorf("%s: negative position %d", op, p)
		}
	}
	return n, nil
}

// checkContinues checks that the rows of every sequence in b continue it:
// consecutive positions from its last cached one + 1 (llama.cpp refuses
// anything else).
func (c *Context) checkContinues(b *Batch, n int) error {
	next := map[int32]int32{}
	for i := range n {
		p := b.posOf(i)
		for _, s := range b.seqsOf(i) {
			want, ok := next[s]
			if !ok {
				want = c.model.lib.c.llama_memory_seq_pos_max(c.mem, s) + 1
			}
			if p != want {
				return fmt.Errorf("decode: row %d of sequence %d is at position %d but the sequence continues at %d", i, s, p, want)
			}
			next[s] = p + 1
		}
	}
	return nil
}

// Encode runs the encoder of an encoder-decoder model (T5) over the batch;
// the decoder then attends to its output. At most NUbatch rows.
func (c *Context) Encode(b Batch) error {
	h := c.handle()
	if !c.model.HasEncoder() {
		return errors.New("encode: the model has no encoder")
	}
	n, err := c.check("encode", &b, min(c.nUbatch, c.nBatch), "n_ubatch")
	if err != nil {
		return err
	}
	out := make([]bool, n)
	for i := range out {
		out[i] = true
	}
	rc := c.run(c.model.lib.c.llama_encode, h, &b, n, out)
	c.lastRows, c.nOut = 0, 0 // the encoder leaves no logits
	if rc != 0 {
		return fmt.Errorf("%s", c.model.lib.withReason(fmt.Sprintf("encode of %d rows failed (llama_encode returned %d)", n, rc)))
	}
	return nil
}

// Decode runs the decoder over the batch, appending it to the KV cache of
// b.Seq; b.Pos must continue that sequence (MemorySeqPosMax+1) and every
// position must be below NCtx. At most NBatch rows.
func (c *Context) Decode(b Batch) error {
	h := c.handle()
	if !c.model.HasDecoder() {
		return errors.New("decode: the model has no decoder")
	}
	n, err := c.check("decode", &b, c.nBatch, "n_batch")
	if err != nil {
		return err
	}
	for i := range n {
		if p := b.posOf(i); int(p) >= c.nCtx {
			return fmt.Errorf("decode: position %d would run past the context size %d", p, c.nCtx)
		}
	}
	if c.mem != 0 {
		if b.RowSeqs == nil && b.RowPos == nil {
			if last := c.model.lib.c.llama_memory_seq_pos_max(c.mem, b.Seq); b.Pos != last+1 {
				return fmt.Errorf("decode: batch starts at position %d but sequence %d continues at %d", b.Pos, b.Seq, last+1)
			}
		} else if err := c.checkContinues(&b, n); err != nil {
			return err
		}
	}
	out := b.Logits
	if out == nil {
		out = make([]bool, n)
		out[n-1] = true
	}
	if len(out) != n {
		return fmt.Errorf("decode: %d logits flags for %d rows", len(out), n)
	}
	nOut := 0
	for _, o := range out {
		if o {
			nOut++
		}
	}
	if nOut > c.outputsMax {
		return fmt.Errorf("decode: %d rows want logits, the context keeps at most %d", nOut, c.outputsMax)
	}
	c.lastRows, c.nOut = 0, 0
	rc := c.run(c.model.lib.c.llama_decode, h, &b, n, out)
	switch {
	case rc == 0:
		c.lastRows, c.lastOut, c.nOut = n, append(c.lastOut[:0], out...), nOut
		return nil
	case rc == 1:
		return fmt.Errorf("decode: %w for %d more rows (context %d)", ErrKVFull, n, c.nCtx)
	case rc == 2:
		return errors.New("decode: aborted")
	}
	return fmt.Errorf("%s", c.model.lib.withReason(fmt.Sprintf("decode of %d rows failed (llama_decode returned %d)", n, rc)))
}

// run builds a llama_batch over Go memory, pinned for the call, and calls fn.
func (c *Context) run(fn func(uintptr, cBatch) int32, h uintptr, b *Batch, n int, out []bool) int32 {
	nIDs := 0
	for i := range n {
		nIDs += len(b.seqsOf(i))
	}
	c.pos = grow(c.pos, n)
	c.nSeqID = grow(c.nSeqID, n)
	c.seqID = grow(c.seqID, nIDs)
	c.logits = grow(c.logits, n)
	if cap(c.seqPtr) < n {
		c.seqPtr = make([]*int32, n)
	}
	c.seqPtr = c.seqPtr[:n]
	k := 0
	for i := range n {
		c.pos[i] = b.posOf(i)
		seqs := b.seqsOf(i)
		c.nSeqID[i] = int32(len(seqs))
		copy(c.seqID[k:], seqs)
		c.seqPtr[i] = &c.seqID[k]
		k += len(seqs)
		c.logits[i] = 0
		if out[i] {
			c.logits[i] = 1
		}
	}
	cb := cBatch{
		NTokens: int32(n),
		Pos:     &c.pos[0],
		NSeqID:  &c.nSeqID[0],
		SeqID:   &c.seqPtr[0],
		Logits:  &c.logits[0],
	}
	// C holds these pointers only during the call; pinning makes lending Go
	// memory that itself holds Go pointers (seqPtr) legal.
	var pin runtime.Pinner
	defer pin.Unpin()
	pin.Pin(&c.pos[0])
	pin.Pin(&c.nSeqID[0])
	pin.Pin(&c.seqID[0])
	pin.Pin(&c.seqPtr[0])
	pin.Pin(&c.logits[0])
	if b.Embd != nil {
		cb.Embd = &b.Embd[0]
		pin.Pin(cb.Embd)
	} else {
		cb.Token = &b.Tokens[0]
		pin.Pin(cb.Token)
	}
	return fn(h, cb)
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// Logits returns the logits of batch row i of the last Decode (negative i
// counts from the last output row, -1 being the last). The slice has NVocab
// floats and aliases llama.cpp's buffer: it is valid until the next Encode,
// Decode or Close.
func (c *Context) Logits(i int) ([]float32, error) {
	h := c.handle()
	if err := c.checkOutput(i); err != nil {
		return nil, err
	}
	p := c.model.lib.c.llama_get_logits_ith(h, int32(i))
	if p == nil {
		return nil, fmt.Errorf("%s", c.model.lib.withReason(fmt.Sprintf("no logits for row %d", i)))
	}
	return unsafe.Slice(p, c.model.nVocab), nil
}

func (c *Context) checkOutput(i int) error {
	switch {
	case c.nOut == 0:
		return errors.New("no logits: run Decode first")
	case i < 0 && -i > c.nOut:
		return fmt.Errorf("no output row %d: the last Decode kept %d", i, c.nOut)
	case i >= c.lastRows:
		return fmt.Errorf("no row %d: the last Decode had %d rows", i, c.lastRows)
	case i >= 0 && !c.lastOut[i]:
		return fmt.Errorf("row %d of the last Decode did not ask for logits", i)
	}
	return nil
}

// MemoryClear empties the KV cache (and, with data, zeroes its buffers).
func (c *Context) MemoryClear(data bool) {
	c.handle()
	if c.mem != 0 {
		c.model.lib.c.llama_memory_clear(c.mem, data)
	}
	c.lastRows, c.nOut = 0, 0
}

// MemorySeqRm removes the positions [p0, p1) of sequence seq from the KV
// cache (p0 < 0: from 0, p1 < 0: to the end). It reports false when the
// cache cannot drop a part of a sequence; removing a whole one never fails.
// seq < 0 matches every sequence.
func (c *Context) MemorySeqRm(seq, p0, p1 int32) bool {
	c.handle()
	if int(seq) >= c.nSeqMax {
		return true // nothing is stored there
	}
	if c.mem == 0 {
		return true
	}
	return c.model.lib.c.llama_memory_seq_rm(c.mem, seq, p0, p1)
}

// MemorySeqPosMax is the last position of sequence seq in the KV cache, -1
// when it is empty.
func (c *Context) MemorySeqPosMax(seq int32) int32 {
	c.handle()
	if c.mem == 0 || seq < 0 || int(seq) >= c.nSeqMax {
		return -1
	}
	return c.model.lib.c.llama_memory_seq_pos_max(c.mem, seq)
}

// ErrKVFull is returned by Decode when the KV cache has no free cells for
// the batch (llama_decode's 1): several sequences used up what they share.
var ErrKVFull = errors.New("no room in the KV cache")

// MaxSeqs is the most sequences a context may hold (LLAMA_MAX_SEQ).
const MaxSeqs = 256

// NSeqMax is the number of sequences the context holds (n_seq_max).
func (c *Context) NSeqMax() int { return c.nSeqMax }

// MemorySeqCp makes sequence dst share sequence src's cached positions
// [p0, p1) (p0 < 0: from 0, p1 < 0: to the end). With a unified KV cache
// the cells are shared, not copied.
func (c *Context) MemorySeqCp(src, dst, p0, p1 int32) error {
	c.handle()
	if src < 0 || dst < 0 || int(src) >= c.nSeqMax || int(dst) >= c.nSeqMax {
		return fmt.Errorf("sequence copy %d -> %d: sequences are 0..%d", src, dst, c.nSeqMax-1)
	}
	if c.mem != 0 && src != dst {
		c.model.lib.c.llama_memory_seq_cp(c.mem, src, dst, p0, p1)
	}
	return nil
}

// MemorySeqKeep drops every sequence but seq from the KV cache.
func (c *Context) MemorySeqKeep(seq int32) error {
	c.handle()
	if seq < 0 || int(seq) >= c.nSeqMax {
		return fmt.Errorf("keep sequence %d: sequences are 0..%d", seq, c.nSeqMax-1)
	}
	if c.mem != 0 {
		c.model.lib.c.llama_memory_seq_keep(c.mem, seq)
	}
	return nil
}
