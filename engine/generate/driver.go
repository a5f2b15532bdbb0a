package generate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/engine/tokenizer"
)

// Prompt is what a language model reads before the answer: the image's
// soft tokens (rows of embeddings made by the Q-Former and the projection),
// then the prompt text's tokens.
type Prompt struct {
	Soft  []float32 // NSoft rows of lm.Info.NEmbd floats
	NSoft int
	// IDs are the prompt text's tokens, with BOS/EOS as the model's
	// tokenizer adds them (Model.Tokenize(text, true)): BLIP-2 puts the
	// BOS after the soft tokens, not before them.
	IDs []int32
}

// Rows is the number of input rows: soft tokens and text tokens.
func (p Prompt) Rows() int { return p.NSoft + len(p.IDs) }

// Need says how many context positions an answer to a prompt of rows
// input rows takes: min to read the prompt and choose the first token,
// full to generate maxTokens tokens. A decoder-only model holds prompt and
// answer in one context; an encoder-decoder model (T5) holds the prompt in
// its encoder and the decoder start token and answer in its decoder.
func Need(info lm.Info, rows, maxTokens int) (min, full int) {
	if info.EncoderDecoder {
		return rows, max(rows, maxTokens+1)
	}
	return rows + 1, rows + max(maxTokens, 1)
}

// ErrPromptTooLong is returned when the prompt does not fit the context.
var ErrPromptTooLong = errors.New("the prompt does not fit the context")

// Decoder chooses the next tokens: greedy decoding and sampling (Sampler)
// follow one sequence, beam search several. The driver calls Step once
// per generated position.
type Decoder interface {
	// Step gets the logits of the running sequences (logits[i] is sequence
	// i's, NVocab floats, valid during the call only, not to be modified)
	// and returns the sequences of the next step: each continues the
	// running sequence Parent with token ID.
	Step(logits [][]float32) ([]Next, error)
}

// Next is one sequence of the next step: running sequence Parent followed
// by token ID.
type Next struct {
	Parent int
	ID     int32
}

// Options configure Run and Decode.
type Options struct {
	Params // MaxTokens, stop tokens and the decoder's settings

	// OnText receives the answer's text as it becomes complete UTF-8 (never
	// part of a character), without the leading space SentencePiece puts on
	// the first token; nil discards it.
	OnText func(text string)
	// OnStep, if set, sees each step's logits (valid only during the call)
	// and the token chosen from them, before it is fed back; an end token
	// is seen too.
	OnStep func(step int, logits []float32, id int32)
	// OnPrompt, if set, receives the logits of every row of a decoder-only
	// model's prompt, soft tokens included, pos counting from the first
	// soft token (the whole prompt is evaluated, nothing reused from the KV
	// cache). The context must be made with lm.ContextOptions.AllLogits.
	OnPrompt func(pos int, logits []float32)
	// Decoder, if set, replaces the one Params make (a Sampler).
	Decoder Decoder
}

// Result is a finished (or stopped) answer.
type Result struct {
	IDs  []int32 // the tokens generated and fed to the context (no end token)
	Text string  // their text, as passed to OnText
	Stop lm.StopReason
	// PromptRows are the rows Prefill passed to the model (tokens, soft
	// tokens, encoder rows): fewer than the prompt's when the KV cache held
	// its beginning.
	PromptRows int
	Prefill    time.Duration
	// FirstToken is the time from the start of decoding to the first token
	// chosen; Decode the whole decoding.
	FirstToken, Decode time.Duration
}

// TokensPerSecond is the generation speed after the first token (0 when
// fewer than two tokens).
func (r Result) TokensPerSecond() float64 {
	d := r.Decode - r.FirstToken
	if len(r.IDs) < 2 || d <= 0 {
		return 0
	}
	return float64(len(r.IDs)-1) / d.Seconds()
}

