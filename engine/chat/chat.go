// Package chat holds a conversation about one image with a BLIP-2-family
// model: the soft tokens the vision side makes from the image, the turns so
// far, the prompt template, and the language model's context.
//
// Each Ask builds the prompt from the template (earlier turns, then the new
// question), and
//
//   - on a decoder-only model (OPT, LLaMA) keeps the KV cache between turns:
//     the new prompt's tokens are compared with what the cache holds and
//     only the tokens after the common prefix are evaluated, so a second
//     turn costs its own tokens, not the whole conversation;
//   - on T5 re-encodes [soft tokens ; prompt] each turn;
//   - on InstructBLIP recomputes the soft tokens for each new instruction
//     (its Q-Former reads it), reusing the image's ViT features, which are
//     cached per image;
//   - when the prompt plus MaxTokens would not fit the context, drops the
//     oldest turns from the prompt (never the soft tokens) and reports how
//     many in Turn.Dropped.
//
// A Chat is not safe for concurrent use: run Ask in one goroutine and
// cancel its context to stop it; what was generated so far is kept as a
// turn marked stopped.
package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"image"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/blip2chat/blip2chat/engine/generate"
	"github.com/blip2chat/blip2chat/engine/imageprep"
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/engine/vision"
)

// Settings configure a Chat: how answers are decoded (generate.Params,
// MaxTokens included) and the prompt and context they are decoded in. They
// are the settings a session file records, under the same JSON names it
// has always used (temperature, top_p, top_k, max_tokens, seed, template,
// threads); NCtx and Exact are load options and are not recorded. Start
// from DefaultSettings (or engine/model's Model.DefaultSettings).
type Settings struct {
	generate.Params
	// Template is the format of the current turn, with {prompt} where the
	// question goes ("Question: {prompt} Answer:"); the format of earlier
	// turns follows from it (TemplateFor). "": the model family's.
	Template string `json:"template"`
	Threads  int    `json:"threads"` // 0: lm.DefaultThreads()
	NCtx     int    `json:"-"`       // context size; 0: the model's default (lm.Info.NCtx)
	Exact    bool   `json:"-"`       // flash attention off, f32 KV cache (see lm.ContextOptions)
}

// DefaultSettings are transformers' generate() defaults (greedy, no
// penalty, DefaultMaxTokens), the family's template, default threads and
// context.
func DefaultSettings() Settings {
	return Settings{Params: generate.DefaultParams()}
}

// DefaultMaxTokens is the answer length limit of DefaultSettings.
const DefaultMaxTokens = 128

// UnmarshalJSON reads settings over DefaultSettings, so that a field an
// older session file lacks keeps its default (repetition_penalty 1, not 0).
func (s *Settings) UnmarshalJSON(b []byte) error {
	type plain Settings // without this method
	p := plain(DefaultSettings())
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*s = Settings(p)
	return nil
}

// Timings of one turn.
type Timings struct {
	Vision        time.Duration // soft tokens for this turn (InstructBLIP's Q-Former and projection)
	Prefill       time.Duration // evaluating the prompt
	PrefillTokens int           // prompt rows passed to the model this turn (tokens, soft tokens)
	FirstToken    time.Duration // from Ask to the first generated token
	Generate      time.Duration // sampling and evaluating the answer
	Tokens        int           // tokens generated
}

// TokensPerSecond is the generation speed (0 before any token).
func (t Timings) TokensPerSecond() float64 {
	if t.Tokens == 0 || t.Generate <= 0 {
		return 0
	}
	return float64(t.Tokens) / t.Generate.Seconds()
}

// Turn is one question and its answer.
type Turn struct {
	Question string
	Answer   string // the generated text, without the leading space SentencePiece puts on the first token
	// Prompt is the text after the soft tokens and PromptIDs its tokens
	// (with BOS/EOS as the model's tokenizer adds them).
	Prompt    string
	PromptIDs []int32
	IDs       []int32 // the generated tokens (no end-of-generation token)
	Stop      lm.StopReason
	// Dropped counts the earlier turns left out of the prompt, from this
	// turn on, so that it fits the context.
	Dropped int
	Timings Timings
}

