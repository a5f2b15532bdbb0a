package capi

import (
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/engine/llamacpp/llamatest"
	"github.com/blip2chat/blip2chat/weights/gguf"
)

// tinyLlama is a 2-layer LLaMA with random F32 weights and a small
// SentencePiece vocabulary, written by the test so that no model has to be
// downloaded. Its vocabulary is built so that the expected tokenizations
// follow from SentencePiece's rules by hand (see TestTokenize).
type tinyLlama struct {
	llamatest.Llama
	vocab   []string
	tokEmbd []float32 // [n_vocab][n_embd], once written
}

const (
	tokUnk, tokBOS, tokEOS = llamatest.Unk, llamatest.BOS, llamatest.EOS
	firstByteTok           = llamatest.FirstByte // <0x00>..<0xFF> follow
)

// Pieces after the byte tokens. Every intermediate merge of "▁hello" and
// "▁world" is present so SentencePiece's bigram merging reaches the words.
var tinyPieces = []string{"▁", "▁h", "ll", "▁he", "▁hell", "▁hello", "▁w", "or", "ld", "▁wor", "▁world", "e", "h", "l", "o", "w", "r", "d",
	"▁" + strings.Repeat("ab", 60)} // longer than TokenToPiece's first buffer

func newTinyLlama() *tinyLlama {
	t := &tinyLlama{Llama: llamatest.Llama{NEmbd: 32, NHead: 4, NHeadKV: 2, NFF: 64, NLayer: 2, NCtxTrain: 256,
		Pieces: tinyPieces, Name: "tiny-test-llama", Std: 0.5}}
	t.vocab, _ = t.Vocab()
	return t
}

func (t *tinyLlama) id(piece string) int32 {
	i := slices.Index(t.vocab, piece)
	if i < 0 {
		panic("no piece " + piece)
	}
	return int32(i)
}

// write stores the model at path with random weights from seed.
func (t *tinyLlama) write(path string, seed uint64) error {
	t.Seed = seed
	emb, err := t.Write(path)
	t.tokEmbd = emb
	return err
}

// row is the token embedding of tok.
func (t *tinyLlama) row(tok int32) []float32 {
	return t.tokEmbd[int(tok)*t.NEmbd : int(tok+1)*t.NEmbd]
}

// loadTiny writes the tiny model and loads it.
func loadTiny(t *testing.T) (*Library, *tinyLlama, *Model) {
	t.Helper()
	l := testLib(t)
	tl := newTinyLlama()
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := tl.write(path, 1); err != nil {
		t.Fatal(err)
	}
	m, err := l.LoadModel(path, l.DefaultModelParams())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return l, tl, m
}

func TestModelInfo(t *testing.T) {
	_, tl, m := loadTiny(t)
	if m.NVocab() != len(tl.vocab) || m.NEmbd() != tl.NEmbd || m.NEmbdInp() != tl.NEmbd || m.NCtxTrain() != tl.NCtxTrain {
		t.Errorf("vocab %d embd %d/%d ctx %d, want %d %d %d", m.NVocab(), m.NEmbd(), m.NEmbdInp(), m.NCtxTrain(), len(tl.vocab), tl.NEmbd, tl.NCtxTrain)
	}
	if m.BOS() != tokBOS || m.EOS() != tokEOS || !m.AddBOS() || m.AddEOS() {
		t.Errorf("bos %d eos %d add_bos %v add_eos %v", m.BOS(), m.EOS(), m.AddBOS(), m.AddEOS())
	}
	if !m.IsEOG(tokEOS) || m.IsEOG(tl.id("▁hello")) || m.IsEOG(-1) || m.IsEOG(int32(m.NVocab())) {
		t.Error("IsEOG wrong")
	}
	if m.HasEncoder() || !m.HasDecoder() || m.DecoderStartToken() != -1 {
		t.Errorf("encoder %v decoder %v start %d", m.HasEncoder(), m.HasDecoder(), m.DecoderStartToken())
	}
	if v, ok := m.Meta("general.name"); !ok || v != "tiny-test-llama" {
		t.Errorf("Meta(general.name) = %q, %v", v, ok)
	}
	if v, ok := m.Meta("llama.block_count"); !ok || v != "2" {
		t.Errorf("Meta(llama.block_count) = %q, %v", v, ok)
	}
	if _, ok := m.Meta("no.such.key"); ok {
		t.Error("Meta of a missing key is ok")
	}
	if d := m.Desc(); !strings.HasPrefix(d, "llama ") || !strings.Contains(d, "F32") {
		t.Errorf("Desc = %q", d)
	}
}