// Driver is blip2chat's one inference driver: soft tokens and prompt in,
// first logits, then the answer. It runs on one lm.Context and remembers
// what the context holds, so that the next prompt of a conversation (a
// decoder-only model's) evaluates only the rows after what it shares with
// the cache. It is not safe for concurrent use.
type Driver struct {
	m    lm.Model
	info lm.Info
	cx   lm.Context

	// What a decoder-only KV cache holds: soft tokens (nil: unknown, start
	// over), then tokens (the last prompt and its answer).
	soft    []float32
	ids     []int32
	encRows int     // T5: rows of the last Encode
	prompt  []int32 // the last prompt's tokens, for the repetition penalty
	stops   []int32 // the model's end tokens, found once (minNewTokens)
	buf     []float32
}

// New makes a driver on context cx of model m. The caller keeps owning cx.
func New(m lm.Model, cx lm.Context) *Driver {
	return &Driver{m: m, info: m.Info(), cx: cx}
}

// Context is the language model context the driver runs on.
func (d *Driver) Context() lm.Context { return d.cx }

// Reset forgets what the context holds: the next Prefill evaluates the
// whole prompt.
func (d *Driver) Reset() { d.soft, d.ids = nil, nil }

// Used is the number of context positions the last answer fills: the KV
// cache's (decoder-only) or the encoder's rows (T5).
func (d *Driver) Used() int {
	if d.info.EncoderDecoder {
		return d.encRows
	}
	return d.cx.Pos()
}

// Run answers prompt p: Prefill, then Decode. A cancelled ctx stops it
// with Result.Stop lm.StopCancelled and ctx's error, keeping what was
// generated; a full context stops it with lm.StopContextFull and
// lm.ErrContextFull.
func (d *Driver) Run(ctx context.Context, p Prompt, o Options) (Result, error) {
	before := d.cx.Stats()
	start := time.Now()
	err := d.Prefill(ctx, p, o.OnPrompt)
	after := d.cx.Stats()
	var r Result
	r.Prefill = time.Since(start)
	r.PromptRows = after.TokensIn + after.EmbeddingRowsIn + after.EncoderRowsIn -
		before.TokensIn - before.EmbeddingRowsIn - before.EncoderRowsIn
	if err != nil {
		if ctx.Err() != nil {
			r.Stop = lm.StopCancelled
			return r, ctx.Err()
		}
		return r, err
	}
	dr, err := d.Decode(ctx, o)
	dr.PromptRows, dr.Prefill = r.PromptRows, r.Prefill
	return dr, err
}

// prefillChunk is the most prompt tokens evaluated between two checks for
// cancellation.
const prefillChunk = 256

// Prefill puts prompt p into the context and leaves the logits of its last
// position. A decoder-only model's KV cache keeps what it shares with the
// previous prompt and answer; T5 encodes [soft tokens ; embeddings of the
// prompt tokens] and starts its decoder from Info.DecoderStart. onPrompt
// (nil: none) sees the logits of every row evaluated (Options.OnPrompt).
func (d *Driver) Prefill(ctx context.Context, p Prompt, onPrompt func(pos int, logits []float32)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.NSoft < 0 || len(p.Soft) != p.NSoft*d.info.NEmbd {
		return fmt.Errorf("prompt: %d floats are not %d soft tokens of %d", len(p.Soft), p.NSoft, d.info.NEmbd)
	}
	if p.Rows() == 0 {
		return errors.New("prompt: no soft tokens and no text tokens")
	}
	if min, _ := Need(d.info, p.Rows(), 0); min > d.cx.NCtx() {
		return fmt.Errorf("%w: %d soft tokens and %d prompt tokens, the context holds %d", ErrPromptTooLong, p.NSoft, len(p.IDs), d.cx.NCtx())
	}
	d.prompt = append(d.prompt[:0], p.IDs...)
	if d.info.EncoderDecoder {
		return d.encode(p)
	}
	err := d.prefill(ctx, p, onPrompt)
	if err != nil {
		d.sync(p.NSoft)
	}
	return err
}

