package llamacpp

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/weights/gguf"
)

// writeTinyT5 writes a 2-layer encoder-decoder T5 with random F32 weights
// (the FlanT5 side of BLIP-2) and returns its token embeddings.
func writeTinyT5(path string, seed uint64) (tokEmbd []float32, nEmbd int, err error) {
	const (
		e, heads, ff, layers, buckets = 32, 4, 64, 2, 8
		startTok                      = 0 // <pad>, as in T5
	)
	vocab := []string{"<pad>", "</s>", "<unk>"}
	types := []int32{3, 3, 2}
	for i := range 37 {
		vocab = append(vocab, fmt.Sprintf("▁w%d", i))
		types = append(types, 1)
	}
	scores := make([]float32, len(vocab))
	rng := rand.New(rand.NewPCG(seed, 2))
	w := gguf.NewWriter()
	w.Add("general.architecture", "t5")
	w.Add("t5.context_length", uint32(512))
	w.Add("t5.embedding_length", uint32(e))
	w.Add("t5.feed_forward_length", uint32(ff))
	w.Add("t5.block_count", uint32(layers))
	w.Add("t5.attention.head_count", uint32(heads))
	w.Add("t5.attention.layer_norm_rms_epsilon", float32(1e-6))
	w.Add("t5.attention.relative_buckets_count", uint32(buckets))
	w.Add("t5.decoder_start_token_id", uint32(startTok))
	w.Add("tokenizer.ggml.model", "t5")
	w.Add("tokenizer.ggml.tokens", vocab)
	w.Add("tokenizer.ggml.scores", scores)
	w.Add("tokenizer.ggml.token_type", types)

	nv := uint64(len(vocab))
	type tensor struct {
		name string
		dims []uint64
		one  bool
	}
	ts := []tensor{{"token_embd.weight", []uint64{e, nv}, false}, {"enc.output_norm.weight", []uint64{e}, true},
		{"dec.output_norm.weight", []uint64{e}, true}, {"output.weight", []uint64{e, nv}, false}}
	for l := range layers {
		for _, side := range []string{"enc", "dec"} {
			p := fmt.Sprintf("%s.blk.%d.", side, l)
			ts = append(ts, tensor{p + "attn_norm.weight", []uint64{e}, true})
			if l == 0 {
				ts = append(ts, tensor{p + "attn_rel_b.weight", []uint64{heads, buckets}, false})
			}
			for _, n := range []string{"attn_q", "attn_k", "attn_v", "attn_o"} {
				ts = append(ts, tensor{p + n + ".weight", []uint64{e, e}, false})
			}
			if side == "dec" {
				ts = append(ts, tensor{p + "cross_attn_norm.weight", []uint64{e}, true})
				for _, n := range []string{"cross_attn_q", "cross_attn_k", "cross_attn_v", "cross_attn_o"} {
					ts = append(ts, tensor{p + n + ".weight", []uint64{e, e}, false})
				}
			}
			ts = append(ts, tensor{p + "ffn_norm.weight", []uint64{e}, true},
				tensor{p + "ffn_gate.weight", []uint64{e, ff}, false},
				tensor{p + "ffn_up.weight", []uint64{e, ff}, false},
				tensor{p + "ffn_down.weight", []uint64{ff, e}, false})
		}
	}
	values := make([][]float32, len(ts))
	for i, tn := range ts {
		n := uint64(1)
		for _, d := range tn.dims {
			n *= d
		}
		v := make([]float32, n)
		for j := range v {
			if tn.one {
				v[j] = 1
			} else {
				v[j] = float32(rng.NormFloat64() * 0.5)
			}
		}
		values[i] = v
		if err := w.AddTensor(tn.name, gguf.TypeF32, tn.dims); err != nil {
			return nil, 0, err
		}
	}
	err = gguf.WriteFile(path, w, func(i int, _ gguf.TensorInfo, out io.Writer) error {
		b := make([]byte, 4*len(values[i]))
		for j, f := range values[i] {
			binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(f))
		}
		_, err := out.Write(b)
		return err
	})
	return values[0], e, err
}

func TestEncode(t *testing.T) {
	l := testLib(t)
	path := filepath.Join(t.TempDir(), "t5.gguf")
	tokEmbd, nEmbd, err := writeTinyT5(path, 1)
	if err != nil {
		t.Fatal(err)
	}
	m, err := l.LoadModel(path, l.DefaultModelParams())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !m.HasEncoder() || !m.HasDecoder() || m.DecoderStartToken() != 0 {
		t.Fatalf("encoder %v decoder %v start %d", m.HasEncoder(), m.HasDecoder(), m.DecoderStartToken())
	}
	p := l.DefaultContextParams()
	p.NCtx, p.NBatch, p.NUbatch, p.NThreads, p.NThreadsBatch = 64, 16, 8, 2, 2
	c, err := m.NewContext(p)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	prompt := []int32{5, 9, 12, 1}
	// decoderLogits encodes b, then decodes the start token.
	decoderLogits := func(b Batch) []float32 {
		t.Helper()
		c.MemoryClear(true)
		if err := c.Encode(b); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Logits(0); err == nil {
			t.Error("Logits after Encode did not fail")
		}
		if err := c.Decode(TokenBatch([]int32{m.DecoderStartToken()}, 0)); err != nil {
			t.Fatal(err)
		}
		out, err := c.Logits(-1)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Clone(out)
	}
	fromTokens := decoderLogits(TokenBatch(prompt, 0))
	var embd []float32
	for _, tok := range prompt {
		embd = append(embd, tokEmbd[int(tok)*nEmbd:int(tok+1)*nEmbd]...)
	}
	fromEmbd := decoderLogits(EmbdBatch(embd, nEmbd, 0))
	d := maxDiff(fromTokens, fromEmbd)
	t.Logf("encoder: embedding vs token input, decoder logits max |diff| %g", d)
	if d > 1e-4 {
		t.Errorf("encoder embedding input differs from token input by %g", d)
	}
	// A different prompt changes what the decoder sees.
	other := decoderLogits(TokenBatch([]int32{7, 7, 7, 1}, 0))
	if maxDiff(other, fromTokens) < 1e-3 {
		t.Error("decoder logits do not depend on the encoder input")
	}

	// The encoder takes at most n_ubatch rows: llama.cpp would abort.
	err = c.Encode(TokenBatch(make([]int32, 9), 0))
	if err == nil || !strings.Contains(err.Error(), "9 rows is more than the context's n_ubatch of 8") {
		t.Errorf("Encode of 9 rows with n_ubatch 8 = %v", err)
	}
	if err := c.Encode(EmbdBatch(make([]float32, 2*16), 16, 0)); err == nil || !strings.Contains(err.Error(), "16 wide") {
		t.Errorf("Encode with the wrong width = %v", err)
	}
}
