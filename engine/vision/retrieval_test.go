package vision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type itmMeta struct {
	Texts []string `json:"texts"`
	Items []struct {
		Text string `json:"text"`
		IDs  []int  `json:"ids"`
	} `json:"items"`
}

// TestRetrievalGolden: for every text of the blip2-itm case, from the
// golden pixels, the token ids, the ITC image and text embeddings, the
// ITC similarity and the ITM logits against transformers', at every
// weight type (f32 absolute 1e-4; f16 and q8_0 relative to the largest
// reference magnitude, tolerances as TestGolden's). The errors are logged.
func TestRetrievalGolden(t *testing.T) {
	var meta itmMeta
	data, err := os.ReadFile(filepath.Join(goldenDir, "blip2-itm", "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &meta); err != nil {
		t.Fatal(err)
	}
	g := readGolden(t, "blip2-itm")
	for _, wt := range weightTypes {
		t.Run(wt.name, func(t *testing.T) {
			m := loadModel(t, "blip2-itm", wt.name)
			if !m.Info().IsRetrieval() || m.Info().Retrieval.EmbedSize != 64 || m.Info().Retrieval.Temperature != 0 {
				t.Fatalf("retrieval info %+v", m.Info().Retrieval)
			}
			feat, err := m.EncodeImage(context.Background(), g.pixels(t))
			if err != nil {
				t.Fatal(err)
			}
			img, err := m.ImageEmbeddings(context.Background(), feat)
			if err != nil {
				t.Fatal(err)
			}
			worst := map[string]float64{}
			cmp := func(key, name string, v []float32) {
				worst[key] = math.Max(worst[key], check(t, name, v, g.f32(t, name), wt.relative, wt.tol))
			}
			for i, it := range meta.Items {
				p := fmt.Sprintf("text%d.", i)
				ids, err := m.TokenizeText(it.Text)
				if err != nil || !slices.Equal(ids, it.IDs) {
					t.Fatalf("%q: ids %v (%v), want %v", it.Text, ids, err, it.IDs)
				}
				txt, err := m.TextEmbedding(context.Background(), ids)
				if err != nil {
					t.Fatal(err)
				}
				logits, err := m.ITMLogits(context.Background(), feat, ids)
				if err != nil {
					t.Fatal(err)
				}
				cmp("itc_image_embeds", p+"itc_image_embeds", img)
				cmp("itc_text_embeds", p+"itc_text_embeds", txt)
				cmp("itc", p+"itc_logits_per_image", []float32{ITCScore(img, txt)})
				cmp("itm_logits", p+"itm_logits", logits[:])
			}
			t.Logf("errors (%s): %v", map[bool]string{false: "abs", true: "rel"}[wt.relative], worst)
		})
	}
}

// TestRetrievalText: texts longer than the model reads are cut, keeping
// [CLS] first and [SEP] last; any length up to it runs, with any ids of
// the vocabulary; out-of-range input is refused; a generation model says
// it has no heads.
func TestRetrievalText(t *testing.T) {
	m := loadModel(t, "blip2-itm", "f32")
	n := m.Info().Retrieval.MaxTextTokens
	long := strings.Repeat("snow dog ", 400)
	ids, err := m.TokenizeText(long)
	if err != nil || len(ids) != n || ids[0] != 2 || ids[n-1] != 3 {
		t.Fatalf("long text: %d ids (%v), first %d last %d; want %d, [CLS] 2 ... [SEP] 3", len(ids), err, ids[0], ids[len(ids)-1], n)
	}
	full := m.wp.Encode(long)
	if !slices.Equal(ids[:n-1], full[:n-1]) {
		t.Error("the cut text is not the text's start")
	}
	feat, err := m.EncodeImage(context.Background(), readGolden(t, "blip2-itm").pixels(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, ids := range [][]int{ids, {2, 3}, {2, 1000, 999, 3}} {
		e, err := m.TextEmbedding(context.Background(), ids)
		if err != nil {
			t.Fatalf("%d ids: %v", len(ids), err)
		}
		var s float64
		for _, x := range e {
			s += float64(x) * float64(x)
		}
		if math.Abs(s-1) > 1e-5 {
			t.Errorf("%d ids: |embedding|^2 = %g", len(ids), s)
		}
		l, err := m.ITMLogits(context.Background(), feat, ids)
		if err != nil || math.IsNaN(float64(l[0])) || math.IsNaN(float64(l[1])) {
			t.Errorf("%d ids: ITM %v %v", len(ids), l, err)
		}
	}
	for _, bad := range [][]int{nil, append(slices.Clone(ids), 3), {2, 1001, 3}, {-1}} {
		if _, err := m.TextEmbedding(context.Background(), bad); err == nil {
			t.Errorf("ids %v...: no error", bad[:min(len(bad), 3)])
		}
		if _, err := m.ITMLogits(context.Background(), feat, bad); err == nil {
			t.Errorf("ITM ids %v...: no error", bad[:min(len(bad), 3)])
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.TextEmbedding(ctx, ids); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}

	gen := loadModel(t, "blip2-opt", "f32")
	if gen.Info().IsRetrieval() {
		t.Error("blip2-opt is a retrieval model")
	}
	gf, _ := gen.EncodeImage(context.Background(), readGolden(t, "blip2-opt").pixels(t))
	if _, err := gen.TokenizeText("a dog"); !errors.Is(err, ErrNoRetrievalHeads) {
		t.Errorf("TokenizeText: %v", err)
	}
	if _, err := gen.ImageEmbeddings(context.Background(), gf); !errors.Is(err, ErrNoRetrievalHeads) {
		t.Errorf("ImageEmbeddings: %v", err)
	}
	if _, err := gen.ITMLogits(context.Background(), gf, []int{2, 3}); !errors.Is(err, ErrNoRetrievalHeads) {
		t.Errorf("ITMLogits: %v", err)
	}
	if strings.Contains(ErrNoRetrievalHeads.Error(), "\n") {
		t.Error("ErrNoRetrievalHeads is not one line")
	}
}

// TestITCScore: the largest dot product over the rows, and P(match) the
// two-way softmax.
func TestITCScore(t *testing.T) {
	img := []float32{1, 0, 0, 1, 0.6, 0.8}
	if got := ITCScore(img, []float32{0, 1}); got != 1 {
		t.Errorf("ITCScore = %g", got)
	}
	if got := ITCScore(img, []float32{-1, 0}); got != 0 {
		t.Errorf("ITCScore = %g", got)
	}
	if p := ITMProbability([2]float32{0, 0}); p != 0.5 {
		t.Errorf("P = %g", p)
	}
	if p := ITMProbability([2]float32{-1.057154893875122, -0.5841460227966309}); math.Abs(p-0.6160957) > 1e-6 {
		t.Errorf("P = %.7f", p)
	}
}