func TestTokenize(t *testing.T) {
	_, tl, m := loadTiny(t)
	hello, world := tl.id("▁hello"), tl.id("▁world")
	byteOf := func(b byte) int32 { return firstByteTok + int32(b) }
	for _, tc := range []struct {
		text           string
		special, parse bool
		want           []int32
	}{
		{"hello world", true, false, []int32{tokBOS, hello, world}},
		{"hello world", false, false, []int32{hello, world}},
		// "i" is not a piece: byte fallback.
		{"hi", false, false, []int32{tl.id("▁h"), byteOf('i')}},
		// Two bytes of UTF-8 as two byte tokens.
		{"é", false, false, []int32{tl.id("▁"), byteOf(0xC3), byteOf(0xA9)}},
		// parseSpecial turns "</s>" into EOS; without it the text is bytes.
		{"hello</s>", false, true, []int32{hello, tokEOS}},
		{"</s>", false, false, []int32{tl.id("▁"), byteOf('<'), byteOf('/'), byteOf('s'), byteOf('>')}},
		{"", false, false, []int32{}},
		{"", true, false, []int32{tokBOS}},
	} {
		got, err := m.Tokenize(tc.text, tc.special, tc.parse)
		if err != nil {
			t.Errorf("Tokenize(%q): %v", tc.text, err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Tokenize(%q, %v, %v) = %v, want %v", tc.text, tc.special, tc.parse, got, tc.want)
		}
	}

	// Long text: the token buffer sized from the text always suffices.
	long := strings.TrimSuffix(strings.Repeat("hello world ", 500), " ")
	got, err := m.Tokenize(long, true, false)
	if err != nil || len(got) != 1001 {
		t.Errorf("long text: %d tokens, %v; want 1001", len(got), err)
	}
}

func TestTokenToPiece(t *testing.T) {
	_, tl, m := loadTiny(t)
	longPiece := tinyPieces[len(tinyPieces)-1]
	for _, tc := range []struct {
		tok     int32
		special bool
		want    string
	}{
		{tl.id("▁hello"), false, " hello"},
		{tl.id("ll"), false, "ll"},
		{firstByteTok + 'i', false, "i"},
		{firstByteTok + 0xC3, false, "\xc3"},
		{tokEOS, false, ""},
		{tokEOS, true, "</s>"},
		{tl.id(longPiece), false, strings.ReplaceAll(longPiece, "▁", " ")},
	} {
		got, err := m.TokenToPiece(tc.tok, tc.special)
		if err != nil || got != tc.want {
			t.Errorf("TokenToPiece(%d, %v) = %q, %v; want %q", tc.tok, tc.special, got, err, tc.want)
		}
	}
	for _, bad := range []int32{-1, int32(m.NVocab())} {
		if _, err := m.TokenToPiece(bad, false); err == nil {
			t.Errorf("TokenToPiece(%d) did not fail", bad)
		}
	}
	// Round trip: the pieces of a tokenization spell the text (after the
	// dummy-prefix space).
	text := "hello world hi é"
	toks, err := m.Tokenize(text, false, false)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, tok := range toks {
		p, err := m.TokenToPiece(tok, false)
		if err != nil {
			t.Fatal(err)
		}
		sb.WriteString(p)
	}
	if got := strings.TrimPrefix(sb.String(), " "); got != text {
		t.Errorf("round trip %q, want %q", got, text)
	}
}

func newTestContext(t *testing.T, m *Model, nCtx, nBatch uint32) *Context {
	t.Helper()
	p := m.lib.DefaultContextParams()
	p.NCtx, p.NBatch, p.NUbatch = nCtx, nBatch, nBatch
	p.NThreads, p.NThreadsBatch = 2, 2
	c, err := m.NewContext(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func maxDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

func TestDecode(t *testing.T) {
	_, tl, m := loadTiny(t)
	c := newTestContext(t, m, 64, 16)
	prompt := []int32{tokBOS, tl.id("▁hello"), tl.id("▁world")}

	// Whole prompt at once, logits of every row.
	b := TokenBatch(prompt, 0)
	b.Logits = []bool{true, true, true}
	if err := c.Decode(b); err != nil {
		t.Fatal(err)
	}
	full := make([][]float32, 3)
	for i := range full {
		l, err := c.Logits(i)
		if err != nil {
			t.Fatal(err)
		}
		if len(l) != m.NVocab() {
			t.Fatalf("%d logits, want %d", len(l), m.NVocab())
		}
		for _, x := range l {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("row %d: logit %v", i, x)
			}
		}
		full[i] = slices.Clone(l)
	}
	if maxDiff(full[0], full[1]) == 0 {
		t.Error("rows 0 and 1 have identical logits")
	}
	if last, _ := c.Logits(-1); maxDiff(last, full[2]) != 0 {
		t.Error("Logits(-1) is not the last row")
	}
	if got := c.MemorySeqPosMax(0); got != 2 {
		t.Errorf("MemorySeqPosMax = %d, want 2", got)
	}

	// Step by step through the KV cache: the same logits.
	c.MemoryClear(true)
	if got := c.MemorySeqPosMax(0); got != -1 {
		t.Errorf("after clear MemorySeqPosMax = %d", got)
	}
	if err := c.Decode(TokenBatch(prompt[:2], 0)); err != nil {
		t.Fatal(err)
	}
	l, _ := c.Logits(-1)
	t.Logf("incremental vs whole batch: max |diff| %g", maxDiff(l, full[1]))
	if d := maxDiff(l, full[1]); d > 1e-4 {
		t.Errorf("incremental row 1 differs by %g", d)
	}
	if err := c.Decode(TokenBatch(prompt[2:], 2)); err != nil {
		t.Fatal(err)
	}
	l, _ = c.Logits(0)
	if d := maxDiff(l, full[2]); d > 1e-4 {
		t.Errorf("incremental row 2 differs by %g", d)
	}

	// The same prompt given as embedding rows (what BLIP-2's soft tokens
	// are) gives the same logits as the token ids.
	c.MemoryClear(true)
	var embd []float32
	for _, tok := range prompt {
		embd = append(embd, tl.row(tok)...)
	}
	if err := c.Decode(EmbdBatch(embd, tl.NEmbd, 0)); err != nil {
		t.Fatal(err)
	}
	l, _ = c.Logits(-1)
	t.Logf("embedding vs token batch: max |diff| %g", maxDiff(l, full[2]))
	if d := maxDiff(l, full[2]); d > 1e-4 {
		t.Errorf("embedding batch differs from token batch by %g", d)
	}
	// Mixed: embeddings then tokens, continuing the sequence.
	c.MemoryClear(true)
	if err := c.Decode(EmbdBatch(embd[:2*tl.NEmbd], tl.NEmbd, 0)); err != nil {
		t.Fatal(err)
	}
	if err := c.Decode(TokenBatch(prompt[2:], 2)); err != nil {
		t.Fatal(err)
	}
	l, _ = c.Logits(-1)
	if d := maxDiff(l, full[2]); d > 1e-4 {
		t.Errorf("embeddings then tokens differs by %g", d)
	}

	// Remove the last position and decode it again.
	if !c.MemorySeqRm(0, 2, -1) {
		t.Fatal("MemorySeqRm failed")
	}
	if got := c.MemorySeqPosMax(0); got != 1 {
		t.Errorf("after MemorySeqRm MemorySeqPosMax = %d, want 1", got)
	}
	if err := c.Decode(TokenBatch(prompt[2:], 2)); err != nil {
		t.Fatal(err)
	}
	l, _ = c.Logits(-1)
	if d := maxDiff(l, full[2]); d > 1e-4 {
		t.Errorf("after MemorySeqRm differs by %g", d)
	}
}

func TestDecodeErrors(t *testing.T) {
	_, tl, m := loadTiny(t)
	c := newTestContext(t, m, 64, 8)
	hello := tl.id("▁hello")
	nCtx := c.NCtx()
	row := tl.row(hello)
	for _, tc := range []struct {
		name string
		b    Batch
		want string
	}{
		{"empty", Batch{Tokens: []int32{}}, "empty batch"},
		{"nothing", Batch{}, "empty batch"},
		{"both", Batch{Tokens: []int32{1}, Embd: row, Width: tl.NEmbd}, "both tokens and embeddings"},
		{"more than n_batch", TokenBatch(make([]int32, 9), 0), "9 rows is more than the context's n_batch of 8"},
		{"token out of vocab", TokenBatch([]int32{1, int32(m.NVocab())}, 0), "outside the vocabulary"},
		{"negative token", TokenBatch([]int32{-3}, 0), "outside the vocabulary"},
		{"width mismatch", EmbdBatch(make([]float32, 2*16), 16, 0), "embedding rows are 16 wide, the model takes 32"},
		{"ragged rows", EmbdBatch(make([]float32, 40), 32, 0), "not a whole number"},
		{"NaN embedding", EmbdBatch(append(slices.Clone(row), float32(math.NaN()))[1:], 32, 0), "holds NaN"},
		{"past n_ctx", TokenBatch([]int32{1, 1}, int32(nCtx-1)), "run past the context size"},
		{"not continuing", TokenBatch([]int32{1}, 5), "sequence 0 continues at 0"},
		{"negative position", TokenBatch([]int32{1}, -1), "negative position"},
		{"bad sequence", Batch{Tokens: []int32{1}, Seq: 3}, "sequence 3 is outside 0..0"},
		{"logits flags", Batch{Tokens: []int32{1, 1}, Logits: []bool{true}}, "1 logits flags for 2 rows"},
	} {
		err := c.Decode(tc.b)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Decode = %v, want %q", tc.name, err, tc.want)
		}
	}
	if err := c.Encode(TokenBatch([]int32{1}, 0)); err == nil || !strings.Contains(err.Error(), "no encoder") {
		t.Errorf("Encode on a decoder-only model = %v", err)
	}

	// Logits before any decode, and of rows that kept none.
	if _, err := c.Logits(0); err == nil {
		t.Error("Logits before Decode did not fail")
	}
	if err := c.Decode(TokenBatch([]int32{1, hello, hello}, 0)); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1, 3, -2} {
		if _, err := c.Logits(i); err == nil {
			t.Errorf("Logits(%d) after a batch keeping only the last row did not fail", i)
		}
	}
}

