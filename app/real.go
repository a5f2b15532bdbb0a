package app

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/blip2chat/blip2chat/engine/chat"
	"github.com/blip2chat/blip2chat/engine/generate"
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/engine/model"
	"github.com/blip2chat/blip2chat/engine/tokenizer"
)

// OpenOptions configure OpenEngine.
type OpenOptions struct {
	LlamaLib string // llama.cpp library folder; "" searches
	Threads  int    // 0: the default
	NCtx     int    // context size; 0: the model's default
	// GPULayers is model.Options.GPULayers (the chat's --gpu-layers).
	GPULayers int
	// Status receives progress text while loading.
	Status func(string)
}

// OpenEngine loads the model folder dir (engine/model) and starts a
// conversation on it (engine/chat).
func OpenEngine(ctx context.Context, dir string, o OpenOptions) (Engine, error) {
	if r, err := model.IsRetrieval(dir); err == nil && r {
		return openRetrievalEngine(dir, o)
	}
	start := time.Now()
	status := func(s string) {
		if o.Status != nil {
			o.Status(s)
		}
	}
	m, err := model.Open(dir, model.Options{LlamaLib: o.LlamaLib, Threads: o.Threads, NCtx: o.NCtx, GPULayers: o.GPULayers,
		Progress: func(stage string, f float64) {
			if f < 1 {
				status(fmt.Sprintf("%s %d%%", stage, int(f*100)))
			}
		}})
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		m.Close()
		return nil, err
	}
	c, err := m.NewChat(m.DefaultSettings())
	if err != nil {
		m.Close()
		return nil, err
	}
	e := &realEngine{m: m, c: c, mi: m.Info()}
	e.info = e.describe(dir)
	e.info.LoadTime = time.Since(start)
	return e, nil
}

// realEngine is Engine on engine/model and engine/chat.
type realEngine struct {
	m    *model.Model
	c    *chat.Chat
	mi   model.Info
	info ModelInfo
	// hasImage is set once an image is encoded.
	hasImage bool
}

func (e *realEngine) describe(dir string) ModelInfo {
	mi := e.mi
	family := map[string]string{"blip-2": "BLIP-2", "instructblip": "InstructBLIP"}[mi.Family]
	if family == "" {
		family = mi.Family
	}
	return ModelInfo{
		Name:    filepath.Base(filepath.Clean(dir)),
		Dir:     dir,
		Desc:    strings.TrimSpace(family + " · " + mi.Desc),
		Family:  mi.Family,
		Backend: e.m.LM.Info().Backend,
		Device:  e.m.LM.Info().Device,
		Notice:  e.m.LM.Info().Notice,
		Details: e.m.Details(),
	}
}

func (e *realEngine) Info() ModelInfo { return e.info }

// SetImage hands the decoded image to the chat, naming it by its file in
// the chat's feature cache, so that going back to an image skips its ViT;
// on an error (a cancel included) chat keeps the previous image.
func (e *realEngine) SetImage(ctx context.Context, img image.Image, path string) (ImageStats, error) {
	key := ""
	if st, err := os.Stat(path); err == nil {
		key = fmt.Sprintf("file:%s:%d:%d", path, st.Size(), st.ModTime().UnixNano())
	}
	if err := e.c.SetImage(ctx, img, key); err != nil {
		return ImageStats{}, err
	}
	e.hasImage = true
	return ImageStats{Encode: e.c.ImageTime(), Tokens: e.mi.NumQueryTokens}, nil
}

func answerOf(t chat.Turn) Answer {
	return Answer{
		Text:         t.Answer,
		Stop:         t.Stop,
		Tokens:       t.Timings.Tokens,
		PromptTokens: t.Timings.PrefillTokens,
		FirstToken:   t.Timings.FirstToken,
		Elapsed:      t.Timings.Vision + t.Timings.Prefill + t.Timings.Generate,
		TokensPerSec: t.Timings.TokensPerSecond(),
		Confidence:   confidenceOf(t.Tokens),
	}
}

// confidenceOf turns the driver's token probabilities into the app's,
// each token's text the whole characters it completes.
func confidenceOf(toks []generate.TokenProb) []TokenConfidence {
	if len(toks) == 0 {
		return nil
	}
	var dec tokenizer.StreamDecoder
	out := make([]TokenConfidence, len(toks))
	for i, t := range toks {
		out[i] = TokenConfidence{ID: t.ID, Text: dec.Write([]byte(t.Text)), P: t.P, Top: make([]Alternative, len(t.Top))}
		for j, a := range t.Top {
			out[i].Top[j] = Alternative{Text: strings.ToValidUTF8(a.Text, "\uFFFD"), P: a.P}
		}
	}
	out[len(out)-1].Text += dec.Flush()
	return out
}

// finish turns chat's result into the Engine contract: a cancelled answer
// is not an error; a question too long says what the user can do.
func finish(t chat.Turn, err error) (Answer, error) {
	a := answerOf(t)
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		a.Stop = lm.StopCancelled
		return a, nil
	case errors.Is(err, chat.ErrPromptTooLong):
		err = fmt.Errorf("%w; shorten the question, or restart with a larger --ctx", err)
	}
	return a, err
}

