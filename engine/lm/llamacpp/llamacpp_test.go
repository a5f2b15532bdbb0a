package llamacpp

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/engine/generate"
	"github.com/blip2chat/blip2chat/engine/llamacpp/capi"
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/engine/model/modeltest"
	"github.com/blip2chat/blip2chat/weights/gguf"
)

// tinyModel writes a random tiny LLaMA (optionally re-quantized by
// llama.cpp with token_embd of type embType) and opens it.
func tinyModel(t *testing.T, tiny modeltest.TinyLlama, embType gguf.Type) (*Model, []float32) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "tiny.gguf")
	emb, err := tiny.Write(path)
	if err != nil {
		t.Fatal(err)
	}
	if embType != gguf.TypeF32 {
		lib := modeltest.Lib(t)
		p := lib.DefaultQuantizeParams()
		p.FType = 1 // MOSTLY_F16
		p.TokenEmbeddingType = int32(embType)
		p.NThread = 1
		q := filepath.Join(dir, "q.gguf")
		if err := lib.Quantize(path, q, p); err != nil {
			t.Fatal(err)
		}
		path = q
	}
	m, err := Open(path, Options{LibDir: modeltest.LibDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if m.EmbeddingType() != embType {
		t.Fatalf("token_embd is %v, want %v", m.EmbeddingType(), embType)
	}
	return m, emb
}

func newCtx(t *testing.T, m *Model, o lm.ContextOptions) *Context {
	t.Helper()
	if o.Threads == 0 {
		o.Threads = 1
	}
	c, err := m.newContext(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Feeding the rows TokenEmbeddings returns must give exactly what feeding
// the tokens gives, for every type llama.cpp may store token_embd in: the
// dequantization is llama.cpp's own.
func TestTokenEmbeddingsMatchTokens(t *testing.T) {
	ids := []int32{1, 300, 5, 299, 42, 7}
	for _, typ := range []gguf.Type{gguf.TypeF32, gguf.TypeF16, gguf.TypeQ8_0, gguf.TypeQ4_K, gguf.TypeQ6_K, gguf.TypeQ5_0} {
		t.Run(typ.String(), func(t *testing.T) {
			m, orig := tinyModel(t, modeltest.DefaultTinyLlama(), typ)
			c := newCtx(t, m, lm.ContextOptions{NCtx: 64, Exact: true, AllLogits: true})
			if err := c.AppendTokens(ids, true); err != nil {
				t.Fatal(err)
			}
			var fromTokens []float32
			for i := range ids {
				fromTokens = append(fromTokens, c.Logits(i)...)
			}
			emb, err := m.TokenEmbeddings(ids)
			if err != nil {
				t.Fatal(err)
			}
			if typ == gguf.TypeF32 {
				n := m.Info().NEmbd
				for i, id := range ids {
					if !slices.Equal(emb[i*n:(i+1)*n], orig[int(id)*n:int(id+1)*n]) {
						t.Fatalf("row of token %d differs from the table written", id)
					}
				}
			}
			if err := c.Truncate(0); err != nil {
				t.Fatal(err)
			}
			if err := c.AppendEmbeddings(emb, len(ids), true); err != nil {
				t.Fatal(err)
			}
			var fromEmb []float32
			for i := range ids {
				fromEmb = append(fromEmb, c.Logits(i)...)
			}
			if d := modeltest.MaxAbsDiff(fromTokens, fromEmb); d > 1e-5 {
				t.Errorf("%v: logits from embedding rows differ from token input by %g", typ, d)
			}
		})
	}
	m, _ := tinyModel(t, modeltest.DefaultTinyLlama(), gguf.TypeF32)
	if _, err := m.TokenEmbeddings([]int32{400}); err == nil || !strings.Contains(err.Error(), "outside the vocabulary") {
		t.Errorf("TokenEmbeddings out of range = %v", err)
	}
}

// Appends split over several llama_decode calls (NBatch smaller than the
// input) give the logits of one call, Stats count what was passed, and
// Truncate + re-append reproduces a from-scratch run.
func TestContextAppendTruncate(t *testing.T) {
	m, _ := tinyModel(t, modeltest.DefaultTinyLlama(), gguf.TypeF32)
	ids := []int32{1, 260, 261, 300, 310, 320, 330, 340, 350, 5, 6, 7, 8}
	soft := make([]float32, 3*m.Info().NEmbd)
	for i := range soft {
		soft[i] = float32(i%17)/17 - 0.5
	}
	logitsOf := func(c *Context, n int) []float32 {
		var out []float32
		for i := range n {
			l := c.Logits(i)
			if l == nil {
				t.Fatalf("no logits for row %d", i)
			}
			out = append(out, l...)
		}
		return out
	}
	one := newCtx(t, m, lm.ContextOptions{NCtx: 64, Exact: true})
	if err := one.AppendEmbeddings(soft, 3, false); err != nil {
		t.Fatal(err)
	}
	if one.Logits(0) != nil || one.Logits(-1) == nil || len(one.Logits(2)) != m.Info().NVocab {
		t.Error("without all, only the last row has logits")
	}
	if err := one.AppendTokens(ids, true); err != nil {
		t.Fatal(err)
	}
	want := logitsOf(one, len(ids))

	chunked := newCtx(t, m, lm.ContextOptions{NCtx: 64, NBatch: 4, Exact: true})
	chunked.AppendEmbeddings(soft, 3, false)
	if err := chunked.AppendTokens(ids, true); err != nil {
		t.Fatal(err)
	}
	if d := modeltest.MaxAbsDiff(logitsOf(chunked, len(ids)), want); d > 1e-5 {
		t.Errorf("chunked append differs by %g", d)
	}
	st := chunked.Stats()
	if st.TokensIn != len(ids) || st.EmbeddingRowsIn != 3 || st.Evals != 1+4 || chunked.Pos() != 3+len(ids) {
		t.Errorf("stats %+v pos %d", st, chunked.Pos())
	}
	// Truncate to the middle and append the rest again.
	if err := chunked.Truncate(3 + 5); err != nil {
		t.Fatal(err)
	}
	if err := chunked.AppendTokens(ids[5:], true); err != nil {
		t.Fatal(err)
	}
	if d := modeltest.MaxAbsDiff(logitsOf(chunked, len(ids)-5), want[5*m.Info().NVocab:]); d > 1e-5 {
		t.Errorf("after Truncate, logits differ by %g", d)
	}
	if got := chunked.Stats().TokensIn; got != len(ids)+len(ids)-5 {
		t.Errorf("TokensIn %d after the re-append, want %d", got, 2*len(ids)-5)
	}

	// The context refuses positions past the NCtx asked, though llama.cpp
	// padded its cache to 256.
	small := newCtx(t, m, lm.ContextOptions{NCtx: 10})
	if small.NCtx() != 10 {
		t.Fatalf("NCtx %d, want 10", small.NCtx())
	}
	if err := small.AppendTokens(ids, false); !errors.Is(err, lm.ErrContextFull) {
		t.Errorf("overlong append = %v, want ErrContextFull", err)
	}
	if small.Pos() != 0 {
		t.Errorf("failed append moved Pos to %d", small.Pos())
	}
	for _, bad := range []error{small.Truncate(5), small.Encode(soft, 3), small.AppendEmbeddings(soft[:5], 1, false), small.AppendTokens(nil, false), small.AppendTokens([]int32{9999}, false)} {
		if bad == nil {
			t.Error("a bad call did not fail")
		} else if strings.Contains(bad.Error(), "\n") {
			t.Errorf("error is not one line: %q", bad)
		}
	}
	if small.Pos() != 0 {
		t.Errorf("failed calls moved Pos to %d", small.Pos())
	}
}

// The sampler every backend uses (engine/generate's, in Go) must draw what
// llama.cpp's own chain draws from the same logits with the same seed.
func TestSamplerMatchesLlama(t *testing.T) {
	tiny := modeltest.DefaultTinyLlama()
	tiny.NVocab = 1500 // more than 1024 candidates: llama.cpp's top-p takes its partial-sort path
	m, _ := tinyModel(t, tiny, gguf.TypeF32)
	c := newCtx(t, m, lm.ContextOptions{NCtx: 64})
	if err := c.AppendTokens([]int32{1, 400, 401, 402}, false); err != nil {
		t.Fatal(err)
	}
	// Sharpen nothing: the random model's logits are spread enough that
	// each setting keeps several candidates.
	logits := slices.Clone(c.Logits(-1))
	for _, o := range []capi.SamplerOptions{
		{},
		{RepeatPenalty: 1.5, RepeatLastN: 8},
		{Temperature: 1, Seed: 1},
		{Temperature: 0.7, TopK: 40, Seed: 2},
		{Temperature: 1.3, TopP: 0.9, Seed: 3},
		{Temperature: 1, MinP: 0.05, Seed: 4},
		{Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1.1, RepeatLastN: 64, Seed: 5},
		{Temperature: 2, TopK: 1000, TopP: 0.5, RepeatPenalty: 1.3, RepeatLastN: 4, Seed: 6},
		{Temperature: 1, TopK: 1, Seed: 7},
	} {
		p := generate.DefaultParams()
		p.Temperature, p.TopK, p.TopP, p.MinP, p.Seed = float64(o.Temperature), int(o.TopK), float64(o.TopP), float64(o.MinP), int64(o.Seed)
		if o.TopP == 0 {
			p.TopP = 1
		}
		if o.RepeatPenalty != 0 {
			p.RepetitionPenalty, p.RepeatLastN = float64(o.RepeatPenalty), int(o.RepeatLastN)
		}
		ls, err := m.Llama().NewSampler(o)
		if err != nil {
			t.Fatal(err)
		}
		gs, err := generate.NewSampler(p, m.Info().NVocab)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []int32{400, 401} { // prompt tokens for the penalty
			ls.Accept(id)
			gs.Accept(id)
		}
		var a, b []int32
		for range 200 {
			id, err := ls.Sample(c.Llama(), -1)
			if err != nil {
				t.Fatal(err)
			}
			a = append(a, id)
			b = append(b, gs.SampleLogits(logits))
		}
		ls.Close()
		if !slices.Equal(a, b) {
			t.Errorf("%+v:\nllama.cpp %v\n       Go %v", o, a[:20], b[:20])
		}
		distinct := map[int32]bool{}
		for _, id := range a {
			distinct[id] = true
		}
		t.Logf("%+v: 200 draws agree (%d distinct tokens)", o, len(distinct))
	}
}

func TestOpenErrors(t *testing.T) {
	lib := modeltest.LibDir(t)
	dir := t.TempDir()
	trunc := filepath.Join(dir, "trunc.gguf")
	tiny := modeltest.DefaultTinyLlama()
	full := filepath.Join(dir, "full.gguf")
	if _, err := tiny.Write(full); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(full)
	os.WriteFile(trunc, data[:len(data)/2], 0o644)
	flipped := filepath.Join(dir, "flipped.gguf")
	bad := slices.Clone(data)
	bad[9] ^= 0x40 // tensor count
	os.WriteFile(flipped, bad, 0o644)
	opt := filepath.Join(dir, "opt.gguf")
	w := gguf.NewWriter()
	w.Add("general.architecture", "blip2-opt")
	if err := gguf.WriteFile(opt, w, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.gguf"), "no such file"},
		{trunc, "trunc.gguf"},
		{flipped, "flipped.gguf"},
		{opt, "blip2-opt"},
	} {
		_, err := Open(tc.path, Options{LibDir: lib})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Open(%s) = %v, want one line naming %q", filepath.Base(tc.path), err, tc.want)
		}
	}
	if m, err := Open(full, Options{LibDir: lib}); err != nil || !strings.HasPrefix(m.Info().Backend, "llama.cpp ") {
		t.Errorf("Open(full.gguf): %v", err)
	} else {
		m.Close()
	}
}

// TestC4ContextBeyondMemory (C4): a context whose KV cache is larger than
// the machine's memory is refused at once, instead of llama.cpp allocating
// for seconds before it fails.
func TestC4ContextBeyondMemory(t *testing.T) {
	if lm.PhysicalMemory() == 0 {
		t.Skip("the machine's memory is unknown here")
	}
	m, _ := tinyModel(t, modeltest.DefaultTinyLlama(), gguf.TypeF32)
	start := time.Now()
	_, err := m.NewContext(lm.ContextOptions{NCtx: math.MaxInt32, Threads: 1})
	if err == nil || !strings.Contains(err.Error(), "for its KV cache, more than the") || time.Since(start) > 2*time.Second {
		t.Fatalf("a context of 2^31 positions: %v after %v", err, time.Since(start))
	}
	if c, err := m.NewContext(lm.ContextOptions{NCtx: 256, Threads: 1}); err != nil {
		t.Fatal(err)
	} else {
		c.Close()
	}
}
