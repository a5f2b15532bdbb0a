// Package chat holds a conversation about one image with a BLIP-2-family
// model: the soft tokens the vision side makes from the image, the turns so
// far, the prompt template, and the language model's context.
//
// Each Ask builds the prompt from the template (earlier turns, then the new
// question) and answers it through engine/generate's driver, which keeps a
// decoder-only model's KV cache between turns (a second turn costs its own
// tokens, not the whole conversation) and re-encodes T5's prompt. Ask
//
//   - on InstructBLIP recomputes the soft tokens for each new instruction
//     (its Q-Former reads it), reusing the image's ViT features, which are
//     cached per image (image.go);
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
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/blip2chat/blip2chat/engine/generate"
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
// penalty, generate.DefaultMaxNewTokens), the family's template, default
// threads and context. A model's chats start from its preset instead
// (engine/model's DefaultSettings).
func DefaultSettings() Settings {
	return Settings{Params: generate.DefaultParams()}
}

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
	// Tokens say how sure the model was of each of IDs.
	Tokens []generate.TokenProb
	Stop   lm.StopReason
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

// Errors of Ask. ErrPromptTooLong comes with the numbers; the remedy
// depends on the caller (the chat: a shorter question or a larger --ctx).
var (
	ErrNoImage       = errors.New("no image: set one first")
	ErrPromptTooLong = generate.ErrPromptTooLong
)

// Chat is one conversation.
type Chat struct {
	vis  *vision.Model // nil: soft tokens come from SetSoftTokens only
	lm   lm.Model
	info lm.Info
	s    Settings

	tmpl   Template          // the full template s.Template stands for
	gen    *generate.Driver  // on the context, made on first use (kv.go)
	cxOpts lm.ContextOptions // what the context was made with

	// the image (image.go)
	feat      *vision.ImageFeatures
	featCache []cachedFeatures
	soft      []float32 // BLIP-2: per image; InstructBLIP: for softInstr
	softInstr string
	softN     int
	fixedSoft bool // set by SetSoftTokens
	imageTime time.Duration

	turns []Turn
	first int // first turn still in the prompt
}

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

// instruction is the Q-Former text of a turn (InstructBLIP).
func (c *Chat) instruction(question string) string {
	if q := strings.TrimSpace(question); q != "" {
		return q
	}
	return c.tmpl.Caption
}

// Ask adds a turn: it answers question about the image, streaming the
// answer to out (greedy decoding and sampling: the text in whole UTF-8
// characters; beam search: the best hypothesis after each step). When ctx
// is cancelled, the turn keeps what was generated (beam search: the best
// hypothesis), marked stopped, and Ask returns it with ctx.Err(). An empty
// question asks for a caption.
func (c *Chat) Ask(ctx context.Context, question string, out generate.Stream) (Turn, error) {
	start := time.Now()
	t := Turn{Question: question}
	soft, visTime, err := c.softTokens(ctx, c.instruction(question))
	if err != nil {
		return t, err
	}
	t.Timings.Vision = visTime
	nSoft := len(soft) / c.info.NEmbd
	gen, err := c.driver()
	if err != nil {
		return t, err
	}

	// Fit the context: drop the oldest turns while the prompt and the
	// answer do not fit (the driver refuses a prompt that alone does not).
	from := c.first
	var ids []int32
	for {
		if t.Prompt, ids, err = c.prompt(from, question); err != nil {
			return t, err
		}
		if _, full := generate.Need(c.info, nSoft+len(ids), c.s.MaxTokens); full <= gen.Context().NCtx() || from >= len(c.turns) {
			break
		}
		from++
	}
	t.PromptIDs, t.Dropped = ids, from-c.first

	runStart := time.Now()
	r, err := gen.Run(ctx, generate.Prompt{Soft: soft, NSoft: nSoft, IDs: ids}, generate.Options{Params: c.s.Params, Stream: out})
	t.IDs, t.Tokens, t.Stop, t.Answer = r.IDs, r.Tokens, r.Stop, r.Text
	t.Timings.Prefill, t.Timings.PrefillTokens = r.Prefill, r.PromptRows
	t.Timings.Generate, t.Timings.Tokens = r.Decode, len(r.IDs)
	t.Timings.FirstToken = runStart.Sub(start) + r.Prefill + r.FirstToken
	switch {
	case err == nil, r.Stop == lm.StopContextFull:
		c.commit(t, from)
		return t, nil
	case r.Stop == lm.StopCancelled:
		c.commit(t, from) // cancelled before or during the answer: keep what there is
		return t, err
	}
	return t, err
}

func (c *Chat) commit(t Turn, from int) {
	c.first = from
	t.Tokens = nil // the caller has them; the conversation needs only the text
	c.turns = append(c.turns, t)
}

// RetryWith answers the last question again with the decoding of s (its
// context size, threads and Exact stay the chat's), then puts the
// conversation and the settings back as they were: one answer of a
// comparison of settings (/compare). The KV cache keeps whatever it can
// for the next turn (the driver evaluates what differs).
func (c *Chat) RetryWith(ctx context.Context, s Settings, out generate.Stream) (Turn, error) {
	if len(c.turns) == 0 {
		return Turn{}, errors.New("nothing to compare: no question asked yet")
	}
	turns, first, cur, tmpl := slices.Clone(c.turns), c.first, c.s, c.tmpl
	s.NCtx, s.Threads, s.Exact = cur.NCtx, cur.Threads, cur.Exact
	if err := c.SetSettings(s); err != nil {
		return Turn{}, err
	}
	t, err := c.Retry(ctx, out)
	c.turns, c.first, c.s, c.tmpl = turns, first, cur, tmpl
	return t, err
}

// Retry answers the last question again with the settings in use,
// replacing its turn (the KV cache is cut back to before that answer).
func (c *Chat) Retry(ctx context.Context, out generate.Stream) (Turn, error) {
	if len(c.turns) == 0 {
		return Turn{}, errors.New("nothing to retry: no question asked yet")
	}
	last := c.turns[len(c.turns)-1]
	n, first := len(c.turns)-1, c.first
	c.turns = c.turns[:n]
	c.first = min(c.first, n)
	t, err := c.Ask(ctx, last.Question, out)
	if len(c.turns) == n {
		// Nothing was recorded: put the old turn back.
		c.turns, c.first = append(c.turns, last), first
	}
	return t, err
}