// Stopped reports whether the answer was cut short by the user or by a
// full context (not by the model or by MaxTokens).
func (t Turn) Stopped() bool { return t.Stop == lm.StopCancelled || t.Stop == lm.StopContextFull }

// Usage is how much of the context the conversation fills.
type Usage struct {
	Used, Total int // positions: soft tokens, prompt and answers
}

// Errors of Ask.
var (
	ErrNoImage       = errors.New("no image: set one first")
	ErrPromptTooLong = errors.New("the prompt does not fit the context")
)

// Chat is one conversation.
type Chat struct {
	vis  *vision.Model // nil: soft tokens come from SetSoftTokens only
	lm   lm.Model
	info lm.Info
	s    Settings

	tmpl Template   // the full template s.Template stands for
	ctx  lm.Context // made on first use

	// the image
	imageKey  string
	feat      *vision.ImageFeatures
	featCache []cachedFeatures
	soft      []float32 // BLIP-2: per image; InstructBLIP: for softInstr
	softInstr string
	softN     int
	fixedSoft bool // set by SetSoftTokens
	imageTime time.Duration

	turns []Turn
	first int // first turn still in the prompt

	// what the decoder-only KV cache holds after the soft tokens
	kvSoft   []float32
	kvTokens []int32
	encRows  int // T5: rows of the last encode
}

type cachedFeatures struct {
	key  string
	feat *vision.ImageFeatures
	time time.Duration
}

// featCacheSize is how many images' ViT features a Chat keeps.
const featCacheSize = 4

// New makes a conversation over a vision model (nil when the soft tokens
// are given with SetSoftTokens) and a language model. It does not own
// them: close them after the Chat.
func New(v *vision.Model, m lm.Model, s Settings) (*Chat, error) {
	c := &Chat{vis: v, lm: m, info: m.Info()}
	if v != nil && v.Info().ProjectionSize != c.info.NEmbd {
		return nil, fmt.Errorf("the vision model projects to %d-wide soft tokens, the language model takes %d", v.Info().ProjectionSize, c.info.NEmbd)
	}
	if err := c.SetSettings(s); err != nil {
		return nil, err
	}
	return c, nil
}

// Close frees the language model context.
func (c *Chat) Close() error {
	c.dropContext()
	return nil
}

func (c *Chat) dropContext() {
	if c.ctx != nil {
		c.ctx.Close()
		c.ctx = nil
	}
	c.kvSoft, c.kvTokens, c.encRows = nil, nil, 0
}

// Settings returns the settings in use, defaults filled in.
func (c *Chat) Settings() Settings { return c.s }

// SetSettings changes the settings; a new context size, thread count or
// Exact makes a new context (the next turn evaluates the whole prompt).
func (c *Chat) SetSettings(s Settings) error {
	if err := s.Params.Validate(); err != nil {
		return err
	}
	family, format := "blip-2", ""
	if c.vis != nil {
		family, format = c.vis.Info().Family, c.vis.Info().PromptFormat
	}
	if s.Template != "" {
		format = s.Template
	}
	tmpl := TemplateFor(family, format)
	if err := tmpl.Validate(); err != nil {
		return err
	}
	s.Template = tmpl.Turn
	if s.Threads <= 0 {
		s.Threads = lm.DefaultThreads()
	}
	if s.NCtx < 0 {
		return fmt.Errorf("context size %d is negative", s.NCtx)
	}
	if s.NCtx == 0 {
		s.NCtx = c.info.NCtx
	}
	if s.NCtx != c.s.NCtx || s.Threads != c.s.Threads || s.Exact != c.s.Exact {
		c.dropContext()
	}
	c.s, c.tmpl = s, tmpl
	return nil
}

