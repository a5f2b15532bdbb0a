// Package retrieval matches images and texts with a BLIP-2 image–text
// retrieval model (a model folder converted from Salesforce/blip2-itm-vit-g
// or its COCO variant): for an image and texts, the matching head's
// probability (ITM) and the contrastive similarity (ITC); zero-shot labels
// (ITC over "a photo of {label}", a softmax, optionally re-ranked by ITM);
// and the embeddings a searchable index stores (engine/index).
//
//	m, err := retrieval.Open("models/blip2-itm", vision.Options{})
//	img, err := m.EncodeFile(ctx, "dog.jpg")
//	scores, err := m.Match(ctx, img, []string{"a dog in the snow", "a cat"})
//
// The numbers are transformers' Blip2ForImageTextRetrieval's (see
// engine/vision's retrieval.go for what is computed).
package retrieval

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/blip2chat/blip2chat/engine/imageprep"
	"github.com/blip2chat/blip2chat/engine/kernels"
	"github.com/blip2chat/blip2chat/engine/vision"
	"github.com/blip2chat/blip2chat/weights/convert"
)

// Model is a loaded retrieval model.
type Model struct {
	Dir    string
	Vision *vision.Model
	pool   *kernels.Pool // for ranking an index (Search)
}

// ErrNotRetrieval is wrapped by Open for a model folder without the
// retrieval heads.
var ErrNotRetrieval = vision.ErrNoRetrievalHeads

// Open loads the retrieval model in the model folder dir (its vision.gguf).
// A generation model is refused with one line saying what it lacks.
func Open(dir string, o vision.Options) (*Model, error) {
	st, err := os.Stat(dir)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: no such model folder (make one with 'blip2chat convert')", dir)
	case !st.IsDir():
		return nil, fmt.Errorf("%s is not a model folder (it should hold %s, written by 'blip2chat convert')", dir, convert.VisionFile)
	}
	p := filepath.Join(dir, convert.VisionFile)
	if _, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("%s: no %s: convert a checkpoint into it with 'blip2chat convert'", dir, convert.VisionFile)
	}
	v, err := vision.Load(p, o)
	if err != nil {
		return nil, err
	}
	m, err := New(dir, v, o.Threads)
	if err != nil {
		v.Close()
	}
	return m, err
}

// New makes a Model of a loaded vision model (which it then owns), dir
// naming it; a model without the retrieval heads is refused.
func New(dir string, v *vision.Model, threads int) (*Model, error) {
	if !v.Info().IsRetrieval() {
		return nil, fmt.Errorf("%s (%s): %w", dir, v.Info().Architecture, ErrNotRetrieval)
	}
	return &Model{Dir: dir, Vision: v, pool: kernels.NewPool(threads)}, nil
}

// Close frees the model.
func (m *Model) Close() error {
	m.pool.Close()
	return m.Vision.Close()
}

// Image is an image encoded for matching: its ViT features (which ITM
// reads) and its contrastive embeddings (Q x E, unit rows).
type Image struct {
	Features *vision.ImageFeatures
	Embeds   []float32
}

// EncodeFile decodes and encodes the image file at path.
func (m *Model) EncodeFile(ctx context.Context, path string) (*Image, error) {
	img, err := imageprep.Load(ctx, path)
	if err != nil {
		return nil, err
	}
	return m.Encode(ctx, img)
}

// Encode prepares a decoded image as the model's processor does and runs
// the ViT and the Q-Former on it. It stops when ctx is done.
func (m *Model) Encode(ctx context.Context, img image.Image) (*Image, error) {
	px, err := imageprep.PixelValues(ctx, img, m.Vision.Info().ImageOptions())
	if err != nil {
		return nil, err
	}
	feat, err := m.Vision.EncodeImage(ctx, px)
	if err != nil {
		return nil, err
	}
	emb, err := m.Vision.ImageEmbeddings(ctx, feat)
	if err != nil {
		return nil, err
	}
	return &Image{Features: feat, Embeds: emb}, nil
}

// TextEmbedding is a text's contrastive embedding (E unit floats).
func (m *Model) TextEmbedding(ctx context.Context, text string) ([]float32, error) {
	ids, err := m.Vision.TokenizeText(text)
	if err != nil {
		return nil, err
	}
	return m.Vision.TextEmbedding(ctx, ids)
}

// ITM is the matching head's verdict on an image and a text: its two
// logits (no match, match) and P(match), their softmax.
func (m *Model) ITM(ctx context.Context, img *Image, text string) (logits [2]float32, p float64, err error) {
	ids, err := m.Vision.TokenizeText(text)
	if err != nil {
		return logits, 0, err
	}
	logits, err = m.Vision.ITMLogits(ctx, img.Features, ids)
	if err != nil {
		return logits, 0, err
	}
	return logits, vision.ITMProbability(logits), nil
}

