package app

import (
	"context"
	"errors"
	"fmt"
	"image"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/blip2chat/blip2chat/engine/chat"
	"github.com/blip2chat/blip2chat/engine/generate"
	"github.com/blip2chat/blip2chat/engine/kernels"
	"github.com/blip2chat/blip2chat/engine/model"
	"github.com/blip2chat/blip2chat/engine/retrieval"
	"github.com/blip2chat/blip2chat/engine/vision"
)

// Bar is one bar of a note's chart: a label, how full its bar is (0..1),
// the value printed beside it and a remark.
type Bar struct {
	Label    string
	Fraction float64
	Value    string
	Remark   string
}

// Matcher is what an Engine of a retrieval model adds: matching texts
// with the current image (/match) and zero-shot labels (/labels).
type Matcher interface {
	// Match scores each text against the image, in the order given.
	Match(ctx context.Context, texts []string) ([]MatchScore, error)
	// Labels classifies the image among labels, most likely first.
	Labels(ctx context.Context, labels []string) ([]LabelScore, error)
}

// MatchScore is how well a text describes the image.
type MatchScore struct {
	Text string
	ITM  float64 // the matching head's P(match)
	ITC  float32 // the contrastive similarity
}

// LabelScore is one label of a zero-shot classification.
type LabelScore struct {
	Label string
	Prob  float64 // softmax over the labels
	ITC   float32
}

// errNoAnswers is a retrieval model's answer to a question.
var errNoAnswers = errors.New("a retrieval model cannot answer questions: use /match TEXT | TEXT, /labels A, B or /search QUERY")

// match is /match TEXT | TEXT ...: the texts ranked by P(match) as a bar
// chart.
func (a *App) match(arg string) {
	var texts []string
	for _, t := range strings.Split(arg, "|") {
		if t = strings.TrimSpace(t); t != "" {
			texts = append(texts, t)
		}
	}
	if len(texts) == 0 {
		a.errorf("usage: /match TEXT | TEXT ... (how well each text describes the image)")
		return
	}
	m, ok := a.matcher()
	if !ok || !a.ready(true) {
		return
	}
	a.run(Working, "matching", func(ctx context.Context) {
		scores, err := m.Match(ctx, texts)
		if err != nil {
			a.jobError(ctx, err)
			return
		}
		sort.SliceStable(scores, func(i, j int) bool { return scores[i].ITM > scores[j].ITM })
		bars := make([]Bar, len(scores))
		for i, s := range scores {
			bars[i] = Bar{Label: s.Text, Fraction: s.ITM, Value: fmt.Sprintf("%.1f%%", 100*s.ITM), Remark: fmt.Sprintf("ITC %.3f", s.ITC)}
		}
		a.add(Entry{Kind: EntryNote, Text: "Match (P(match) from the matching head, best first):", Bars: bars})
	})
}

// labels is /labels A, B, ...: a zero-shot classification as a bar chart.
func (a *App) labels(arg string) {
	ls := retrieval.SplitLabels(arg)
	if len(ls) == 0 {
		a.errorf("usage: /labels A, B, ... (which label fits the image)")
		return
	}
	m, ok := a.matcher()
	if !ok || !a.ready(true) {
		return
	}
	a.run(Working, "labelling", func(ctx context.Context) {
		scores, err := m.Labels(ctx, ls)
		if err != nil {
			a.jobError(ctx, err)
			return
		}
		bars := make([]Bar, len(scores))
		for i, s := range scores {
			bars[i] = Bar{Label: s.Label, Fraction: s.Prob, Value: fmt.Sprintf("%.1f%%", 100*s.Prob), Remark: fmt.Sprintf("ITC %.3f", s.ITC)}
		}
		a.add(Entry{Kind: EntryNote, Text: fmt.Sprintf("Labels (%q, most likely first):", retrieval.DefaultLabelPrompt), Bars: bars})
	})
}

// matcher is the engine's Matcher, or says in one line that the model has
// none.
func (a *App) matcher() (Matcher, bool) {
	a.mu.Lock()
	eng, has, info := a.eng, a.st.HasModel, a.st.Model
	a.mu.Unlock()
	if !has {
		a.ready(false) // says why
		return nil, false
	}
	if m, ok := eng.(Matcher); ok {
		return m, true
	}
	a.errorf("%s has no image-text matching head (BLIP-2 generation checkpoints lack it): /match and /labels need a retrieval model converted from Salesforce/blip2-itm-vit-g", info.Name)
	return nil, false
}

// jobError reports a job's error, or nothing when it was cancelled.
func (a *App) jobError(ctx context.Context, err error) {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		a.note("Stopped.")
		return
	}
	a.errorf("%v", err)
}

// retrievalEngine is Engine on a retrieval model: it encodes images and
// matches them with texts, and refuses questions.
type retrievalEngine struct {
	m    *retrieval.Model
	info ModelInfo
	set  Settings
	img  *retrieval.Image
}