// Template returns the prompt template in use.
func (c *Chat) Template() Template { return c.tmpl }

// Turns returns the conversation so far (the caller must not modify it).
func (c *Chat) Turns() []Turn { return c.turns }

// InContext is the index of the first turn still in the prompt: earlier
// ones were dropped to fit the context.
func (c *Chat) InContext() int { return c.first }

// Reset forgets the conversation, keeping the image.
func (c *Chat) Reset() {
	c.turns, c.first = nil, 0
}

// ImageTime is how long the last SetImage took (preparing the image, the
// ViT, and for BLIP-2 the Q-Former and projection); the ViT is skipped
// when the features came from the cache.
func (c *Chat) ImageTime() time.Duration { return c.imageTime }

// SetImage starts a new conversation about the image file at path. The
// image's ViT features are cached, so going back to an earlier image is
// quick.
func (c *Chat) SetImage(path string) error {
	return c.SetImageContext(context.Background(), path)
}

// SetImageContext is SetImage that stops when ctx is done: between the
// stages of preparing the image and between the layers of the ViT and the
// Q-Former. It then returns ctx's error and the chat keeps its image and
// conversation as they were.
func (c *Chat) SetImageContext(ctx context.Context, path string) error {
	start := time.Now()
	if c.vis == nil {
		return errors.New("this chat has no vision model")
	}
	key := path
	if abs, err := filepath.Abs(path); err == nil {
		key = abs
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	key = fmt.Sprintf("file:%s:%d:%d", key, st.Size(), st.ModTime().UnixNano())
	return c.setImage(ctx, start, key, func() ([]float32, error) {
		img, err := imageprep.Load(path)
		if err != nil {
			return nil, err
		}
		return pixelValues(ctx, img, path, c.vis.Info().ImageOptions())
	})
}

// SetImageDecoded starts a new conversation about an image already decoded
// with imageprep.Load or imageprep.Decode, so that a caller which also
// shows the image decodes the file once. The result is SetImage's on that
// file, bit for bit: img goes through imageprep.ToRGB (skipped for an
// opaque *image.NRGBA such as ToRGB returns, which it would only copy),
// ResizeBicubic and Normalize. name, usually the file's path, starts error
// messages. It stops when ctx is done, as SetImageContext does.
//
// The features are cached by the prepared pixels, so setting the same
// image again skips the ViT but not the resize.
func (c *Chat) SetImageDecoded(ctx context.Context, img image.Image, name string) error {
	start := time.Now()
	if c.vis == nil {
		return errors.New("this chat has no vision model")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	px, err := pixelValues(ctx, img, name, c.vis.Info().ImageOptions())
	if err != nil {
		return err
	}
	return c.setImage(ctx, start, pixelsKey(px), func() ([]float32, error) { return px, nil })
}

// SetImagePixels starts a new conversation about an image given as
// normalized pixel values ([3, H, W], as imageprep.PixelValues makes them).
func (c *Chat) SetImagePixels(pixels []float32) error {
	start := time.Now()
	if c.vis == nil {
		return errors.New("this chat has no vision model")
	}
	return c.setImage(context.Background(), start, pixelsKey(pixels), func() ([]float32, error) { return pixels, nil })
}

// pixelsKey names prepared pixels in the feature cache.
func pixelsKey(pixels []float32) string {
	h := fnv.New64a()
	h.Write(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(pixels))), 4*len(pixels)))
	return fmt.Sprintf("pixels:%d:%x", len(pixels), h.Sum64())
}