func TestVocabOnly(t *testing.T) {
	l := testLib(t)
	tl := newTinyLlama()
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := tl.write(path, 2); err != nil {
		t.Fatal(err)
	}
	p := l.DefaultModelParams()
	p.VocabOnly = true
	m, err := l.LoadModel(path, p)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	toks, err := m.Tokenize("hello world", true, false)
	if err != nil || !slices.Equal(toks, []int32{tokBOS, tl.id("▁hello"), tl.id("▁world")}) {
		t.Errorf("vocab-only Tokenize = %v, %v", toks, err)
	}
	if _, err := m.NewContext(l.DefaultContextParams()); err == nil || !strings.Contains(err.Error(), "VocabOnly") {
		t.Errorf("NewContext on a vocab-only model = %v", err)
	}
}

func TestQuantize(t *testing.T) {
	l := testLib(t)
	tl := newTinyLlama()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "f32.gguf"), filepath.Join(dir, "q8.gguf")
	if err := tl.write(in, 3); err != nil {
		t.Fatal(err)
	}
	p := l.DefaultQuantizeParams()
	p.FType, p.NThread = FTypeMostlyQ8_0, 1
	if err := l.Quantize(in, out, p); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ti, _, ok := f.Tensor("blk.0.attn_q.weight")
	if !ok || ti.Type != gguf.TypeQ8_0 {
		t.Errorf("blk.0.attn_q.weight is %v, want Q8_0", ti.Type)
	}
	m, err := l.LoadModel(out, l.DefaultModelParams())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if d := m.Desc(); !strings.Contains(d, "Q8_0") {
		t.Errorf("Desc = %q, want Q8_0", d)
	}
	if err := l.Quantize(filepath.Join(dir, "missing.gguf"), out, p); err == nil {
		t.Error("Quantize of a missing file did not fail")
	}
}