// encode runs T5's encoder over [soft ; embeddings of ids] and starts the
// decoder.
func (d *Driver) encode(p Prompt) error {
	emb, err := d.m.TokenEmbeddings(p.IDs)
	if err != nil {
		return err
	}
	rows := append(append(make([]float32, 0, len(p.Soft)+len(emb)), p.Soft...), emb...)
	d.encRows = 0
	if err := d.cx.Encode(rows, p.Rows()); err != nil {
		return err
	}
	d.encRows = p.Rows()
	return d.cx.AppendTokens([]int32{d.info.DecoderStart}, false)
}

// prefill brings a decoder-only KV cache to [soft ; ids], evaluating only
// what differs from what it holds.
func (d *Driver) prefill(ctx context.Context, p Prompt, onPrompt func(pos int, logits []float32)) error {
	all := onPrompt != nil
	keep := func(from, n int) {
		for i := range n {
			onPrompt(from+i, d.cx.Logits(i))
		}
	}
	nSoft, ids := p.NSoft, p.IDs
	if d.soft == nil || !sameBits(d.soft, p.Soft) || d.cx.Pos() != nSoft+len(d.ids) || all {
		if err := d.cx.Truncate(0); err != nil {
			return err
		}
		d.soft, d.ids = nil, nil
		if nSoft > 0 {
			if err := d.cx.AppendEmbeddings(p.Soft, nSoft, all); err != nil {
				return err
			}
			if all {
				keep(0, nSoft)
			}
		}
		d.soft = append(make([]float32, 0, len(p.Soft)), p.Soft...)
		if len(ids) == 0 {
			return nil // the last soft token's logits start the answer
		}
	} else if len(ids) == 0 {
		// Evaluate the last soft token again for its logits.
		if err := d.cx.Truncate(nSoft - 1); err != nil {
			return err
		}
		d.ids = nil
		w := d.info.NEmbd
		return d.cx.AppendEmbeddings(p.Soft[(nSoft-1)*w:], 1, false)
	}
	k := 0
	for k < len(d.ids) && k < len(ids) && d.ids[k] == ids[k] {
		k++
	}
	k = min(k, len(ids)-1) // the last prompt token is evaluated again for its logits
	if err := d.cx.Truncate(nSoft + k); err != nil {
		return err
	}
	d.ids = d.ids[:k]
	for k < len(ids) {
		if err := ctx.Err(); err != nil {
			return err
		}
		j := min(k+prefillChunk, len(ids))
		if err := d.cx.AppendTokens(ids[k:j], all); err != nil {
			return err
		}
		if all {
			keep(nSoft+k, j-k)
		}
		d.ids = append(d.ids, ids[k:j]...)
		k = j
	}
	return nil
}

// sync makes the bookkeeping agree with the context after an error.
func (d *Driver) sync(nSoft int) {
	switch n := d.cx.Pos() - nSoft; {
	case n < 0 || d.soft == nil:
		d.soft, d.ids = nil, nil
	case n < len(d.ids):
		d.ids = d.ids[:n]
	case n > len(d.ids):
		d.soft, d.ids = nil, nil // unknown content: start over next time
	}
}

