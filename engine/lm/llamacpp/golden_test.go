package llamacpp

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/blip2chat/blip2chat/engine/generate"
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/engine/model/modeltest"
)

func TestMain(m *testing.M) { modeltest.Main(m) }

func openCase(t *testing.T, c modeltest.Case, llmType string) *Model {
	t.Helper()
	dir := modeltest.ModelDir(t, c, llmType)
	m, err := Open(filepath.Join(dir, "llm.gguf"), Options{LibDir: modeltest.LibDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// caseRun holds what one case's reference computation produces.
type caseRun struct {
	logits []float32 // decoder-only: every position; T5: the forced decoder steps
	greedy []int32
}

// runCase feeds the golden soft tokens and prompt and returns the logits
// the golden file holds for it and the greedy continuation.
func runCase(t *testing.T, m *Model, c modeltest.Case, exact bool) caseRun {
	t.Helper()
	g := c.Golden
	st := c.Tensors(t)
	soft, shape := modeltest.Float32(t, st, "language_model_inputs")
	q := shape[1]
	in := m.Info()
	if shape[2] != in.NEmbd {
		t.Fatalf("soft tokens are %d wide, the model takes %d", shape[2], in.NEmbd)
	}
	ctxOpts := lm.ContextOptions{NCtx: 256, Exact: exact, AllLogits: true, Threads: 1}
	cx, err := m.NewContext(ctxOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer cx.Close()
	var r caseRun
	nv := in.NVocab
	collect := func(n int) {
		for i := range n {
			l := cx.Logits(i)
			if len(l) != nv {
				t.Fatalf("no logits for row %d", i)
			}
			r.logits = append(r.logits, l...)
		}
	}
	if in.EncoderDecoder {
		encode := func() {
			emb, err := m.TokenEmbeddings(g.PromptIDs)
			if err != nil {
				t.Fatal(err)
			}
			if err := cx.Encode(append(append([]float32{}, soft...), emb...), q+len(g.PromptIDs)); err != nil {
				t.Fatal(err)
			}
		}
		encode()
		if err := cx.AppendTokens(g.ForcedDecoderInputIDs, true); err != nil {
			t.Fatal(err)
		}
		collect(len(g.ForcedDecoderInputIDs))
		encode()
		if cx.Pos() != 0 {
			t.Fatalf("Encode left the decoder at %d", cx.Pos())
		}
		if err := cx.AppendTokens([]int32{in.DecoderStart}, false); err != nil {
			t.Fatal(err)
		}
	} else {
		if err := cx.AppendEmbeddings(soft, q, true); err != nil {
			t.Fatal(err)
		}
		collect(q)
		if err := cx.AppendTokens(g.PromptIDs, true); err != nil {
			t.Fatal(err)
		}
		collect(len(g.PromptIDs))
	}
	// The golden continuation never stops at EOS; neither may this one,
	// within the comparable steps (an EOS there would be a mismatch).
	o := generate.Options{Params: generate.DefaultParams()}
	o.MaxTokens = len(g.GreedyIDs)
	res, err := generate.New(m, cx).Decode(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	r.greedy = res.IDs
	return r
}

func goldenLogits(t *testing.T, c modeltest.Case) []float32 {
	name := "logits"
	if c.TextType == "t5" {
		name = "forced_decoder_logits"
	}
	v, _ := modeltest.Float32(t, c.Tensors(t), name)
	return v
}

// TestGolden checks llama.cpp's answers against transformers for every
// golden LLaMA and T5 case: tokenization, logits (exact settings: within
// 1e-4 for LLaMA; T5 within 5e-2, as ggml's GELU uses an f16 table) and
// greedy tokens while the reference margin is clear. It measures the
// default settings and the q8_0 and q4_k_m files too.
func TestGolden(t *testing.T) {
	for _, c := range modeltest.Cases(t, "llama", "t5") {
		t.Run(c.Name, func(t *testing.T) {
			m := openCase(t, c, "f32")
			g := c.Golden
			ids, err := m.Tokenize(g.Prompt, true)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(ids) != fmt.Sprint(g.PromptIDs) {
				t.Errorf("prompt ids\n got %v\nwant %v", ids, g.PromptIDs)
			}
			tol := 1e-4
			if c.TextType == "t5" {
				tol = 5e-2
				if g.DecoderStartTokenID != nil && m.Info().DecoderStart != *g.DecoderStartTokenID {
					t.Errorf("decoder start %d, want %d", m.Info().DecoderStart, *g.DecoderStartTokenID)
				}
			}
			want := goldenLogits(t, c)
			scale := modeltest.MaxAbsDiff(want, make([]float32, len(want)))
			steps := g.ComparableSteps()
			check := func(label string, r caseRun, tol float64, greedy bool) {
				if len(r.logits) != len(want) {
					t.Fatalf("%s: %d logits, want %d", label, len(r.logits), len(want))
				}
				d := modeltest.MaxAbsDiff(r.logits, want)
				t.Logf("%s: max |logit - golden| = %.3g (tolerance %g; golden logits up to %.3g); greedy %v", label, d, tol, scale, r.greedy)
				if d > tol {
					t.Errorf("%s: logits differ from golden by %.3g > %g", label, d, tol)
				}
				if !greedy {
					return
				}
				if len(r.greedy) < steps {
					t.Errorf("%s: %d greedy tokens, want at least %d", label, len(r.greedy), steps)
					return
				}
				if fmt.Sprint(r.greedy[:steps]) != fmt.Sprint(g.GreedyIDs[:steps]) {
					t.Errorf("%s: greedy ids %v, want %v (first %d steps have a clear margin)", label, r.greedy, g.GreedyIDs, steps)
				}
			}
			check("f32 exact", runCase(t, m, c, true), tol, true)
			// The defaults (flash attention, f16 KV cache) and quantized
			// files are measured; the bounds only catch gross breakage.
			check("f32 default", runCase(t, m, c, false), 0.1, false)
			// Quantization error grows with the logits' size: bound it
			// relative to the largest golden logit.
			for _, typ := range []struct {
				name string
				rel  float64
			}{{"q8_0", 0.1}, {"q4_k_m", 0.5}} {
				qm := openCase(t, c, typ.name)
				check(typ.name+" exact", runCase(t, qm, c, true), typ.rel*scale, false)
			}
		})
	}
}
