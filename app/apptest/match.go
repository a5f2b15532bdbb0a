package apptest

import (
	"context"
	"hash/fnv"
	"math"
	"sort"

	"github.com/blip2chat/blip2chat/app"
)

// MatchEngine is Engine with a retrieval model's matching (app.Matcher):
// a text's P(match) is Scores[text], else a number drawn from its hash;
// its ITC is half of that. Labels are ranked by their score's softmax.
type MatchEngine struct {
	*Engine
	Scores map[string]float64
}

// NewMatchEngine makes a MatchEngine with no fixed scores.
func NewMatchEngine() *MatchEngine {
	return &MatchEngine{Engine: NewEngine(), Scores: map[string]float64{}}
}

// Source opens e (the MatchEngine, not its Engine) as the model in dir.
func (e *MatchEngine) Source(dir, image string) *app.ModelSource {
	return &app.ModelSource{Dir: dir, Image: image, Open: func(context.Context, func(string)) (app.Engine, error) { return e, nil }}
}

func (e *MatchEngine) score(text string) float64 {
	if p, ok := e.Scores[text]; ok {
		return p
	}
	h := fnv.New32a()
	h.Write([]byte(text))
	return float64(h.Sum32()%1000) / 1000
}

// Match implements app.Matcher.
func (e *MatchEngine) Match(ctx context.Context, texts []string) ([]app.MatchScore, error) {
	out := make([]app.MatchScore, len(texts))
	for i, t := range texts {
		p := e.score(t)
		out[i] = app.MatchScore{Text: t, ITM: p, ITC: float32(p / 2)}
	}
	return out, ctx.Err()
}

// Labels implements app.Matcher.
func (e *MatchEngine) Labels(ctx context.Context, labels []string) ([]app.LabelScore, error) {
	out := make([]app.LabelScore, len(labels))
	var sum float64
	for i, l := range labels {
		p := e.score(l)
		out[i] = app.LabelScore{Label: l, Prob: math.Exp(p), ITC: float32(p / 2)}
		sum += out[i].Prob
	}
	for i := range out {
		out[i].Prob /= sum
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Prob > out[j].Prob })
	return out, ctx.Err()
}