func TestLoadModelPreflight(t *testing.T) {
	l := testLib(t)
	dir := t.TempDir()
	write := func(name string, kv map[string]any) string {
		w := gguf.NewWriter()
		for k, v := range kv {
			w.Add(k, v)
		}
		path := filepath.Join(dir, name)
		if err := gguf.WriteFile(path, w, nil); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct {
		name string
		kv   map[string]any
		want string
	}{
		{"noarch", map[string]any{"general.name": "x"}, "no general.architecture"},
		{"nolayers", map[string]any{"general.architecture": "llama"}, "llama.block_count is -1"},
		{"zerolayers", map[string]any{"general.architecture": "llama", "llama.block_count": uint32(0)}, "llama.block_count is 0"},
		{"toomanylayers", map[string]any{"general.architecture": "llama", "llama.block_count": uint32(513)}, "want 1..512"},
		{"experts", map[string]any{"general.architecture": "llama", "llama.block_count": uint32(1), "llama.expert_count": uint32(2), "llama.expert_used_count": uint32(3)}, "expert_used_count 3"},
		// Valid for the preflight: llama.cpp itself says why it refuses.
		{"unknownarch", map[string]any{"general.architecture": "nosucharch", "nosucharch.block_count": uint32(1)}, "llama.cpp cannot load"},
	} {
		path := write(tc.name+".gguf", tc.kv)
		_, err := l.LoadModel(path, l.DefaultModelParams())
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: LoadModel = %v, want one line containing %q", tc.name, err, tc.want)
		}
	}
}