// pixelValues is imageprep.PixelValues on a decoded image (ToRGB,
// ResizeBicubic, Normalize), checking ctx between the stages. ToRGB is
// skipped for an opaque *image.NRGBA: it would return an identical copy,
// hundreds of megabytes for a large photo.
func pixelValues(ctx context.Context, img image.Image, name string, o imageprep.Options) ([]float32, error) {
	if o.Width <= 0 || o.Height <= 0 {
		return nil, fmt.Errorf("%s: invalid target size %dx%d", name, o.Width, o.Height)
	}
	if img == nil {
		return nil, fmt.Errorf("%s: no image", name)
	}
	if b := img.Bounds(); b.Empty() {
		return nil, fmt.Errorf("%s: image is empty (%dx%d)", name, b.Dx(), b.Dy())
	}
	rgb, ok := img.(*image.NRGBA)
	if !ok || !opaque(rgb) {
		rgb = imageprep.ToRGB(img)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	small := imageprep.ResizeBicubic(rgb, o.Width, o.Height)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return imageprep.Normalize(small, o), nil
}

// opaque reports whether every pixel of m has alpha 255.
func opaque(m *image.NRGBA) bool {
	b := m.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		row := m.Pix[m.PixOffset(b.Min.X, y):][:4*b.Dx()]
		for i := 3; i < len(row); i += 4 {
			if row[i] != 0xff {
				return false
			}
		}
	}
	return true
}

// setImage makes the image with this cache key current: its features from
// the cache or from the ViT on pixels(), and for BLIP-2 its soft tokens.
// Nothing changes unless all of it succeeds.
func (c *Chat) setImage(ctx context.Context, start time.Time, key string, pixels func() ([]float32, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var feat *vision.ImageFeatures
	for _, f := range c.featCache {
		if f.key == key {
			feat = f.feat
			break
		}
	}
	if feat == nil {
		px, err := pixels()
		if err != nil {
			return err
		}
		if feat, err = c.vis.EncodeImageContext(ctx, px); err != nil {
			return err
		}
	}
	// The features are good whatever happens next: cache them (again, as
	// the most recent).
	c.featCache = slices.DeleteFunc(c.featCache, func(f cachedFeatures) bool { return f.key == key })
	c.featCache = append(c.featCache, cachedFeatures{key: key, feat: feat})
	if len(c.featCache) > featCacheSize {
		c.featCache = c.featCache[1:]
	}
	var soft []float32
	if !c.vis.Info().QFormer.TextInput {
		var err error
		if soft, err = c.project(ctx, feat, ""); err != nil {
			return err
		}
	}
	c.imageKey, c.feat, c.fixedSoft = key, feat, false
	c.soft, c.softInstr, c.softN = soft, "", 0
	if soft != nil {
		c.softN = c.vis.Info().NumQueryTokens
	}
	c.imageTime = time.Since(start)
	c.Reset()
	return nil
}

// SetSoftTokens starts a new conversation with given soft tokens (n rows of
// the language model's embedding width) instead of an image: for tests and
// tools that compute them elsewhere.
func (c *Chat) SetSoftTokens(rows []float32, n int) error {
	if n <= 0 || len(rows) != n*c.info.NEmbd {
		return fmt.Errorf("soft tokens: %d floats are not %d rows of %d", len(rows), n, c.info.NEmbd)
	}
	for _, v := range rows {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return errors.New("soft tokens hold NaN or infinity")
		}
	}
	c.soft, c.softN, c.fixedSoft, c.feat, c.imageKey = append([]float32(nil), rows...), n, true, nil, ""
	c.Reset()
	return nil
}

// softTokens returns the soft tokens for a turn whose instruction is instr
// (InstructBLIP; ignored by BLIP-2) and the time spent making them.
func (c *Chat) softTokens(instr string) ([]float32, time.Duration, error) {
	if c.fixedSoft {
		return c.soft, 0, nil
	}
	if c.feat == nil {
		return nil, 0, ErrNoImage
	}
	text := c.vis.Info().QFormer.TextInput
	if c.soft != nil && (!text || instr == c.softInstr) {
		return c.soft, 0, nil
	}
	start := time.Now()
	soft, err := c.project(context.Background(), c.feat, instr)
	if err != nil {
		return nil, 0, err
	}
	c.soft, c.softInstr, c.softN = soft, instr, c.vis.Info().NumQueryTokens
	return soft, time.Since(start), nil
}

