package opt

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/engine/generate"
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/lmconv"
)

// scratchLogits runs soft rows and then ids in a fresh context and returns
// the logits of the last len(last) ... rows: every row of the final
// tokens' span [from, len(ids)).
func scratchLogits(t *testing.T, m *Model, soft []float32, q int, ids []int32, from int) [][]float32 {
	t.Helper()
	c := newCtx(t, m, lm.ContextOptions{AllLogits: true})
	if q > 0 {
		if err := c.AppendEmbeddings(soft, q, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.AppendTokens(ids, true); err != nil {
		t.Fatal(err)
	}
	var out [][]float32
	for i := from; i < len(ids); i++ {
		out = append(out, append([]float32(nil), c.Logits(i)...))
	}
	return out
}

// TestMultiTurn: a second turn feeds only its new tokens to the model (the
// KV cache holds the image, the first turn and the answer), and its logits
// equal a from-scratch run over the whole sequence.
func TestMultiTurn(t *testing.T) {
	g := loadGolden(t)
	m := openGolden(t, "f32")
	c := newCtx(t, m, lm.ContextOptions{})
	if err := c.AppendEmbeddings(g.soft, g.q, false); err != nil {
		t.Fatal(err)
	}
	if err := c.AppendTokens(g.ids, false); err != nil {
		t.Fatal(err)
	}
	o := generate.Options{Params: generate.DefaultParams()}
	o.MaxTokens = 5
	r, err := generate.New(m, c).Decode(context.Background(), o)
	answer := r.IDs
	if err != nil || len(answer) != 5 {
		t.Fatalf("generate: %v %v", answer, err)
	}
	turn2, err := m.Tokenize(" Question: what color is it? Answer:", false)
	if err != nil {
		t.Fatal(err)
	}
	before := c.Stats()
	if err := c.AppendTokens(turn2, true); err != nil {
		t.Fatal(err)
	}
	after := c.Stats()
	if d := after.TokensIn - before.TokensIn; d != len(turn2) || after.EmbeddingRowsIn != before.EmbeddingRowsIn || after.Evals != before.Evals+1 {
		t.Errorf("second turn: %d tokens, %d rows, %d evals passed; want %d tokens, 0 rows, 1 eval",
			d, after.EmbeddingRowsIn-before.EmbeddingRowsIn, after.Evals-before.Evals, len(turn2))
	}
	if c.Pos() != g.q+len(g.ids)+len(answer)+len(turn2) {
		t.Errorf("pos %d", c.Pos())
	}

	full := append(append(append([]int32(nil), g.ids...), answer...), turn2...)
	ref := scratchLogits(t, m, g.soft, g.q, full, len(full)-len(turn2))
	var d float64
	for i := range turn2 {
		d = max(d, maxAbsDiff(c.Logits(i), ref[i]))
	}
	t.Logf("second turn (%d new tokens) vs from scratch (%d positions): max abs %.3g", len(turn2), g.q+len(full), d)
	if d > 1e-4 {
		t.Errorf("second-turn logits deviate from a from-scratch run by %.3g", d)
	}
}

// TestTruncate: dropping old turns keeps the soft tokens, and what follows
// is computed as if the dropped tokens had never been there; appends past
// NCtx fail with ErrContextFull and change nothing.
func TestTruncate(t *testing.T) {
	g := loadGolden(t)
	m := openGolden(t, "f32")
	nCtx := g.q + len(g.ids) + 4
	c := newCtx(t, m, lm.ContextOptions{NCtx: nCtx})
	if c.NCtx() != nCtx {
		t.Fatalf("NCtx %d, want %d", c.NCtx(), nCtx)
	}
	if err := c.AppendEmbeddings(g.soft, g.q, false); err != nil {
		t.Fatal(err)
	}
	if err := c.AppendTokens(g.ids, false); err != nil {
		t.Fatal(err)
	}
	err := c.AppendTokens([]int32{5, 6, 7, 8, 9}, false)
	if !errors.Is(err, lm.ErrContextFull) || c.Pos() != g.q+len(g.ids) {
		t.Fatalf("append past NCtx: %v, pos %d", err, c.Pos())
	}
	if err := c.Truncate(g.q); err != nil {
		t.Fatal(err)
	}
	if c.Logits(-1) != nil {
		t.Error("logits kept after Truncate")
	}
	next := []int32{2, 100, 200, 300, 400}
	if err := c.AppendTokens(next, true); err != nil {
		t.Fatal(err)
	}
	ref := scratchLogits(t, m, g.soft, g.q, next, 0)
	var d float64
	for i := range next {
		d = max(d, maxAbsDiff(c.Logits(i), ref[i]))
	}
	if d > 1e-4 {
		t.Errorf("after truncation: logits deviate by %.3g from a fresh run", d)
	}
	for _, bad := range []int{-1, c.Pos() + 1} {
		if err := c.Truncate(bad); err == nil {
			t.Errorf("Truncate(%d) accepted", bad)
		}
	}
}

// TestBatchingAndGrowth: appends split into small batches, and a KV cache
// that grows past its first capacity, give the same logits as one pass.
func TestBatchingAndGrowth(t *testing.T) {
	m := writeTiny(t, func() Hyper { h := tinyShape(); h.MaxPositions = 600; return h }(), gguf.TypeF32)
	ids := make([]int32, 400)
	for i := range ids {
		ids[i] = int32(4 + (i*37)%290)
	}
	ref := scratchLogits(t, m, nil, 0, ids, 390)

	c := newCtx(t, m, lm.ContextOptions{NBatch: 7})
	for _, span := range [][2]int{{0, 200}, {200, 299}, {299, 390}} {
		if err := c.AppendTokens(ids[span[0]:span[1]], false); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.AppendTokens(ids[390:], true); err != nil {
		t.Fatal(err)
	}
	var d float64
	for i := range ref {
		d = max(d, maxAbsDiff(c.Logits(i), ref[i]))
	}
	if d > 1e-5*max(1, maxAbs(ref[0])) {
		t.Errorf("batched and grown: deviation %.3g", d)
	}
	if st := c.Stats(); st.Evals != 29+15+13+2 || st.TokensIn != 400 {
		t.Errorf("stats %+v: want 59 evals of at most 7 rows, 400 tokens", st)
	}
	// Only the last row is kept without all.
	if err := c.AppendTokens([]int32{5, 6}, false); err != nil {
		t.Fatal(err)
	}
	if c.Logits(0) != nil || c.Logits(-1) == nil || c.Logits(1) == nil {
		t.Error("without all, only the last row's logits must be available")
	}
}

// TestErrors: bad input gets an error, never a panic.
func TestErrors(t *testing.T) {
	m := writeTiny(t, tinyShape(), gguf.TypeQ8_0)
	c := newCtx(t, m, lm.ContextOptions{})
	E := m.Info().NEmbd
	for name, err := range map[string]error{
		"encode":      c.Encode(make([]float32, E), 1),
		"short rows":  c.AppendEmbeddings(make([]float32, E-1), 1, false),
		"zero rows":   c.AppendEmbeddings(nil, 0, false),
		"no tokens":   c.AppendTokens(nil, false),
		"bad token":   c.AppendTokens([]int32{3, 300}, false),
		"neg token":   c.AppendTokens([]int32{-1}, false),
		"embed token": func() error { _, err := m.TokenEmbeddings([]int32{300}); return err }(),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if c.Pos() != 0 || c.Stats().TokensIn != 0 {
		t.Errorf("failed appends changed the context: pos %d, %+v", c.Pos(), c.Stats())
	}
	if _, err := m.newContext(lm.ContextOptions{NCtx: -1}); err == nil {
		t.Error("negative NCtx accepted")
	}
	if err := m.Close(); err == nil || !strings.Contains(err.Error(), "still open") {
		t.Errorf("Close with an open context: %v", err)
	}
	c.Close()
	if err := c.AppendTokens([]int32{5}, false); err == nil || c.Logits(-1) != nil || c.Truncate(0) == nil {
		t.Error("a closed context still works")
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := m.NewContext(lm.ContextOptions{}); err == nil {
		t.Error("NewContext on a closed model")
	}
	if _, err := m.TokenEmbeddings([]int32{5}); err == nil {
		t.Error("TokenEmbeddings on a closed model")
	}
	// A context is capped at the learned positions.
	m2 := writeTiny(t, tinyShape(), gguf.TypeF32)
	c2 := newCtx(t, m2, lm.ContextOptions{NCtx: 1 << 20})
	if c2.NCtx() != tinyShape().MaxPositions {
		t.Errorf("NCtx %d, want the %d learned positions", c2.NCtx(), tinyShape().MaxPositions)
	}
}

// TestOpenErrors: files that are not OPT models are refused by name.
func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	w := gguf.NewWriter()
	w.Add("general.architecture", "llama")
	path := dir + "/llama.gguf"
	if err := gguf.WriteFile(path, w, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "llama.gguf") || !strings.Contains(err.Error(), "blip2-opt") {
		t.Errorf("llama file: %v", err)
	}
	if _, err := Open(dir + "/missing.gguf"); err == nil {
		t.Error("missing file opened")
	}
}

// TestOpenFile: a GGUF file opened to read its architecture (as
// engine/model does) opens as the model; Info names the backend.
func TestOpenFile(t *testing.T) {
	path := convertGolden(t, "f16")
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := OpenFile(f, path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if in := m.Info(); in.Arch != lmconv.OPTArch || !strings.HasSuffix(in.Desc, "F16") || in.Backend != "Go (OPT)" {
		t.Errorf("info %+v", in)
	}
}

// TestAppendPrompt: soft tokens and prompt in one AppendPrompt give the
// logits of the two Appends, and transformers' within the golden
// tolerance, in one pass or in passes that split the prompt anywhere
// (NBatch 7 puts the boundary between soft rows and tokens inside a pass);
// Stats count the rows as the two calls do; bad input changes nothing.
func TestAppendPrompt(t *testing.T) {
	g := loadGolden(t)
	for _, wt := range goldenTypes {
		for _, nb := range []int{0, 7} {
			t.Run(fmt.Sprintf("%s/batch%d", wt.name, nb), func(t *testing.T) {
				m := openGolden(t, wt.name)
				o := lm.ContextOptions{AllLogits: true, NBatch: nb}
				ref := runGolden(t, m, g, o)
				c := newCtx(t, m, o)
				if err := c.AppendPrompt(g.soft, g.q, g.ids, true); err != nil {
					t.Fatal(err)
				}
				rows := g.q + len(g.ids)
				var got []float32
				for i := range rows {
					got = append(got, c.Logits(i)...)
				}
				if len(got) != len(ref) {
					t.Fatalf("%d logits, want %d", len(got), len(ref))
				}
				// One pass changes how rows are grouped into products
				// (GEMM or, for a few rows, GEMV): rounding only
				// (measured: at most 1.4e-5).
				tol := 1e-4
				if wt.name == "q8_0" {
					tol = 1e-3 // an activation near a rounding edge of int8
				}
				d, dg := maxAbsDiff(got, ref), maxAbsDiff(got, g.logits)
				t.Logf("one pass vs two Appends: max abs %.3g; vs golden %.3g", d, dg)
				if d > tol || dg > wt.tol {
					t.Errorf("deviation %.3g from two Appends (tolerance %g), %.3g from golden (%g)", d, tol, dg, wt.tol)
				}
				wantEvals := 1
				if nb > 0 {
					wantEvals = (rows + nb - 1) / nb
				}
				if st := c.Stats(); st.EmbeddingRowsIn != g.q || st.TokensIn != len(g.ids) || st.Evals != wantEvals || c.Pos() != rows {
					t.Errorf("stats %+v, pos %d: want %d rows, %d tokens, %d evals, pos %d", st, c.Pos(), g.q, len(g.ids), wantEvals, rows)
				}
			})
		}
	}
	m := openGolden(t, "f32")
	c := newCtx(t, m, lm.ContextOptions{NCtx: g.q + len(g.ids)})
	for _, tc := range []struct {
		name string
		soft []float32
		n    int
		ids  []int32
	}{
		{"rows do not match n", g.soft[:len(g.soft)-1], g.q, g.ids},
		{"negative n", nil, -1, g.ids},
		{"empty", nil, 0, nil},
		{"token out of range", g.soft, g.q, []int32{int32(g.vocab)}},
		{"negative token", g.soft, g.q, []int32{-1}},
		{"too long", g.soft, g.q, append(append([]int32(nil), g.ids...), 5)},
	} {
		if err := c.AppendPrompt(tc.soft, tc.n, tc.ids, false); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
		if c.Pos() != 0 || c.Stats() != (lm.Stats{}) {
			t.Errorf("%s: pos %d, stats %+v after an error", tc.name, c.Pos(), c.Stats())
		}
	}
}