// withKV copies the GGUF file src to dst with the metadata key set to value
// (replaced in place, or appended).
func withKV(t *testing.T, src, dst, key string, value any) {
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := gguf.NewWriter()
	found := false
	for _, kv := range f.KV {
		if kv.Key == key {
			kv.Value, found = value, true
		}
		w.Add(kv.Key, kv.Value)
	}
	if !found {
		w.Add(key, value)
	}
	for _, ti := range f.Tensors {
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims); err != nil {
			t.Fatal(err)
		}
	}
	err = gguf.WriteFile(dst, w, func(_ int, info gguf.TensorInfo, out io.Writer) error {
		_, data, _ := f.Tensor(info.Name)
		_, err := out.Write(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLoadModelVocabChecks: vocabularies llama.cpp would abort on (a
// duplicate token text when loading, a BOS to add that does not exist when
// tokenizing) are refused by LoadModel with one line, vocabulary-only
// loads included.
func TestLoadModelVocabChecks(t *testing.T) {
	l := testLib(t)
	dir := t.TempDir()
	dup := llamatest.DefaultLlama()
	dup.NEmbd, dup.NFF = 32, 64
	dup.Pieces = []string{"▁a", "</s>"}
	dupPath := filepath.Join(dir, "dup.gguf")
	if _, err := dup.Write(dupPath); err != nil {
		t.Fatal(err)
	}
	t5 := filepath.Join(dir, "t5.gguf")
	if _, _, err := llamatest.WriteT5(t5, 1); err != nil {
		t.Fatal(err)
	}
	noBOS := filepath.Join(dir, "t5-add-bos.gguf")
	withKV(t, t5, noBOS, "tokenizer.ggml.add_bos_token", true)
	for _, tc := range []struct{ name, path, want string }{
		{"duplicate token", dupPath, `tokens 2 and 260 of tokenizer.ggml.tokens are both "</s>"`},
		{"no BOS to add", noBOS, "tokenizer.ggml.add_bos_token is set but there is no BOS token"},
	} {
		for _, vocabOnly := range []bool{false, true} {
			p := l.DefaultModelParams()
			p.VocabOnly = vocabOnly
			m, err := l.LoadModel(tc.path, p)
			if err == nil {
				m.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s (vocab only %v): LoadModel = %v, want one line containing %q", tc.name, vocabOnly, err, tc.want)
			}
		}
	}
	// The T5 file as written loads: the check is not too strict.
	m, err := l.LoadModel(t5, l.DefaultModelParams())
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
}
