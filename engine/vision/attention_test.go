package vision

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/blip2chat/blip2chat/weights/safetensors"
)

// refQFormer is an independent float64 Q-Former, read straight from a
// case's Hugging Face checkpoint (hf/model.safetensors and config.json),
// written from transformers' Blip2QFormerModel: it shares no code with the
// engine, so that where no reference file holds the cross-attention
// probabilities, the engine's are checked against it.
type refQFormer struct {
	t                          *testing.T
	f                          *safetensors.File
	layers, freq, heads, inter int
	eps                        float64
}

func newRefQFormer(t *testing.T, name string) *refQFormer {
	t.Helper()
	hf := filepath.Join(goldenDir, name, "hf")
	data, err := os.ReadFile(filepath.Join(hf, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Q struct {
			Layers int     `json:"num_hidden_layers"`
			Freq   int     `json:"cross_attention_frequency"`
			Heads  int     `json:"num_attention_heads"`
			Eps    float64 `json:"layer_norm_eps"`
		} `json:"qformer_config"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(hf, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &refQFormer{t: t, f: f, layers: cfg.Q.Layers, freq: cfg.Q.Freq, heads: cfg.Q.Heads, eps: cfg.Q.Eps}
}

func (r *refQFormer) has(name string) bool { _, ok := r.f.Tensor(name); return ok }

func (r *refQFormer) w(name string) []float64 {
	r.t.Helper()
	ten, ok := r.f.Tensor(name)
	if !ok {
		r.t.Fatalf("checkpoint has no %s", name)
	}
	v, err := ten.Float32()
	if err != nil {
		r.t.Fatal(err)
	}
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// linear is nn.Linear (weight [out, in]) over rows of x.
func (r *refQFormer) linear(x [][]float64, prefix string) [][]float64 {
	w, b := r.w(prefix+".weight"), r.w(prefix+".bias")
	out := make([][]float64, len(x))
	in := len(x[0])
	for i, row := range x {
		o := make([]float64, len(b))
		for j := range o {
			s := b[j]
			for k := 0; k < in; k++ {
				s += w[j*in+k] * row[k]
			}
			o[j] = s
		}
		out[i] = o
	}
	return out
}

func (r *refQFormer) layerNorm(x [][]float64, prefix string) [][]float64 {
	g, b := r.w(prefix+".weight"), r.w(prefix+".bias")
	out := make([][]float64, len(x))
	for i, row := range x {
		var mean, v float64
		for _, a := range row {
			mean += a
		}
		mean /= float64(len(row))
		for _, a := range row {
			v += (a - mean) * (a - mean)
		}
		v /= float64(len(row))
		o := make([]float64, len(row))
		for j, a := range row {
			o[j] = (a-mean)/math.Sqrt(v+r.eps)*g[j] + b[j]
		}
		out[i] = o
	}
	return out
}

func add(a, b [][]float64) [][]float64 {
	out := make([][]float64, len(a))
	for i := range a {
		out[i] = make([]float64, len(a[i]))
		for j := range a[i] {
			out[i][j] = a[i][j] + b[i][j]
		}
	}
	return out
}

// attention returns the context rows and the probabilities, heads x
// len(q) x len(k).
func (r *refQFormer) attention(q, k, v [][]float64) ([][]float64, []float64) {
	H := len(q[0])
	hd := H / r.heads
	probs := make([]float64, r.heads*len(q)*len(k))
	ctx := make([][]float64, len(q))
	for i := range ctx {
		ctx[i] = make([]float64, H)
	}
	for h := 0; h < r.heads; h++ {
		for i := range q {
			p := probs[(h*len(q)+i)*len(k):][:len(k)]
			m := math.Inf(-1)
			for j := range k {
				var s float64
				for d := h * hd; d < (h+1)*hd; d++ {
					s += q[i][d] * k[j][d]
				}
				p[j] = s / math.Sqrt(float64(hd))
				m = max(m, p[j])
			}
			var sum float64
			for j := range p {
				p[j] = math.Exp(p[j] - m)
				sum += p[j]
			}
			for j := range p {
				p[j] /= sum
				for d := h * hd; d < (h+1)*hd; d++ {
					ctx[i][d] += p[j] * v[j][d]
				}
			}
		}
	}
	return ctx, probs
}

func gelu(x [][]float64) [][]float64 {
	for _, row := range x {
		for j, a := range row {
			row[j] = 0.5 * a * (1 + math.Erf(a/math.Sqrt2))
		}
	}
	return x
}

// crossAttentions runs the Q-Former on image features (tokens x dim) and
// text ids (InstructBLIP's instruction, ITM's text; nil for none) and
// returns every cross-attention layer's probabilities, heads x queries x
// tokens each.
func (r *refQFormer) crossAttentions(feat []float32, tokens int, ids []int) [][]float64 {
	qt := r.w("query_tokens")
	wordName, posName, lnName := "qformer.embeddings.word_embeddings.weight", "qformer.embeddings.position_embeddings.weight", "qformer.embeddings.layernorm"
	if !r.has(wordName) {
		wordName, posName = "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight"
	}
	if !r.has(lnName + ".weight") {
		lnName = "qformer.layernorm"
	}
	H := len(r.w(lnName + ".weight"))
	Q := len(qt) / H
	var x [][]float64
	for i := 0; i < Q; i++ {
		x = append(x, qt[i*H:(i+1)*H])
	}
	if len(ids) > 0 {
		word, pos := r.w(wordName), r.w(posName)
		for j, id := range ids {
			row := make([]float64, H)
			for d := range row {
				row[d] = word[id*H+d] + pos[j*H+d]
			}
			x = append(x, row)
		}
	}
	x = r.layerNorm(x, lnName)
	dim := len(feat) / tokens
	img := make([][]float64, tokens)
	for i := range img {
		img[i] = make([]float64, dim)
		for d := range img[i] {
			img[i][d] = float64(feat[i*dim+d])
		}
	}
	var out [][]float64
	for l := 0; l < r.layers; l++ {
		p := fmt.Sprintf("qformer.encoder.layer.%d.", l)
		ctx, _ := r.attention(r.linear(x, p+"attention.attention.query"), r.linear(x, p+"attention.attention.key"), r.linear(x, p+"attention.attention.value"))
		a := r.layerNorm(add(r.linear(ctx, p+"attention.output.dense"), x), p+"attention.output.LayerNorm")
		aq := a[:Q]
		if l%r.freq == 0 {
			cctx, probs := r.attention(r.linear(aq, p+"crossattention.attention.query"),
				r.linear(img, p+"crossattention.attention.key"), r.linear(img, p+"crossattention.attention.value"))
			out = append(out, probs)
			aq = r.layerNorm(add(r.linear(cctx, p+"crossattention.output.dense"), aq), p+"crossattention.output.LayerNorm")
		}
		next := r.layerNorm(add(r.linear(gelu(r.linear(aq, p+"intermediate_query.dense")), p+"output_query.dense"), aq), p+"output_query.LayerNorm")
		if len(a) > Q {
			t := a[Q:]
			next = append(next, r.layerNorm(add(r.linear(gelu(r.linear(t, p+"intermediate.dense")), p+"output.dense"), t), p+"output.LayerNorm")...)
		}
		x = next
	}
	return out
}

// checkAttention compares the engine's cross-attention with want (every
// layer, flattened), and checks that every row sums to 1; it returns the
// largest difference.
func checkAttention(t *testing.T, what string, att *CrossAttention, want []float64, tol float64) float64 {
	t.Helper()
	if len(att.Probs) != len(want) {
		t.Fatalf("%s: %d probabilities (%d x %d x %d x %d), want %d", what, len(att.Probs), att.Layers, att.Heads, att.Queries, att.Tokens, len(want))
	}
	worst := 0.0
	for i, p := range att.Probs {
		worst = max(worst, math.Abs(float64(p)-want[i]))
	}
	rowDev := 0.0
	for r := 0; r < len(att.Probs)/att.Tokens; r++ {
		var s float64
		for _, p := range att.Probs[r*att.Tokens : (r+1)*att.Tokens] {
			s += float64(p)
		}
		rowDev = max(rowDev, math.Abs(s-1))
	}
	t.Logf("%s: max |p - reference| %.3g, rows sum to 1 within %.3g", what, worst, rowDev)
	if worst > tol {
		t.Errorf("%s: cross-attention differs from the reference by %.3g > %g", what, worst, tol)
	}
	if rowDev > 1e-5 {
		t.Errorf("%s: a row sums to 1%+.3g", what, rowDev)
	}
	return worst
}

func flatten(layers [][]float64) []float64 {
	var out []float64
	for _, l := range layers {
		out = append(out, l...)
	}
	return out
}

// TestCrossAttentionGolden: the Q-Former's cross-attention probabilities
// on every golden case (f32 weights) within 1e-5 of transformers' where a
// reference file holds them (blip2-opt, instructblip-llama: attention.
// safetensors, from the image's pixel_values through the engine's ViT),
// and of the independent float64 Q-Former above on every case, from the
// reference's vision_last_hidden_state (the retrieval case, which saves
// none: the engine's ViT output) — for the retrieval model, the ITM pass
// of each golden text. The float64 Q-Former is itself checked against the
// reference files.
func TestCrossAttentionGolden(t *testing.T) {
	const tol = 1e-5
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			m := loadModel(t, c.name, "f32")
			g := readGolden(t, c.name)
			ref := newRefQFormer(t, c.name)
			ids := instructionIDs(t, g)
			ctx := context.Background()
			feat, err := m.EncodeImage(ctx, g.pixels(t))
			if err != nil {
				t.Fatal(err)
			}
			if c.itm {
				var meta itmMeta
				data, err := os.ReadFile(filepath.Join(goldenDir, c.name, "golden.json"))
				if err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(data, &meta); err != nil {
					t.Fatal(err)
				}
				for _, it := range meta.Items {
					logits, att, err := m.ITMAttention(ctx, feat, it.IDs)
					if err != nil {
						t.Fatal(err)
					}
					plain, err := m.ITMLogits(ctx, feat, it.IDs)
					if err != nil || plain != logits {
						t.Errorf("%q: ITM logits %v with the attention, %v (%v) without", it.Text, logits, plain, err)
					}
					checkAttention(t, fmt.Sprintf("ITM %q vs float64", it.Text), att, flatten(ref.crossAttentions(feat.Data, feat.Tokens, it.IDs)), tol)
				}
				return
			}
			q, att, err := m.QFormerAttention(ctx, feat, ids)
			if err != nil {
				t.Fatal(err)
			}
			if plain, err := m.QFormer(ctx, feat, ids); err != nil || fmt.Sprint(plain) != fmt.Sprint(q) {
				t.Errorf("the Q-Former output changes when the attention is kept (%v)", err)
			}
			if att.Layers != (ref.layers+ref.freq-1)/ref.freq || att.Heads != ref.heads || att.Queries != m.Info().NumQueryTokens || att.Tokens != 257 {
				t.Errorf("shape %d x %d x %d x %d", att.Layers, att.Heads, att.Queries, att.Tokens)
			}
			if path := filepath.Join(goldenDir, c.name, "attention.safetensors"); fileExists(path) {
				want := readF32(t, path, "qformer_cross_attentions")
				checkAttention(t, "vs transformers", att, want, tol)
				// The float64 Q-Former against transformers, from the same
				// features.
				golden := g.f32(t, "vision_last_hidden_state")
				d := 0.0
				for i, p := range flatten(ref.crossAttentions(golden, feat.Tokens, ids)) {
					d = max(d, math.Abs(p-want[i]))
				}
				t.Logf("float64 Q-Former vs transformers: %.3g", d)
				if d > tol {
					t.Errorf("the float64 Q-Former differs from transformers by %.3g", d)
				}
			}
			// From the reference's ViT output, against the float64 Q-Former.
			golden := g.f32(t, "vision_last_hidden_state")
			_, att2, err := m.QFormerAttention(ctx, &ImageFeatures{Tokens: feat.Tokens, Dim: feat.Dim, Data: golden}, ids)
			if err != nil {
				t.Fatal(err)
			}
			checkAttention(t, "vs float64 (golden ViT output)", att2, flatten(ref.crossAttentions(golden, feat.Tokens, ids)), tol)
		})
	}
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

func readF32(t *testing.T, path, name string) []float64 {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ten, ok := f.Tensor(name)
	if !ok {
		t.Fatalf("%s has no %s", path, name)
	}
	v, err := ten.Float32()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}