// openRetrievalEngine loads the retrieval model in dir.
func openRetrievalEngine(dir string, o OpenOptions) (Engine, error) {
	start := time.Now()
	m, err := retrieval.Open(dir, vision.Options{Threads: o.Threads})
	if err != nil {
		return nil, err
	}
	vi := m.Vision.Info()
	threads := o.Threads
	if threads == 0 {
		threads = kernels.DefaultThreads()
	}
	set := chat.DefaultSettings()
	set.Template, set.Threads = "{prompt}", threads
	e := &retrievalEngine{m: m, set: set}
	e.info = ModelInfo{
		Name:    filepath.Base(filepath.Clean(dir)),
		Dir:     dir,
		Desc:    "BLIP-2 retrieval · image-text matching, no language model",
		Family:  vi.Family,
		Backend: "Go (vision and text encoders)",
		Details: []model.Row{
			{Label: "Vision", Value: fmt.Sprintf("ViT %d layers × %d, %d px, patch %d, %s weights; Q-Former %d queries",
				vi.Vision.Layers, vi.Vision.HiddenSize, vi.Vision.ImageSize, vi.Vision.PatchSize, vi.WeightType, vi.NumQueryTokens)},
			{Label: "Text", Value: fmt.Sprintf("Q-Former text encoder, %d-wide contrastive embeddings, texts up to %d tokens; matching head",
				vi.Retrieval.EmbedSize, vi.Retrieval.MaxTextTokens)},
			{Label: "CPU", Value: kernels.Features()},
		},
		LoadTime: time.Since(start),
	}
	return e, nil
}

func (e *retrievalEngine) Info() ModelInfo { return e.info }

func (e *retrievalEngine) SetImage(ctx context.Context, img image.Image, path string) (ImageStats, error) {
	start := time.Now()
	im, err := e.m.Encode(ctx, img)
	if err != nil {
		return ImageStats{}, err
	}
	e.img = im
	return ImageStats{Encode: time.Since(start), Tokens: e.m.Vision.Info().NumQueryTokens}, nil
}

func (e *retrievalEngine) Ask(context.Context, string, generate.Stream) (Answer, error) {
	return Answer{}, errNoAnswers
}
func (e *retrievalEngine) Caption(context.Context, generate.Stream) (Answer, error) {
	return Answer{}, errNoAnswers
}
func (e *retrievalEngine) Retry(context.Context, generate.Stream) (Answer, error) {
	return Answer{}, errNoAnswers
}
func (e *retrievalEngine) Compare(context.Context, Settings, generate.Stream) (Answer, error) {
	return Answer{}, errNoAnswers
}
func (e *retrievalEngine) Reset() error { return nil }
func (e *retrievalEngine) Restore(turns []Turn) error {
	if len(turns) > 0 {
		return errNoAnswers
	}
	return nil
}
func (e *retrievalEngine) Presets() []generate.Preset { return nil } // it decodes nothing
func (e *retrievalEngine) Settings() Settings         { return e.set }
func (e *retrievalEngine) Apply(s Settings) error     { e.set = s; return nil }
func (e *retrievalEngine) Usage() (used, total int)   { return 0, 0 }
func (e *retrievalEngine) Close() error               { return e.m.Close() }

func (e *retrievalEngine) Tokens(question string) ([]Token, error) {
	ids, err := e.m.Vision.TokenizeText(question)
	if err != nil {
		return nil, err
	}
	toks := make([]Token, len(ids))
	for i, id := range ids {
		toks[i] = Token{ID: id, Piece: e.m.Vision.Info().Vocab[id]}
	}
	return toks, nil
}

func (e *retrievalEngine) Match(ctx context.Context, texts []string) ([]MatchScore, error) {
	if e.img == nil {
		return nil, errors.New("no image yet: load one with /image PATH")
	}
	s, err := e.m.Match(ctx, e.img, texts)
	if err != nil {
		return nil, err
	}
	out := make([]MatchScore, len(s))
	for i, x := range s {
		out[i] = MatchScore{Text: x.Text, ITM: x.ITM, ITC: x.ITC}
	}
	return out, nil
}

func (e *retrievalEngine) Labels(ctx context.Context, labels []string) ([]LabelScore, error) {
	if e.img == nil {
		return nil, errors.New("no image yet: load one with /image PATH")
	}
	ls, err := e.m.Labels(ctx, e.img, labels, retrieval.LabelOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]LabelScore, len(ls))
	for i, l := range ls {
		out[i] = LabelScore{Label: l.Label, Prob: l.Prob, ITC: l.ITC}
	}
	return out, nil
}

// retrievalModel is the engine's model, for /search.
func (e *retrievalEngine) retrievalModel() *retrieval.Model { return e.m }