// project runs the Q-Former on feat (reading instr for InstructBLIP) and
// the projection: the soft tokens.
func (c *Chat) project(ctx context.Context, feat *vision.ImageFeatures, instr string) ([]float32, error) {
	var ids []int
	if c.vis.Info().QFormer.TextInput {
		var err error
		if ids, err = c.vis.Tokenize(instr); err != nil {
			return nil, err
		}
	}
	q, err := c.vis.QFormerContext(ctx, feat, ids)
	if err != nil {
		return nil, err
	}
	return c.vis.Project(q)
}

func (c *Chat) context() (lm.Context, error) {
	if c.ctx == nil {
		cx, err := c.lm.NewContext(lm.ContextOptions{NCtx: c.s.NCtx, Threads: c.s.Threads, Exact: c.s.Exact})
		if err != nil {
			return nil, err
		}
		c.ctx, c.kvSoft, c.kvTokens = cx, nil, nil
	}
	return c.ctx, nil
}

// nctx is the context size, without making the context.
func (c *Chat) nctx() int {
	if c.ctx != nil {
		return c.ctx.NCtx()
	}
	return c.s.NCtx
}

// history returns the exchanges of turns [from:] that go into a prompt.
func (c *Chat) history(from int) []Exchange {
	var h []Exchange
	for _, t := range c.turns[from:] {
		if strings.TrimSpace(t.Answer) == "" {
			continue // a turn stopped before any text says nothing
		}
		q := t.Question
		if strings.TrimSpace(q) == "" {
			q = c.tmpl.Caption
		}
		h = append(h, Exchange{q, t.Answer})
	}
	return h
}

// prompt builds the prompt of question over the turns [from:].
func (c *Chat) prompt(from int, question string) (string, []int32, error) {
	text := c.tmpl.Format(c.history(from), question)
	ids, err := c.lm.Tokenize(text, true)
	return text, ids, err
}

// NextPrompt returns the prompt text and tokens (after the soft tokens) that
// Ask(question) would use now, before dropping any turns to fit the context.
func (c *Chat) NextPrompt(question string) (string, []int32, error) {
	return c.prompt(c.first, question)
}

// Restore replaces the conversation with saved turns (for example from a
// session file), all in the prompt again; the next Ask drops the oldest
// if they do not fit. Call it after SetImage, which starts a new
// conversation.
func (c *Chat) Restore(turns []Turn) error {
	for i, t := range turns {
		if !utf8.ValidString(t.Question) || !utf8.ValidString(t.Answer) {
			return fmt.Errorf("restore: turn %d is not UTF-8 text", i+1)
		}
	}
	c.turns, c.first = append([]Turn(nil), turns...), 0
	return nil
}

// PromptTokens is the number of context positions the next Ask of question
// would need before its answer: soft tokens and prompt, earlier turns
// included (before any are dropped).
func (c *Chat) PromptTokens(question string) (int, error) {
	_, ids, err := c.prompt(c.first, question)
	if err != nil {
		return 0, err
	}
	n := c.softN
	if n == 0 && c.vis != nil {
		n = c.vis.Info().NumQueryTokens
	}
	return n + len(ids), nil
}

// Usage reports how much of the context is filled.
func (c *Chat) Usage() Usage {
	u := Usage{Total: c.nctx()}
	if c.info.EncoderDecoder {
		u.Used = c.encRows
	} else if c.ctx != nil {
		u.Used = c.ctx.Pos()
	}
	return u
}

// instruction is the Q-Former text of a turn (InstructBLIP).
func (c *Chat) instruction(question string) string {
	if q := strings.TrimSpace(question); q != "" {
		return q
	}
	return c.tmpl.Caption
}

