package retrieval

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/blip2chat/blip2chat/engine/vision"
	"github.com/blip2chat/blip2chat/weights/convert"
)

const goldenDir = "../../testdata/golden"

func open(t *testing.T, ckpt string) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), ckpt)
	if _, err := convert.Convert(context.Background(), filepath.Join(goldenDir, ckpt, "hf"), d, convert.Options{VisionType: "f32", VisionOnly: true}); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestLabels: the probabilities are the softmax of ITC / temperature (1
// when the checkpoint stores none), ranked by ITC; --rerank orders the
// first k by the matching head's P(match), as ITM computes it.
func TestLabels(t *testing.T) {
	m, err := Open(open(t, "blip2-itm"), vision.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	img, err := m.EncodeFile(ctx, filepath.Join(goldenDir, "images", "husky.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	labels := []string{"dog", "cat", "car", "snow"}
	if m.Temperature() != 1 {
		t.Errorf("temperature %g", m.Temperature())
	}
	for _, temp := range []float64{0, 0.05} {
		ls, err := m.Labels(ctx, img, labels, LabelOptions{Temperature: temp})
		if err != nil {
			t.Fatal(err)
		}
		T := temp
		if T == 0 {
			T = 1
		}
		var z float64
		for _, l := range ls {
			z += math.Exp(float64(l.ITC) / T)
		}
		for i, l := range ls {
			emb, _ := m.TextEmbedding(ctx, "a photo of "+l.Label)
			if l.Text != "a photo of "+l.Label || l.ITC != vision.ITCScore(img.Embeds, emb) || l.ITM != -1 {
				t.Errorf("%+v", l)
			}
			if p := math.Exp(float64(l.ITC)/T) / z; math.Abs(p-l.Prob) > 1e-9 {
				t.Errorf("T=%g %s: p %g, softmax %g", T, l.Label, l.Prob, p)
			}
			if i > 0 && l.ITC > ls[i-1].ITC {
				t.Errorf("not ranked by ITC at %d", i)
			}
		}
	}
	ls, err := m.Labels(ctx, img, labels, LabelOptions{Prompt: "{} in a picture", Rerank: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range ls {
		if i >= 2 {
			if l.ITM != -1 {
				t.Errorf("label %d re-ranked", i)
			}
			continue
		}
		_, p, _ := m.ITM(ctx, img, l.Label+" in a picture")
		if l.ITM != p || (i == 1 && l.ITM > ls[0].ITM) {
			t.Errorf("rerank %d: %+v, P %g", i, l, p)
		}
	}
	if _, err := m.Labels(ctx, img, labels, LabelOptions{Prompt: "no slot"}); err == nil {
		t.Error("a prompt without {}")
	}
	if _, err := m.Labels(ctx, img, nil, LabelOptions{}); err == nil {
		t.Error("no labels")
	}
	if got := SplitLabels(" dog, ,cat ,"); !slices.Equal(got, []string{"dog", "cat"}) {
		t.Errorf("SplitLabels %q", got)
	}
}

// TestOpenGeneration: a generation model is refused, naming it.
func TestOpenGeneration(t *testing.T) {
	_, err := Open(open(t, "blip2-opt"), vision.Options{Threads: 1})
	if !errors.Is(err, ErrNotRetrieval) {
		t.Errorf("error %v", err)
	}
}