// Score is how well a text matches an image.
type Score struct {
	Text      string
	ITMLogits [2]float32 // no match, match
	ITM       float64    // P(match): softmax of ITMLogits
	ITC       float32    // the largest cosine between the text and a query
}

// Match scores each text against img, in the order given.
func (m *Model) Match(ctx context.Context, img *Image, texts []string) ([]Score, error) {
	out := make([]Score, len(texts))
	for i, t := range texts {
		emb, err := m.TextEmbedding(ctx, t)
		if err != nil {
			return nil, err
		}
		logits, p, err := m.ITM(ctx, img, t)
		if err != nil {
			return nil, err
		}
		out[i] = Score{Text: t, ITMLogits: logits, ITM: p, ITC: vision.ITCScore(img.Embeds, emb)}
	}
	return out, nil
}

// SortScores sorts scores best first: by P(match), then by ITC.
func SortScores(s []Score) {
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].ITM != s[j].ITM {
			return s[i].ITM > s[j].ITM
		}
		return s[i].ITC > s[j].ITC
	})
}

// DefaultLabelPrompt is the text a label is put in for zero-shot
// classification, as in CLIP's and LAVIS's zero-shot evaluations.
const DefaultLabelPrompt = "a photo of {}"

// Temperature is the softmax temperature of zero-shot labels: the
// checkpoint's (LAVIS's learned temp) when it stores one, else 1, as
// transformers' Blip2ForImageTextRetrieval, whose logits_per_image are the
// bare cosines.
func (m *Model) Temperature() float64 {
	if t := m.Vision.Info().Retrieval.Temperature; t > 0 {
		return float64(t)
	}
	return 1
}

// Label is one class of a zero-shot classification.
type Label struct {
	Label string
	Text  string  // the label in the prompt
	ITC   float32 // similarity of the image and Text
	Prob  float64 // softmax over the labels of ITC / temperature
	// ITM is P(match) for the labels re-ranked by the matching head, -1
	// for the others.
	ITM float64
}

// LabelOptions configure Labels.
type LabelOptions struct {
	Prompt      string  // "{}" marks the label; "" is DefaultLabelPrompt
	Temperature float64 // 0: the model's (Temperature)
	// Rerank re-ranks the Rerank most probable labels by the matching
	// head's P(match); 0 ranks by ITC alone.
	Rerank int
}

// Labels classifies img among labels (zero-shot): each label is put in
// the prompt, the labels ranked by ITC, their probabilities the softmax
// of ITC / temperature; with Rerank k, the k first are ordered again by
// ITM, best first (the others follow as they were).
func (m *Model) Labels(ctx context.Context, img *Image, labels []string, o LabelOptions) ([]Label, error) {
	if len(labels) == 0 {
		return nil, errors.New("no labels")
	}
	if o.Prompt == "" {
		o.Prompt = DefaultLabelPrompt
	}
	if !strings.Contains(o.Prompt, "{}") {
		return nil, fmt.Errorf("label prompt %q has no {} for the label", o.Prompt)
	}
	if o.Temperature == 0 {
		o.Temperature = m.Temperature()
	}
	if !(o.Temperature > 0) || math.IsInf(o.Temperature, 0) {
		return nil, fmt.Errorf("temperature must be positive, is %g", o.Temperature)
	}
	out := make([]Label, len(labels))
	for i, l := range labels {
		text := strings.ReplaceAll(o.Prompt, "{}", l)
		emb, err := m.TextEmbedding(ctx, text)
		if err != nil {
			return nil, err
		}
		out[i] = Label{Label: l, Text: text, ITC: vision.ITCScore(img.Embeds, emb), ITM: -1}
	}
	// The softmax, shifted by the largest logit.
	top := math.Inf(-1)
	for _, l := range out {
		top = math.Max(top, float64(l.ITC)/o.Temperature)
	}
	var sum float64
	for i := range out {
		out[i].Prob = math.Exp(float64(out[i].ITC)/o.Temperature - top)
		sum += out[i].Prob
	}
	for i := range out {
		out[i].Prob /= sum
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ITC > out[j].ITC })
	k := min(o.Rerank, len(out))
	for i := 0; i < k; i++ {
		_, p, err := m.ITM(ctx, img, out[i].Text)
		if err != nil {
			return nil, err
		}
		out[i].ITM = p
	}
	sort.SliceStable(out[:k], func(i, j int) bool { return out[i].ITM > out[j].ITM })
	return out, nil
}

// SplitLabels splits "dog, cat,car" into labels, dropping empty ones.
func SplitLabels(s string) []string {
	var out []string
	for _, l := range strings.Split(s, ",") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