// Decode generates the answer after the prompt Prefill put in the context:
// at most o.MaxTokens tokens, chosen by o.Decoder (default: a Sampler with
// o.Params whose repetition penalty has seen the prompt's text tokens,
// never the soft tokens), each fed back. It stops at an end token (o.EOS,
// or the model's: Model.IsEOG), which is neither returned nor fed, when
// the context is full (lm.ErrContextFull) or when ctx is cancelled
// (checked between tokens; ctx.Err() is returned). The ids returned are
// always the tokens fed, even with an error.
func (d *Driver) Decode(ctx context.Context, o Options) (Result, error) {
	start := time.Now()
	var r Result
	var dec tokenizer.StreamDecoder
	var text []byte
	first := true
	emit := func(t string) {
		if first {
			t = strings.TrimPrefix(t, " ")
		}
		if t == "" {
			return
		}
		first = false
		text = append(text, t...)
		if o.OnText != nil {
			o.OnText(t)
		}
	}
	finish := func(stop lm.StopReason, err error) (Result, error) {
		emit(dec.Flush())
		r.Text, r.Stop, r.Decode = string(text), stop, time.Since(start)
		if !d.info.EncoderDecoder {
			d.ids = append(d.ids, r.IDs...)
			d.sync(len(d.soft) / max(1, d.info.NEmbd))
		}
		return r, err
	}
	if o.MaxTokens <= 0 {
		return finish(lm.StopMaxTokens, nil)
	}
	decoder := o.Decoder
	if decoder == nil {
		s, err := NewSampler(o.Params, d.info.NVocab)
		if err != nil {
			return finish(lm.StopNone, err)
		}
		for _, id := range d.prompt {
			s.Accept(id)
		}
		decoder = s
	}
	rows := make([][]float32, 1)
	for step := 0; ; step++ {
		if err := ctx.Err(); err != nil {
			return finish(lm.StopCancelled, err)
		}
		logits := d.cx.Logits(-1)
		if len(logits) != d.info.NVocab {
			return finish(lm.StopNone, fmt.Errorf("generate: step %d: %d logits, want %d (none kept?)", step, len(logits), d.info.NVocab))
		}
		rows[0] = d.suppressStops(logits, o, step)
		next, err := decoder.Step(rows)
		if err != nil {
			return finish(lm.StopNone, err)
		}
		if step == 0 {
			r.FirstToken = time.Since(start)
		}
		if len(next) == 0 {
			return finish(lm.StopEOG, nil)
		}
		if len(next) != 1 || next[0].Parent != 0 {
			return finish(lm.StopNone, fmt.Errorf("generate: the decoder continues %d sequences; this context runs one", len(next)))
		}
		id := next[0].ID
		if id < 0 || int(id) >= d.info.NVocab {
			return finish(lm.StopNone, fmt.Errorf("generate: the decoder chose token %d, outside the vocabulary of %d", id, d.info.NVocab))
		}
		if o.OnStep != nil {
			o.OnStep(step, logits, id)
		}
		if d.isStop(id, o.EOS) {
			return finish(lm.StopEOG, nil)
		}
		if d.cx.Pos() >= d.cx.NCtx() {
			return finish(lm.StopContextFull, lm.ErrContextFull)
		}
		if err := d.cx.AppendTokens([]int32{id}, false); err != nil {
			if errors.Is(err, lm.ErrContextFull) {
				return finish(lm.StopContextFull, err)
			}
			return finish(lm.StopNone, err)
		}
		r.IDs = append(r.IDs, id)
		emit(dec.Write(d.m.TokenBytes(id)))
		if len(r.IDs) >= o.MaxTokens {
			return finish(lm.StopMaxTokens, nil)
		}
	}
}

// isStop reports whether id ends the answer: one of eos when given, else
// an end-of-generation token of the model.
func (d *Driver) isStop(id int32, eos []int32) bool {
	if len(eos) > 0 {
		for _, e := range eos {
			if id == e {
				return true
			}
		}
		return false
	}
	return d.m.IsEOG(id)
}

// suppressStops returns logits with the end tokens at -inf while fewer
// than o.MinNewTokens tokens exist (transformers' min_new_tokens), else
// logits as they are.
func (d *Driver) suppressStops(logits []float32, o Options, step int) []float32 {
	if step >= o.MinNewTokens {
		return logits
	}
	stops := o.EOS
	if len(stops) == 0 {
		if d.stops == nil {
			d.stops = []int32{}
			for id := range int32(d.info.NVocab) {
				if d.m.IsEOG(id) {
					d.stops = append(d.stops, id)
				}
			}
		}
		stops = d.stops
	}
	d.buf = append(d.buf[:0], logits...)
	for _, id := range stops {
		if id >= 0 && int(id) < len(d.buf) {
			d.buf[id] = float32(math.Inf(-1))
		}
	}
	return d.buf
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
