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

// Stream receives an answer while it is decoded; nil fields discard.
type Stream struct {
	// Text gets greedy decoding's and sampling's answer piece by piece, as
	// it becomes complete UTF-8 (never part of a character), without the
	// leading space SentencePiece puts on the first token: the pieces
	// make Result.Text.
	Text func(piece string)
	// Best gets beam search's best hypothesis (running or finished) after
	// each step, whole: each call replaces the text of the one before. The
	// answer, Result.Text, is the best hypothesis once the search ends.
	Best func(text string)
}

// Options configure Run and Decode.
type Options struct {
	Params // the decoding: greedy, sampling or beam search, MaxTokens, stop tokens

	Stream Stream
	// OnStep, if set, sees each step of greedy decoding and sampling (not
	// beam search): the raw logits (valid only during the call) and the
	// token chosen from them, before it is fed back; an end token is seen
	// too.
	OnStep func(step int, logits []float32, id int32)
	// OnPrompt, if set, receives the logits of every row of a decoder-only
	// model's prompt, soft tokens included, pos counting from the first
	// soft token (the whole prompt is evaluated, nothing reused from the KV
	// cache). The context must be made with lm.ContextOptions.AllLogits.
	OnPrompt func(pos int, logits []float32)
}

// Result is a finished (or stopped) answer.
type Result struct {
	// Sequence is the answer: the best sequence. Greedy decoding and
	// sampling fed its tokens to the context.
	Sequence
	// Sequences are the sequences returned, best first: beam search's
	// NumReturnSequences best (Sequences[0] is the answer), else the
	// answer alone.
	Sequences []Sequence
	Stop      lm.StopReason
	// PromptRows are the rows Prefill passed to the model (tokens, soft
	// tokens, encoder rows): fewer than the prompt's when the KV cache held
	// its beginning.
	PromptRows int
	Prefill    time.Duration
	// FirstToken is the time from the start of decoding to the first step
	// done; Decode the whole decoding.
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
	// pending is the length of the last answer when the cache does not
	// hold it (beam search): the next prompt evaluates it.
	pending int
	stops   []int32 // the model's end tokens, found once
	tr      tracer  // the golden tests' view of each step
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

// Used is the number of context positions the last prompt and answer
// fill: the KV cache's (decoder-only; a beam search answer counted though
// the next prompt evaluates it) or the encoder's rows (T5).
func (d *Driver) Used() int {
	if d.info.EncoderDecoder {
		return d.encRows
	}
	return d.cx.Pos() + d.pending
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
	d.pending = 0
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
		if pa, ok := d.cx.(lm.PromptAppender); ok && nSoft > 0 && len(ids) > 0 && len(ids) <= prefillChunk {
			// A new image's prompt in one pass: the weights are read once.
			if err := pa.AppendPrompt(p.Soft, nSoft, ids, all); err != nil {
				return err
			}
			if all {
				keep(0, nSoft+len(ids))
			}
			d.soft = append(make([]float32, 0, len(p.Soft)), p.Soft...)
			d.ids = append(d.ids, ids...)
			return nil
		}
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

// Decode generates the answer after the prompt Prefill put in the context,
// with o.Params: greedy decoding, sampling or beam search (which needs a
// context made with lm.ContextOptions.NSeq >= NumBeams), transformers'
// processors seeing the prompt's text tokens (never the soft tokens; T5:
// the decoder start token) and the new ones. At most o.MaxTokens tokens,
// fewer when the context has no room for them (then Stop is
// lm.StopContextFull and the error lm.ErrContextFull). It stops at an end
// token (o.EOS, else the model's: Model.IsEOG), which is neither returned
// nor fed, or when ctx is cancelled (checked between steps; ctx.Err() is
// returned with the answer so far, beam search's best hypothesis).
//
// Greedy decoding and sampling feed each token (the returned ids are the
// tokens fed, even with an error). Beam search leaves the context holding
// the prompt: the next prompt, which repeats the answer, evaluates it.
func (d *Driver) Decode(ctx context.Context, o Options) (Result, error) {
	start := time.Now()
	var r Result
	p := o.Params
	if err := p.Validate(); err != nil {
		return r, err
	}
	beams := p.Beams() > 1
	if _, ok := d.cx.(lm.MultiSeq); beams && !ok {
		return r, fmt.Errorf("generate: %d beams: this backend's contexts hold one sequence", p.Beams())
	}
	base := d.cx.Pos()
	room := max(0, d.cx.NCtx()-base)
	short := p.MaxTokens > room
	p.MaxTokens = min(p.MaxTokens, room)
	hist := d.prompt
	if d.info.EncoderDecoder {
		hist = []int32{d.info.DecoderStart}
	}
	eos := p.StopTokens(nil)
	if len(eos) == 0 {
		eos = d.modelStops()
	}

	s := &ctxSeqs{d: d, text: answerText{on: o.Stream.Text}}
	last := ""
	onStep := func(pg progress) {
		if pg.step == 1 {
			r.FirstToken = time.Since(start)
		}
		switch {
		case !beams && o.OnStep != nil:
			o.OnStep(pg.step-1, pg.logits, pg.token)
		case beams && o.Stream.Best != nil:
			if t := d.text(pg.best); t != last {
				last = t
				o.Stream.Best(t)
			}
		}
	}
	dec, err := decode(ctx, s, p, hist, eos, onStep, d.tr)
	r.Stop, r.Sequences = dec.stop, dec.seqs
	if len(r.Sequences) == 0 {
		r.Sequences = []Sequence{{End: -1}}
	}
	for i := range r.Sequences {
		d.nameTokens(r.Sequences[i].Tokens)
	}
	if beams {
		for i := range r.Sequences {
			r.Sequences[i].Text = d.text(r.Sequences[i].IDs)
		}
		if rerr := d.afterBeams(base, len(r.Sequences[0].IDs)); rerr != nil && err == nil {
			err = rerr
		}
	} else {
		r.Sequences[0].Text = s.text.flush()
		if !d.info.EncoderDecoder {
			d.ids = append(d.ids, r.Sequences[0].IDs...)
			d.sync(len(d.soft) / max(1, d.info.NEmbd))
		}
	}
	r.Sequence = r.Sequences[0]
	if short && r.Stop == lm.StopMaxTokens {
		r.Stop = lm.StopContextFull
	}
	if r.Stop == lm.StopContextFull && err == nil {
		err = lm.ErrContextFull
	}
	r.Decode = time.Since(start)
	return r, err
}

// afterBeams brings the context back to one sequence holding the prompt
// (base positions); the answer (n tokens) is evaluated by the next prompt.
func (d *Driver) afterBeams(base, n int) error {
	ms := d.cx.(lm.MultiSeq)
	err := ms.Reorder([]int{0})
	if err == nil && d.cx.Pos() > base {
		err = d.cx.Truncate(base)
	}
	if err != nil {
		d.Reset()
		return err
	}
	if !d.info.EncoderDecoder {
		d.pending = n
		d.sync(len(d.soft) / max(1, d.info.NEmbd))
	}
	return nil
}

// modelStops are the model's end-of-generation tokens (Model.IsEOG).
func (d *Driver) modelStops() []int32 {
	if d.stops == nil {
		d.stops = []int32{}
		for id := range int32(d.info.NVocab) {
			if d.m.IsEOG(id) {
				d.stops = append(d.stops, id)
			}
		}
	}
	return d.stops
}

// nameTokens fills in the text of each token and alternative.
func (d *Driver) nameTokens(toks []TokenProb) {
	for i := range toks {
		t := &toks[i]
		t.Text = string(d.m.TokenBytes(t.ID))
		top := make([]TokenAlt, len(t.Top)) // beams share a step's alternatives
		for j, a := range t.Top {
			a.Text = string(d.m.TokenBytes(a.ID))
			top[j] = a
		}
		t.Top = top
	}
}

// text is the answer's text of ids, as Stream.Text would have made it.
func (d *Driver) text(ids []int32) string {
	var a answerText
	for _, id := range ids {
		a.add(d.m.TokenBytes(id))
	}
	return a.flush()
}

// answerText builds an answer's text from its tokens' bytes: whole UTF-8
// characters, without the leading space SentencePiece puts on the first
// token; on, if set, receives each piece.
type answerText struct {
	dec     tokenizer.StreamDecoder
	b       []byte
	started bool
	on      func(string)
}

func (a *answerText) add(piece []byte) { a.emit(a.dec.Write(piece)) }

// flush ends the text (an unfinished character becomes U+FFFD) and
// returns it.
func (a *answerText) flush() string {
	a.emit(a.dec.Flush())
	return string(a.b)
}

func (a *answerText) emit(t string) {
	if !a.started {
		t = strings.TrimPrefix(t, " ")
	}
	if t == "" {
		return
	}
	a.started = true
	a.b = append(a.b, t...)
	if a.on != nil {
		a.on(t)
	}
}

// ctxSeqs is the driver's context as the decoders drive it: one sequence
// (AppendTokens; the answer's text streamed as tokens are fed) or, once
// beam search forks, several (lm.MultiSeq).
type ctxSeqs struct {
	d    *Driver
	text answerText
}

func (s *ctxSeqs) multi() (lm.MultiSeq, bool) {
	ms, ok := s.d.cx.(lm.MultiSeq)
	return ms, ok && ms.Seqs() > 1
}

func (s *ctxSeqs) Logits(i int) []float32 {
	var l []float32
	if _, ok := s.multi(); ok {
		l = s.d.cx.Logits(i)
	} else if i == 0 {
		l = s.d.cx.Logits(-1)
	}
	if len(l) != s.d.info.NVocab {
		return nil
	}
	return l
}

func (s *ctxSeqs) Step(ids []int32) error {
	for _, id := range ids {
		if id < 0 || int(id) >= s.d.info.NVocab {
			return fmt.Errorf("generate: token %d is outside the vocabulary of %d", id, s.d.info.NVocab)
		}
	}
	if ms, ok := s.multi(); ok {
		return ms.AppendEach(ids)
	}
	if len(ids) != 1 {
		return fmt.Errorf("generate: %d tokens for a context with one sequence", len(ids))
	}
	if err := s.d.cx.AppendTokens(ids, false); err != nil {
		return err
	}
	s.text.add(s.d.m.TokenBytes(ids[0]))
	return nil
}

func (s *ctxSeqs) Reorder(parents []int) error {
	return s.d.cx.(lm.MultiSeq).Reorder(parents)
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
