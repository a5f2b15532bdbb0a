package opt

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/engine/generate"
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/lmconv"
	"github.com/blip2chat/blip2chat/weights/safetensors"
)

const goldenDir = "../../../testdata/golden"

// golden is the blip2-opt reference case.
type golden struct {
	soft    []float32 // language_model_inputs [Q, E]
	q, e    int
	ids     []int32   // input_ids: BOS + prompt
	logits  []float32 // [Q+N, V]
	vocab   int
	greedy  []int32
	gaps    []float64
	seqLogs []float32 // greedy_sequence_logits [Q+N+G-1, V]
}

func loadGolden(t testing.TB) *golden {
	t.Helper()
	dir := filepath.Join(goldenDir, "blip2-opt")
	f, err := safetensors.Open(filepath.Join(dir, "golden.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	get := func(name string) safetensors.Tensor {
		tt, ok := f.Tensor(name)
		if !ok {
			t.Fatalf("golden tensor %s missing", name)
		}
		return tt
	}
	g := &golden{}
	soft := get("language_model_inputs")
	g.q, g.e = soft.Shape[1], soft.Shape[2]
	if g.soft, err = soft.Float32(); err != nil {
		t.Fatal(err)
	}
	ids, err := get("input_ids").Int64()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		g.ids = append(g.ids, int32(id))
	}
	lt := get("logits")
	g.vocab = lt.Shape[1]
	if g.logits, err = lt.Float32(); err != nil {
		t.Fatal(err)
	}
	if g.seqLogs, err = get("greedy_sequence_logits").Float32(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		GreedyIDs []int32 `json:"greedy_ids"`
		Steps     []struct {
			Gap float64 `json:"top2_gap"`
		} `json:"greedy_steps"`
	}
	if err := json.Unmarshal(data, &meta); err != nil {
		t.Fatal(err)
	}
	g.greedy = meta.GreedyIDs
	for _, s := range meta.Steps {
		g.gaps = append(g.gaps, s.Gap)
	}
	return g
}

// convertGolden converts the blip2-opt checkpoint's language model to an
// llm.gguf of the given --llm-type in a temporary folder.
func convertGolden(t testing.TB, typ string) string {
	t.Helper()
	out := t.TempDir()
	if _, err := convert.Convert(context.Background(), filepath.Join(goldenDir, "blip2-opt", "hf"), out, convert.Options{LLMType: typ}); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(out, lmconv.FileName)
}