// Ask adds a turn: it answers question about the image, streaming the
// answer's text to onText (nil: not streamed) in whole UTF-8 characters.
// When ctx is cancelled, the turn keeps what was generated, marked stopped,
// and Ask returns it with ctx.Err(). An empty question asks for a caption.
func (c *Chat) Ask(ctx context.Context, question string, onText func(string)) (Turn, error) {
	start := time.Now()
	t := Turn{Question: question}
	soft, visTime, err := c.softTokens(c.instruction(question))
	if err != nil {
		return t, err
	}
	t.Timings.Vision = visTime
	nSoft := len(soft) / c.info.NEmbd
	cx, err := c.context()
	if err != nil {
		return t, err
	}

	// Fit the context: drop the oldest turns while the prompt and the
	// answer's budget do not fit (T5: the encoder input must fit).
	budget := c.s.MaxTokens
	if c.info.EncoderDecoder {
		budget = 0
	}
	from := c.first
	var ids []int32
	for {
		if t.Prompt, ids, err = c.prompt(from, question); err != nil {
			return t, err
		}
		if nSoft+len(ids)+budget <= cx.NCtx() || from >= len(c.turns) {
			break
		}
		from++
	}
	if nSoft+len(ids) > cx.NCtx() || (!c.info.EncoderDecoder && nSoft+len(ids) >= cx.NCtx()) {
		return t, fmt.Errorf("%w: %d soft tokens and %d prompt tokens, the context holds %d", ErrPromptTooLong, nSoft, len(ids), cx.NCtx())
	}
	t.PromptIDs, t.Dropped = ids, from-c.first

	sp := generate.SamplingParams(c.s.Params, cx.NCtx())
	sampler, err := cx.NewSampler(sp)
	if err != nil {
		return t, err
	}
	defer sampler.Close()
	if sp.Penalized() {
		for _, id := range ids[max(0, len(ids)-sp.RepeatLastN):] {
			sampler.Accept(id)
		}
	}

	prefillStart := time.Now()
	before := cx.Stats()
	if c.info.EncoderDecoder {
		err = c.encode(cx, soft, nSoft, ids)
	} else {
		err = c.prefill(ctx, cx, soft, nSoft, ids)
	}
	after := cx.Stats()
	t.Timings.Prefill = time.Since(prefillStart)
	t.Timings.PrefillTokens = after.TokensIn + after.EmbeddingRowsIn + after.EncoderRowsIn -
		before.TokensIn - before.EmbeddingRowsIn - before.EncoderRowsIn
	if err != nil {
		if ctx.Err() != nil {
			// Cancelled before the answer began: keep the turn, empty.
			t.Stop = lm.StopCancelled
			c.commit(t, from)
			return t, ctx.Err()
		}
		return t, err
	}

	r, err := lm.GenerateWith(ctx, c.lm, cx, sampler, lm.GenerateOptions{MaxTokens: c.s.MaxTokens, OnText: firstTrimmed(onText)})
	t.IDs, t.Stop = r.IDs, r.Stop
	t.Answer = strings.TrimPrefix(r.Text, " ")
	t.Timings.Generate, t.Timings.Tokens = r.Elapsed, len(r.IDs)
	t.Timings.FirstToken = prefillStart.Sub(start) + t.Timings.Prefill + r.FirstToken
	if !c.info.EncoderDecoder {
		c.kvTokens = append(c.kvTokens, r.IDs...)
	}
	c.syncKV(cx, nSoft)
	switch {
	case err == nil, errors.Is(err, lm.ErrContextFull):
		c.commit(t, from)
		return t, nil
	case r.Stop == lm.StopCancelled:
		c.commit(t, from)
		return t, err
	}
	return t, err
}

func (c *Chat) commit(t Turn, from int) {
	c.first = from
	c.turns = append(c.turns, t)
}

// firstTrimmed drops the leading space of the first text chunk, as
// Turn.Answer does.
func firstTrimmed(f func(string)) func(string) {
	if f == nil {
		return nil
	}
	first := true
	return func(s string) {
		if first {
			s = strings.TrimPrefix(s, " ")
			if s == "" {
				return
			}
			first = false
		}
		f(s)
	}
}