func (e *realEngine) Ask(ctx context.Context, q string, out generate.Stream) (Answer, error) {
	return finish(e.c.Ask(ctx, q, out))
}

func (e *realEngine) Caption(ctx context.Context, out generate.Stream) (Answer, error) {
	return finish(e.c.Ask(ctx, "", out))
}

func (e *realEngine) Retry(ctx context.Context, out generate.Stream) (Answer, error) {
	return finish(e.c.Retry(ctx, out))
}

// Attention averages the chat's cross-attention over heads and layers per
// query, keeping the patch tokens (a square grid after the class token).
func (e *realEngine) Attention(ctx context.Context) (Attention, error) {
	att, err := e.c.Attention(ctx)
	if err != nil {
		return Attention{}, err
	}
	patches := att.Tokens - 1
	grid := int(math.Round(math.Sqrt(float64(patches))))
	if grid*grid != patches || att.Layers == 0 || att.Heads == 0 {
		return Attention{}, fmt.Errorf("the vision side's %d tokens are not a class token and a square grid of patches", att.Tokens)
	}
	out := Attention{Grid: grid, Queries: make([][]float64, att.Queries)}
	n := float64(att.Layers * att.Heads)
	for q := range out.Queries {
		cells := make([]float64, patches)
		for l := 0; l < att.Layers; l++ {
			for h := 0; h < att.Heads; h++ {
				row := att.Probs[((l*att.Heads+h)*att.Queries+q)*att.Tokens:][:att.Tokens]
				for j := range cells {
					cells[j] += float64(row[j+1]) / n
				}
			}
		}
		out.Queries[q] = cells
	}
	return out, nil
}

func (e *realEngine) Compare(ctx context.Context, s Settings, out generate.Stream) (Answer, error) {
	if len(s.EOS) == 0 {
		s.EOS = e.m.StopTokens()
	}
	return finish(e.c.RetryWith(ctx, s, out))
}

func (e *realEngine) Reset() error { e.c.Reset(); return nil }

// Restore puts earlier turns back into the conversation.
func (e *realEngine) Restore(turns []Turn) error {
	ct := make([]chat.Turn, len(turns))
	for i, t := range turns {
		ct[i] = chat.Turn{Question: t.Question, Answer: t.Answer, Stop: t.Stop}
		if t.Stop == lm.StopNone {
			ct[i].Stop = lm.StopEOG
		}
	}
	return e.c.Restore(ct)
}

func (e *realEngine) Settings() Settings { return e.c.Settings() }

// Apply changes the settings. The context size and Exact are load options
// (a session file does not record them): they stay. Settings without stop
// tokens (a session from before they were recorded) take the checkpoint's.
func (e *realEngine) Apply(s Settings) error {
	cur := e.c.Settings()
	s.NCtx, s.Exact = cur.NCtx, cur.Exact
	if len(s.EOS) == 0 {
		s.EOS = e.m.StopTokens()
	}
	for _, id := range s.EOS {
		if n := e.m.LM.Info().NVocab; int(id) >= n {
			return fmt.Errorf("eos_token_id %d is outside the model's %d tokens", id, n)
		}
	}
	return e.c.SetSettings(s)
}

// Presets are the presets resolved for the model, for prompts as long as
// the caption prompt (generation_config's max_length counts the prompt).
func (e *realEngine) Presets() []generate.Preset {
	var out []generate.Preset
	for _, name := range generate.PresetNames() {
		if p, err := e.m.Preset(name, e.m.CaptionPositions()); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// Tokens is the next prompt as chat builds it: the soft tokens, then the
// template over the turns still in the context, tokenized.
func (e *realEngine) Tokens(question string) ([]Token, error) {
	_, ids, err := e.c.NextPrompt(question)
	if err != nil {
		return nil, err
	}
	toks := make([]Token, 0, e.mi.NumQueryTokens+len(ids))
	for range e.mi.NumQueryTokens {
		toks = append(toks, Token{ID: -1, Soft: true})
	}
	for _, id := range ids {
		toks = append(toks, Token{ID: int(id), Piece: e.piece(id)})
	}
	return toks, nil
}

// piece is a token's text for display, a byte that is not text shown as
// <0xNN>.
func (e *realEngine) piece(id int32) string {
	p := e.m.LM.Piece(id)
	if len(p) == 1 && (p[0] < 0x20 || p[0] >= 0x80) {
		return fmt.Sprintf("<0x%02X>", p[0])
	}
	return p
}

// Usage is the context the conversation fills. Right after a new image or
// a reset the KV cache still holds the old turns (chat reuses what it can
// at the next turn), but the conversation is only the soft tokens.
func (e *realEngine) Usage() (int, int) {
	u := e.c.Usage()
	if len(e.c.Turns()) == 0 {
		u.Used = 0
		if e.hasImage {
			u.Used = e.mi.NumQueryTokens
		}
	}
	return u.Used, u.Total
}

func (e *realEngine) Close() error {
	return errors.Join(e.c.Close(), e.m.Close())
}