func openGolden(t testing.TB, typ string) *Model {
	t.Helper()
	m, err := Open(convertGolden(t, typ))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func newCtx(t testing.TB, m *Model, o lm.ContextOptions) *Context {
	t.Helper()
	c, err := m.newContext(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// runGolden feeds the soft tokens and input_ids (all logits kept) and
// returns the [Q+N, V] logits.
func runGolden(t testing.TB, m *Model, g *golden, o lm.ContextOptions) []float32 {
	t.Helper()
	c := newCtx(t, m, o)
	var out []float32
	if err := c.AppendEmbeddings(g.soft, g.q, true); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < g.q; i++ {
		out = append(out, c.Logits(i)...)
	}
	if err := c.AppendTokens(g.ids, true); err != nil {
		t.Fatal(err)
	}
	for i := range g.ids {
		out = append(out, c.Logits(i)...)
	}
	return out
}

func maxAbsDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

func maxAbs(a []float32) float64 {
	var d float64
	for _, v := range a {
		d = max(d, math.Abs(float64(v)))
	}
	return d
}

// goldenTypes are the weight types with their logit tolerance (absolute;
// the reference logits reach 51). f32 is the acceptance bound (measured
// 1.3e-5); f16 and q8_0 are about twice the deviation measured on this case
// (f16 0.014, q8_0 0.38 on the prompt and 0.46 along the greedy steps,
// where the q8_0 GEMV also rounds the activations to int8, as llama.cpp
// does): the quantization error of random 64-wide weights, not a bug, as
// TestReference shows with the same weights dequantized.
var goldenTypes = []struct {
	name string
	tol  float64
}{
	{"f32", 1e-4},
	{"f16", 3e-2},
	{"q8_0", 0.8},
}

// TestGoldenLogits: the logits at every position of [soft tokens ; BOS +
// prompt] match transformers' (the machine's kernels; make test runs it
// again on the portable ones, BLIP2CHAT_NOSIMD=1, and on AVX2).
func TestGoldenLogits(t *testing.T) {
	g := loadGolden(t)
	for _, wt := range goldenTypes {
		name := wt.name
		t.Run(name, func(t *testing.T) {
			m := openGolden(t, wt.name)
			if m.Info().NEmbd != g.e || m.Info().NVocab != g.vocab {
				t.Fatalf("info %+v: want NEmbd %d, NVocab %d", m.Info(), g.e, g.vocab)
			}
			got := runGolden(t, m, g, lm.ContextOptions{AllLogits: true})
			if len(got) != len(g.logits) {
				t.Fatalf("%d logits, want %d", len(got), len(g.logits))
			}
			d := maxAbsDiff(got, g.logits)
			t.Logf("%s: max |logit - golden| = %.3g over %d positions (max |golden| %.3g)", name, d, len(got)/g.vocab, maxAbs(g.logits))
			if d > wt.tol {
				t.Errorf("%s: max logit deviation %.3g > %.3g", name, d, wt.tol)
			}
		})
	}
}

// TestGoldenGreedy: greedy generation through engine/generate picks the
// reference tokens while the reference's top-2 gap is clear (>= 0.05), and
// the logits along the way match greedy_sequence_logits.
func TestGoldenGreedy(t *testing.T) {
	g := loadGolden(t)
	for _, wt := range goldenTypes {
		t.Run(wt.name, func(t *testing.T) {
			m := openGolden(t, wt.name)
			c := newCtx(t, m, lm.ContextOptions{})
			if err := c.AppendEmbeddings(g.soft, g.q, false); err != nil {
				t.Fatal(err)
			}
			if err := c.AppendTokens(g.ids, false); err != nil {
				t.Fatal(err)
			}
			V := g.vocab
			var dev float64
			o := generate.Options{Params: generate.DefaultParams(),
				OnStep: func(step int, logits []float32, id int32) {
					row := g.q + len(g.ids) - 1 + step
					if row < len(g.seqLogs)/V && step < len(g.greedy) && g.greedy[step] == id {
						dev = max(dev, maxAbsDiff(logits, g.seqLogs[row*V:(row+1)*V]))
					}
				},
			}
			o.MaxTokens = len(g.greedy)
			res, err := generate.New(m, c).Decode(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			n := len(g.greedy)
			for i, gap := range g.gaps {
				if gap < 0.05 {
					n = i
					break
				}
			}
			if len(res.IDs) < n || !slices.Equal(res.IDs[:n], g.greedy[:n]) {
				t.Errorf("greedy ids %v, want %v (first %d compared)", res.IDs, g.greedy, n)
			}
			t.Logf("%s: %d/%d greedy ids compared and equal; max logit deviation along the greedy sequence %.3g", wt.name, n, len(g.greedy), dev)
			if dev > wt.tol {
				t.Errorf("greedy-step logits deviate by %.3g > %.3g", dev, wt.tol)
			}
			st := c.Stats()
			if st.EmbeddingRowsIn != g.q || st.TokensIn != len(g.ids)+len(res.IDs) {
				t.Errorf("stats %+v: want %d rows and %d tokens in", st, g.q, len(g.ids)+len(res.IDs))
			}
		})
	}
}

// TestGoldenTokenization: the tokenizer rebuilt from the converted GGUF
// gives the reference ids of every string (after our BOS), and the golden
// prompt's ids.
func TestGoldenTokenization(t *testing.T) {
	m := openGolden(t, "f32")
	data, err := os.ReadFile(filepath.Join(goldenDir, "tokenization.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref map[string][]struct {
		Text string  `json:"text"`
		IDs  []int32 `json:"ids"`
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	cases := ref["gpt2_bytelevel_bpe_raw"]
	if len(cases) == 0 {
		t.Fatal("no gpt2_bytelevel_bpe_raw strings in tokenization.json")
	}
	info := m.Info()
	if !info.AddBOS || info.BOS != 2 || info.EOS != 2 {
		t.Fatalf("info %+v: want AddBOS, BOS = EOS = 2 (</s>)", info)
	}
	for _, c := range cases {
		got, err := m.Tokenize(c.Text, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 || got[0] != info.BOS {
			t.Errorf("%q: %v does not start with BOS", c.Text, got)
			continue
		}
		if !slices.Equal(got[1:], c.IDs) {
			t.Errorf("%q:\n got %v\nwant %v", c.Text, got[1:], c.IDs)
		}
		raw, _ := m.Tokenize(c.Text, false)
		if !slices.Equal(raw, got[1:]) {
			t.Errorf("%q: without special tokens %v", c.Text, raw)
		}
		// The bytes of the tokens are the text again.
		var b []byte
		for _, id := range raw {
			b = append(b, m.TokenBytes(id)...)
		}
		if string(b) != c.Text {
			t.Errorf("TokenBytes join to %q, want %q", b, c.Text)
		}
	}
	g := loadGolden(t)
	prompt, _ := m.Tokenize("Question: what is in the image? Answer:", true)
	if !slices.Equal(prompt, g.ids) {
		t.Errorf("prompt ids %v, want input_ids %v", prompt, g.ids)
	}
	if len(m.TokenBytes(info.EOS)) != 0 || !m.IsEOG(info.EOS) || m.IsEOG(29) {
		t.Errorf("</s> must be an end-of-generation control token with no bytes")
	}
	if p := m.Piece(info.EOS); p != "</s>" {
		t.Errorf("Piece(EOS) = %q, want \"</s>\" (control tokens are shown)", p)
	}
	if p, want := m.Piece(prompt[1]), string(m.TokenBytes(prompt[1])); p != want {
		t.Errorf("Piece(%d) = %q, want its bytes %q", prompt[1], p, want)
	}
}

// TestConvertRegistered: `blip2chat convert`'s library entry point
// (weights/convert with the OPT converter registered) writes an llm.gguf
// that this engine opens and that gives the golden logits; no
// language-model tensor is left unused, and the default type is q8_0.
func TestConvertRegistered(t *testing.T) {
	g := loadGolden(t)
	for _, c := range []struct{ llmType, want string }{{"f32", "F32"}, {"", "Q8_0"}} {
		out := filepath.Join(t.TempDir(), "model")
		res, err := convert.Convert(context.Background(), filepath.Join(goldenDir, "blip2-opt", "hf"), out,
			convert.Options{LLMType: c.llmType})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range res.Unused {
			if strings.HasPrefix(u, "language_model.") {
				t.Errorf("%s unused", u)
			}
		}
		m, err := Open(filepath.Join(out, "llm.gguf"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(m.Info().Desc, c.want) {
			t.Errorf("llm-type %q: desc %q", c.llmType, m.Info().Desc)
		}
		if c.llmType == "f32" {
			if d := maxAbsDiff(runGolden(t, m, g, lm.ContextOptions{AllLogits: true}), g.logits); d > 1e-4 {
				t.Errorf("logits deviate by %.3g", d)
			}
		}
		m.Close()
	}
	_, err := convert.Convert(context.Background(), filepath.Join(goldenDir, "blip2-opt", "hf"), filepath.Join(t.TempDir(), "m"),
		convert.Options{LLMType: "q4_k_m"})
	if err == nil || !strings.Contains(err.Error(), "not available for OPT") {
		t.Errorf("q4_k_m: %v", err)
	}
}
