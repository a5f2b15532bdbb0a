package capi

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/engine/llamacpp/llamatest"
)

func TestEncode(t *testing.T) {
	l := testLib(t)
	path := filepath.Join(t.TempDir(), "t5.gguf")
	tokEmbd, nEmbd, err := llamatest.WriteT5(path, 1)
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
