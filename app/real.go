package app

import (
	"context"
	"errors"
	"fmt"
	"image"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/blip2chat/blip2chat/engine/chat"
	"github.com/blip2chat/blip2chat/engine/kernels"
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/engine/lm/llamacpp"
	_ "github.com/blip2chat/blip2chat/engine/lm/opt" // the Go backend for OPT models
	"github.com/blip2chat/blip2chat/engine/model"
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
	c, err := m.NewChat(chat.Settings{})
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
	info := ModelInfo{
		Name:   filepath.Base(filepath.Clean(dir)),
		Dir:    dir,
		Desc:   strings.TrimSpace(family + " · " + mi.Desc),
		Family: mi.Family,
	}
	if lc, ok := e.m.LM.(*llamacpp.Model); ok {
		li := lc.Library().Info()
		info.Backend = fmt.Sprintf("llama.cpp %s, %s", li.Version, TildePath(li.Location.String()))
	} else {
		info.Backend = "blip2chat Go engine (" + mi.Arch + ")"
	}
	vi := e.m.Vision.Info()
	info.Details = []string{
		fmt.Sprintf("vision: ViT %d layers × %d, %d px, patch %d, %s weights; Q-Former %d queries",
			vi.Vision.Layers, vi.Vision.HiddenSize, vi.Vision.ImageSize, vi.Vision.PatchSize, vi.WeightType, vi.NumQueryTokens),
		fmt.Sprintf("language: %s, %d-wide, vocab %d, trained context %d", mi.Arch, mi.NEmbd, mi.NVocab, mi.NCtxTrain),
		"CPU: " + kernels.Features(),
	}
	return info
}

func (e *realEngine) Info() ModelInfo { return e.info }

func (e *realEngine) SetImage(ctx context.Context, path string) (ImageStats, error) {
	return e.imageSet(e.c.SetImageContext(ctx, path))
}

// SetImageDecoded makes realEngine a DecodedImageSetter.
func (e *realEngine) SetImageDecoded(ctx context.Context, img image.Image, path string) (ImageStats, error) {
	return e.imageSet(e.c.SetImageDecoded(ctx, img, path))
}

// imageSet reports how chat's SetImage* went; on an error (a cancel
// included) chat kept the previous image.
func (e *realEngine) imageSet(err error) (ImageStats, error) {
	if err != nil {
		return ImageStats{}, err
	}
	e.hasImage = true
	return ImageStats{Encode: e.c.ImageTime(), Tokens: e.mi.NumQueryTokens}, nil
}

func answerOf(t chat.Turn) Answer {
	a := Answer{
		Text:         t.Answer,
		Tokens:       t.Timings.Tokens,
		PromptTokens: t.Timings.PrefillTokens,
		FirstToken:   t.Timings.FirstToken,
		Elapsed:      t.Timings.Vision + t.Timings.Prefill + t.Timings.Generate,
		TokensPerSec: t.Timings.TokensPerSecond(),
	}
	switch t.Stop {
	case lm.StopEOG:
		a.Stop = StopEnd
	case lm.StopMaxTokens:
		a.Stop = StopMaxTokens
	case lm.StopCancelled:
		a.Stop = StopCancelled
	case lm.StopContextFull:
		a.Stop = StopContextFull
	}
	return a
}

// finish turns chat's result into the Engine contract: a cancelled answer
// is not an error.
func finish(t chat.Turn, err error) (Answer, error) {
	a := answerOf(t)
	if err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		a.Stop = StopCancelled
		return a, nil
	}
	return a, err
}

func (e *realEngine) Ask(ctx context.Context, q string, on func(string)) (Answer, error) {
	return finish(e.c.Ask(ctx, q, on))
}

func (e *realEngine) Caption(ctx context.Context, on func(string)) (Answer, error) {
	return finish(e.c.Ask(ctx, "", on))
}

func (e *realEngine) Retry(ctx context.Context, on func(string)) (Answer, error) {
	return finish(e.c.Retry(ctx, on))
}

func (e *realEngine) Reset() error { e.c.Reset(); return nil }

// Restore puts earlier turns back into the conversation.
func (e *realEngine) Restore(turns []Turn) error {
	ct := make([]chat.Turn, len(turns))
	for i, t := range turns {
		ct[i] = chat.Turn{Question: t.Question, Answer: t.Answer}
		switch t.Stop {
		case StopCancelled:
			ct[i].Stop = lm.StopCancelled
		case StopMaxTokens:
			ct[i].Stop = lm.StopMaxTokens
		case StopContextFull:
			ct[i].Stop = lm.StopContextFull
		default:
			ct[i].Stop = lm.StopEOG
		}
	}
	return e.c.Restore(ct)
}

// maxSeed is the largest fixed seed; lm.RandomSeed stands for -1.
const maxSeed = int64(lm.RandomSeed) - 1

func (e *realEngine) Settings() Settings {
	s := e.c.Settings()
	out := Settings{
		MaxTokens: s.MaxTokens,
		Template:  s.Template.Turn,
		Threads:   s.Threads,
		TopK:      s.Sampling.TopK,
		TopP:      float64(s.Sampling.TopP),
		Seed:      int64(s.Sampling.Seed),
	}
	if !s.Sampling.IsGreedy() {
		out.Temperature = float64(s.Sampling.Temperature)
	}
	if out.TopP == 0 {
		out.TopP = 1
	}
	if s.Sampling.Seed == lm.RandomSeed {
		out.Seed = -1
	}
	return roundSettings(out)
}

// roundSettings undoes float32 noise (0.8 stored as 0.800000011920929).
func roundSettings(s Settings) Settings {
	r := func(f float64) float64 {
		v, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'g', 6, 64), 64)
		return v
	}
	s.Temperature, s.TopP = r(s.Temperature), r(s.TopP)
	return s
}

func (e *realEngine) Apply(s Settings) error {
	cs := e.c.Settings()
	p := cs.Sampling
	p.Greedy = s.Temperature == 0
	p.Temperature = float32(s.Temperature)
	p.TopK = s.TopK
	p.TopP = float32(s.TopP)
	if s.Seed < 0 {
		p.Seed = lm.RandomSeed
	} else {
		p.Seed = uint64(min(s.Seed, maxSeed))
	}
	cs.Sampling = p
	cs.MaxTokens = s.MaxTokens
	cs.Threads = s.Threads
	if s.Template != cs.Template.Turn {
		cs.Template = chat.TemplateFor(e.mi.Family, s.Template)
	}
	return e.c.SetSettings(cs)
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

// piece is a token's text for display: SentencePiece's ▁ kept, bytes that
// are not text shown as <0xNN>.
func (e *realEngine) piece(id int32) string {
	if lc, ok := e.m.LM.(*llamacpp.Model); ok {
		return lc.Piece(id)
	}
	b := e.m.LM.TokenBytes(id)
	if len(b) == 1 && (b[0] < 0x20 || b[0] >= 0x80) {
		return fmt.Sprintf("<0x%02X>", b[0])
	}
	return string(b)
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