// prefillChunk is the most prompt tokens evaluated between two checks for
// cancellation.
const prefillChunk = 256

// prefill brings a decoder-only KV cache to [soft ; ids], evaluating only
// what differs from what it holds, and leaves the logits of the last
// position.
func (c *Chat) prefill(ctx context.Context, cx lm.Context, soft []float32, nSoft int, ids []int32) error {
	if c.kvSoft == nil || !sameBits(c.kvSoft, soft) || cx.Pos() != nSoft+len(c.kvTokens) {
		if err := cx.Truncate(0); err != nil {
			return err
		}
		c.kvSoft, c.kvTokens = nil, nil
		if err := cx.AppendEmbeddings(soft, nSoft, false); err != nil {
			c.syncKV(cx, nSoft)
			return err
		}
		c.kvSoft = append([]float32(nil), soft...)
		if len(ids) == 0 {
			return nil // the last soft token's logits start the answer
		}
	} else if len(ids) == 0 {
		// Re-evaluate the last soft token for its logits.
		if err := cx.Truncate(nSoft - 1); err != nil {
			return err
		}
		c.kvTokens = nil
		w := c.info.NEmbd
		if err := cx.AppendEmbeddings(soft[(nSoft-1)*w:], 1, false); err != nil {
			c.kvSoft = nil
			return err
		}
		return nil
	}
	k := 0
	for k < len(c.kvTokens) && k < len(ids) && c.kvTokens[k] == ids[k] {
		k++
	}
	k = min(k, len(ids)-1) // the last prompt token is evaluated again for its logits
	if err := cx.Truncate(nSoft + k); err != nil {
		return err
	}
	c.kvTokens = c.kvTokens[:k]
	for k < len(ids) {
		if err := ctx.Err(); err != nil {
			return err
		}
		j := min(k+prefillChunk, len(ids))
		if err := cx.AppendTokens(ids[k:j], false); err != nil {
			c.syncKV(cx, nSoft)
			return err
		}
		c.kvTokens = append(c.kvTokens, ids[k:j]...)
		k = j
	}
	return nil
}

// syncKV makes the bookkeeping agree with the context after an error.
func (c *Chat) syncKV(cx lm.Context, nSoft int) {
	if c.info.EncoderDecoder {
		return
	}
	switch n := cx.Pos() - nSoft; {
	case n < 0 || c.kvSoft == nil:
		c.kvSoft, c.kvTokens = nil, nil
	case n < len(c.kvTokens):
		c.kvTokens = c.kvTokens[:n]
	case n > len(c.kvTokens):
		c.kvSoft, c.kvTokens = nil, nil // unknown content: start over next time
	}
}

// encode runs T5's encoder over [soft ; embeddings of ids] and starts the
// decoder.
func (c *Chat) encode(cx lm.Context, soft []float32, nSoft int, ids []int32) error {
	emb, err := c.lm.TokenEmbeddings(ids)
	if err != nil {
		return err
	}
	rows := append(append(make([]float32, 0, len(soft)+len(emb)), soft...), emb...)
	if err := cx.Encode(rows, nSoft+len(ids)); err != nil {
		return err
	}
	c.encRows = nSoft + len(ids)
	return cx.AppendTokens([]int32{c.info.DecoderStart}, false)
}

// Retry answers the last question again, replacing its turn (the KV cache
// is cut back to before that answer).
func (c *Chat) Retry(ctx context.Context, onText func(string)) (Turn, error) {
	if len(c.turns) == 0 {
		return Turn{}, errors.New("nothing to retry: no question asked yet")
	}
	last := c.turns[len(c.turns)-1]
	n, first := len(c.turns)-1, c.first
	c.turns = c.turns[:n]
	c.first = min(c.first, n)
	t, err := c.Ask(ctx, last.Question, onText)
	if len(c.turns) == n {
		// Nothing was recorded: put the old turn back.
		c.turns, c.first = append(c.turns, last), first
	}
	return t, err
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
