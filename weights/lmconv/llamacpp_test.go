package lmconv_test

// These tests load the converted files with the real llama.cpp library. They
// import engine/llamacpp/capi, which weights code must never do; a test-only
// import from an external test package is the exception: the point is to
// prove the files are what llama.cpp expects, and nothing in weights links it.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/blip2chat/blip2chat/engine/llamacpp/capi"
	"github.com/blip2chat/blip2chat/engine/llamacpp/llamatest"
	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/lmconv"
	"github.com/blip2chat/blip2chat/weights/safetensors"
)

const golden = "../../testdata/golden"

var (
	libOnce sync.Once
	lib     *capi.Library
	libErr  error
	libLog  logBuffer
)

type logBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

// library loads llama.cpp from llamatest.LibDir; the test is skipped
// without it unless BLIP2CHAT_REQUIRE_LLAMA is set.
func library(t *testing.T) *capi.Library {
	t.Helper()
	dir := llamatest.LibDir(t)
	libOnce.Do(func() { lib, libErr = capi.Load(capi.Options{Dir: dir, Log: &libLog}) })
	if libErr != nil {
		t.Fatalf("loading llama.cpp from %s: %v", dir, libErr)
	}
	return lib
}

// convertCase writes the golden case's language model as typ into a temporary
// folder, quantizing through llama.cpp when typ asks for it.
func convertCase(t *testing.T, l *capi.Library, name, typ string) string {
	t.Helper()
	ty, err := lmconv.ParseType(typ)
	if err != nil {
		t.Fatal(err)
	}
	// The convert command's path: plan both files, write them, quantize.
	dir := t.TempDir()
	if _, err := convert.Convert(context.Background(), filepath.Join(golden, name, "hf"), dir, convert.Options{LLMType: typ}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, lmconv.FileName)
	err = lmconv.Finish(out, ty, func(in, out string, ftype int32) error {
		p := l.DefaultQuantizeParams()
		p.FType = ftype
		p.NThread = 2
		return l.Quantize(in, out, p)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func loadModel(t *testing.T, l *capi.Library, path string) *capi.Model {
	t.Helper()
	p := l.DefaultModelParams()
	p.NGPULayers = 0
	m, err := l.LoadModel(path, p)
	if err != nil {
		t.Fatalf("llama.cpp cannot load %s: %v", path, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

type goldenCase struct {
	Prompt      string  `json:"prompt"`
	PromptIDs   []int32 `json:"prompt_ids"`
	ForcedIDs   []int32 `json:"forced_decoder_input_ids"`
	DecoderInit int32   `json:"decoder_start_token_id"`
}

func readGolden(t *testing.T, name string) (goldenCase, *safetensors.File) {
	t.Helper()
	var g goldenCase
	b, err := os.ReadFile(filepath.Join(golden, name, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(golden, name, "golden.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return g, f
}

func tensor(t *testing.T, f interface {
	Tensor(string) (safetensors.Tensor, bool)
}, name string) ([]float32, []int) {
	t.Helper()
	x, ok := f.Tensor(name)
	if !ok {
		t.Fatalf("no tensor %s", name)
	}
	v, err := x.Float32()
	if err != nil {
		t.Fatal(err)
	}
	return v, x.Shape
}

// TestLlamaCppTokenize checks that llama.cpp, reading the converted
// vocabulary, tokenizes every reference string exactly as SentencePiece
// does (no special tokens added), and the golden prompts with BOS (LLaMA)
// or EOS (T5) added as the model's tokenizer does.
func TestLlamaCppTokenize(t *testing.T) {
	l := library(t)
	var tok map[string][]struct {
		Text string  `json:"text"`
		IDs  []int32 `json:"ids"`
	}
	b, err := os.ReadFile(filepath.Join(golden, "tokenization.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &tok); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, set    string
		bos, eos     int32
		addBOS, addE bool
	}{
		{"blip2-llama", "llama_spm_bpe", 1, 2, true, false},
		{"instructblip-llama", "llama_spm_bpe", 1, 2, true, false},
		{"blip2-t5", "t5_spm_unigram", -1, 1, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := loadModel(t, l, convertCase(t, l, c.name, "f32"))
			if m.BOS() != c.bos || m.EOS() != c.eos || m.AddBOS() != c.addBOS || m.AddEOS() != c.addE {
				t.Errorf("bos %d eos %d addBOS %v addEOS %v, want %d %d %v %v", m.BOS(), m.EOS(), m.AddBOS(), m.AddEOS(), c.bos, c.eos, c.addBOS, c.addE)
			}
			if len(tok[c.set]) == 0 {
				t.Fatalf("tokenization.json has no %s", c.set)
			}
			for _, s := range tok[c.set] {
				got, err := m.Tokenize(s.Text, false, false)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(s.IDs) || (len(got) > 0 && !reflect.DeepEqual(got, s.IDs)) {
					t.Errorf("%q:\n got %v\nwant %v", s.Text, got, s.IDs)
				}
			}
			g, _ := readGolden(t, c.name)
			got, err := m.Tokenize(g.Prompt, true, false)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, g.PromptIDs) {
				t.Errorf("prompt %q with special tokens:\n got %v\nwant %v", g.Prompt, got, g.PromptIDs)
			}
		})
	}
}

// exactContext is a context computing as closely to the reference as
// llama.cpp can: flash attention off, f32 KV cache.
func exactContext(t *testing.T, l *capi.Library, m *capi.Model, n int) *capi.Context {
	t.Helper()
	p := l.DefaultContextParams()
	p.NCtx, p.NBatch, p.NUbatch = uint32(n), uint32(n), uint32(n)
	p.NThreads, p.NThreadsBatch = 2, 2
	p.FlashAttnType = 0 // LLAMA_FLASH_ATTN_TYPE_DISABLED
	p.TypeK, p.TypeV = 0, 0
	p.NoPerf = true
	c, err := m.NewContext(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func all(n int) []bool {
	b := make([]bool, n)
	for i := range b {
		b[i] = true
	}
	return b
}

// diff accumulates the differences between llama.cpp's logits and the
// reference.
type diff struct {
	max          float64 // largest |got - want|
	sq, ref      float64 // sums of (got - want)^2 and want^2
	rows, argmax int     // rows compared, rows whose argmax agrees
}

// rel is the RMS difference relative to the RMS of the reference.
func (d diff) rel() float64 { return math.Sqrt(d.sq / d.ref) }

// add compares the rows of the last Decode with want's rows from row0.
func (d *diff) add(t *testing.T, c *capi.Context, rows int, want []float32, row0, nVocab int) {
	t.Helper()
	for i := 0; i < rows; i++ {
		got, err := c.Logits(i)
		if err != nil {
			t.Fatal(err)
		}
		w := want[(row0+i)*nVocab : (row0+i+1)*nVocab]
		ga, wa := 0, 0
		for j := range w {
			x := float64(got[j])
			if math.IsNaN(x) || math.IsInf(x, 0) {
				t.Fatalf("logit [%d][%d] is %v", row0+i, j, x)
			}
			e := x - float64(w[j])
			d.max = math.Max(d.max, math.Abs(e))
			d.sq += e * e
			d.ref += float64(w[j]) * float64(w[j])
			if got[j] > got[ga] {
				ga = j
			}
			if w[j] > w[wa] {
				wa = j
			}
		}
		d.rows++
		if ga == wa {
			d.argmax++
		}
	}
}

// logitsDiff runs the golden case through the model file at path and
// returns the largest logit difference from the reference: decoder-only,
// the soft tokens as an embeddings batch then BOS + prompt, every position;
// T5, llama_encode of [soft tokens ; prompt embeddings] then teacher-forced
// decoding of forced_decoder_input_ids.
func logitsDiff(t *testing.T, l *capi.Library, name, path string) diff {
	t.Helper()
	m := loadModel(t, l, path)
	g, gf := readGolden(t, name)
	soft, shape := tensor(t, gf, "language_model_inputs")
	nq, width := shape[1], shape[2]
	if width != m.NEmbdInp() {
		t.Fatalf("soft tokens are %d wide, the model takes %d", width, m.NEmbdInp())
	}
	nVocab := m.NVocab()
	if !m.HasEncoder() {
		want, wshape := tensor(t, gf, "logits")
		if wshape[0] != nq+len(g.PromptIDs) || wshape[1] != nVocab {
			t.Fatalf("golden logits %v for %d soft tokens + %d ids, vocab %d", wshape, nq, len(g.PromptIDs), nVocab)
		}
		c := exactContext(t, l, m, 64)
		if err := c.Decode(capi.Batch{Embd: soft, Width: width, Pos: 0, Logits: all(nq)}); err != nil {
			t.Fatal(err)
		}
		var d diff
		d.add(t, c, nq, want, 0, nVocab)
		if err := c.Decode(capi.Batch{Tokens: g.PromptIDs, Pos: int32(nq), Logits: all(len(g.PromptIDs))}); err != nil {
			t.Fatal(err)
		}
		d.add(t, c, len(g.PromptIDs), want, nq, nVocab)
		return d
	}
	// T5: the encoder input is the soft tokens then the prompt's embedding
	// rows (from the checkpoint, as the app takes them from the model).
	ck, err := safetensors.OpenCheckpoint(filepath.Join(golden, name, "hf"))
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	emb, _ := tensor(t, ck, lmconv.Prefix+"shared.weight")
	in := append([]float32(nil), soft...)
	for _, id := range g.PromptIDs {
		in = append(in, emb[int(id)*width:(int(id)+1)*width]...)
	}
	want, wshape := tensor(t, gf, "forced_decoder_logits")
	if wshape[0] != len(g.ForcedIDs) || wshape[1] != nVocab {
		t.Fatalf("golden forced logits %v for %d ids, vocab %d", wshape, len(g.ForcedIDs), nVocab)
	}
	if got := m.DecoderStartToken(); got != g.ForcedIDs[0] {
		t.Errorf("decoder start token %d, want %d", got, g.ForcedIDs[0])
	}
	c := exactContext(t, l, m, 64)
	if err := c.Encode(capi.Batch{Embd: in, Width: width}); err != nil {
		t.Fatal(err)
	}
	if err := c.Decode(capi.Batch{Tokens: g.ForcedIDs, Pos: 0, Logits: all(len(g.ForcedIDs))}); err != nil {
		t.Fatal(err)
	}
	var d diff
	d.add(t, c, len(g.ForcedIDs), want, 0, nVocab)
	return d
}

// TestLlamaCppLogits checks that llama.cpp running the f32 conversion gives
// the reference logits at every position (decoder-only within 1e-4; T5
// within 5e-2, since ggml's GELU reads an f16 table), and measures how far
// the f16, q8_0 and q4_k_m conversions move them. Those are bounded by the
// RMS difference relative to the logits' RMS, loosely (about 3x what was
// measured), to catch a broken type rather than to grade the quantizer: on
// these 64-wide models q4_k_m falls back to Q5_0/Q8_0 blocks.
func TestLlamaCppLogits(t *testing.T) {
	l := library(t)
	type bound struct {
		typ      string
		max, rel float64 // 0: not bounded
	}
	decoderOnly := []bound{{"f32", 1e-4, 0}, {"f16", 0, 0.002}, {"q8_0", 0, 0.05}, {"q4_k_m", 0, 0.25}}
	cases := []struct {
		name   string
		bounds []bound
	}{
		{"blip2-llama", decoderOnly},
		{"instructblip-llama", decoderOnly},
		{"blip2-t5", []bound{{"f32", 5e-2, 0}, {"f16", 0, 0.007}, {"q8_0", 0, 0.15}, {"q4_k_m", 0, 0.75}}},
	}
	for _, c := range cases {
		for _, b := range c.bounds {
			t.Run(c.name+"/"+b.typ, func(t *testing.T) {
				path := convertCase(t, l, c.name, b.typ)
				d := logitsDiff(t, l, c.name, path)
				st, _ := os.Stat(path)
				t.Logf("%s %s: max |logit - golden| %.3g, relative RMS %.3g, argmax agrees %d/%d (%d bytes)",
					c.name, b.typ, d.max, d.rel(), d.argmax, d.rows, st.Size())
				if b.max > 0 && d.max > b.max {
					t.Errorf("max logit difference %.3g > %g", d.max, b.max)
				}
				if b.rel > 0 && d.rel() > b.rel {
					t.Errorf("relative RMS logit difference %.3g > %g", d.rel(), b.rel)
				}
			})
		}
	}
}

// TestQ8_0MatchesLlamaCpp checks that --llm-type q8_0, written directly,
// is what llama.cpp's own quantizer makes of the f32 conversion: the same
// types and the same bytes for every tensor, except the tensors the script
// stores as F16 because their rows are not a multiple of 32 (T5's relative
// attention bias), which llama.cpp leaves in F32.
func TestQ8_0MatchesLlamaCpp(t *testing.T) {
	l := library(t)
	for _, name := range []string{"blip2-llama", "blip2-t5"} {
		t.Run(name, func(t *testing.T) {
			ref := filepath.Join(t.TempDir(), "ref.gguf")
			p := l.DefaultQuantizeParams()
			p.FType = 7 // LLAMA_FTYPE_MOSTLY_Q8_0
			p.NThread = 2
			if err := l.Quantize(convertCase(t, l, name, "f32"), ref, p); err != nil {
				t.Fatal(err)
			}
			a, err := gguf.Open(ref)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			b, err := gguf.Open(convertCase(t, l, name, "q8_0"))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if len(a.Tensors) != len(b.Tensors) {
				t.Errorf("%d tensors, llama.cpp has %d", len(b.Tensors), len(a.Tensors))
			}
			nq := 0
			for _, ta := range a.Tensors {
				_, da, _ := a.Tensor(ta.Name)
				tb, db, ok := b.Tensor(ta.Name)
				switch {
				case !ok:
					t.Errorf("%s missing", ta.Name)
				case strings.HasSuffix(ta.Name, "attn_rel_b.weight"):
					if ta.Type != gguf.TypeF32 || tb.Type != gguf.TypeF16 {
						t.Errorf("%s: %v (llama.cpp %v), want F16 (F32)", ta.Name, tb.Type, ta.Type)
					}
				case ta.Type != tb.Type || !bytes.Equal(da, db):
					t.Errorf("%s: %v, llama.cpp %v; bytes equal %v", ta.Name, tb.Type, ta.Type, bytes.Equal(da, db))
				case tb.Type == gguf.TypeQ8_0:
					nq++
				}
			}
			if nq == 0 {
				t.Error("no Q8_0 tensor compared")
			}
		})
	}
}

// TestLlamaCppMetadata checks what llama.cpp itself reads back.
func TestLlamaCppMetadata(t *testing.T) {
	l := library(t)
	cases := []struct {
		name, arch string
		embd, voc  int
		ctxTrain   int
		encoder    bool
	}{
		{"blip2-llama", "llama", 64, 2000, 512, false},
		{"blip2-t5", "t5", 64, 1100, 512, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := loadModel(t, l, convertCase(t, l, c.name, "q4_k_m"))
			arch, _ := m.Meta("general.architecture")
			ft, _ := m.Meta("general.file_type")
			if arch != c.arch || m.NEmbd() != c.embd || m.NVocab() != c.voc || m.NCtxTrain() != c.ctxTrain || m.HasEncoder() != c.encoder {
				t.Errorf("arch %s embd %d vocab %d ctx %d encoder %v", arch, m.NEmbd(), m.NVocab(), m.NCtxTrain(), m.HasEncoder())
			}
			if ft != fmt.Sprint(15) {
				t.Errorf("file type %s after quantizing, want 15 (Q4_K_M)", ft)
			}
		})
	}
}

// TestConvertQuantizes: Convert with llama.cpp's quantizer as
// Options.Quantizer writes a q4_k_m llm.gguf directly (no f16 file is ever
// renamed into the folder), which llama.cpp loads; the T5 vocabulary cut
// to the tokenizer's (1100 of 1152 rows here, 32100 of 32128 for FlanT5)
// included.
func TestConvertQuantizes(t *testing.T) {
	l := library(t)
	for _, name := range []string{"blip2-t5", "instructblip-llama"} {
		out := t.TempDir()
		q := func(in, out string, ftype int32) error {
			p := l.DefaultQuantizeParams()
			p.FType = ftype
			p.NThread = 2
			return l.Quantize(in, out, p)
		}
		res, err := convert.Convert(context.Background(), filepath.Join(golden, name, "hf"), out, convert.Options{Quantizer: q})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(out, lmconv.FileName)
		f, err := gguf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		ft, _ := f.Int(gguf.KeyFileType)
		f.Close()
		if !res.Quantized || ft != 15 {
			t.Errorf("%s: quantized %v, file type %d, want q4_k_m (15)", name, res.Quantized, ft)
		}
		loadModel(t, l, path)
	}
}
