package opt

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/weights/gguf"
)

// fuzzSeed is a very small synthetic model file.
func fuzzSeed(t testing.TB, typ gguf.Type) []byte {
	hp := optShape(32, 1, 2, 32, 32)
	hp.Vocab, hp.MaxPositions = 260, 8
	path := filepath.Join(t.TempDir(), "seed.gguf")
	writeSynthetic(t, path, hp, typ, 1)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// FuzzOpen: a corrupted llm.gguf gives an error from loading, or a model
// that runs; never a panic.
func FuzzOpen(f *testing.F) {
	for _, typ := range []gguf.Type{gguf.TypeQ8_0, gguf.TypeF16} {
		seed := fuzzSeed(f, typ)
		f.Add(seed)
		f.Add(seed[:len(seed)/2])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		gf, err := gguf.Parse(data)
		if err != nil {
			return
		}
		m, err := newModel(gf, "fuzz.gguf")
		if err != nil {
			return
		}
		m.Tokenize("a b\u00e9", true)
		m.TokenBytes(5)
		c, err := m.NewContext(lm.ContextOptions{NCtx: 4})
		if err != nil {
			return
		}
		defer c.Close()
		c.AppendTokens([]int32{2, 5}, true)
		c.AppendEmbeddings(make([]float32, m.Info().NEmbd), 1, false)
	})
}

// TestCorruptFiles: every truncation of a model file, and bit flips
// through its header, give errors or a working model, never a panic.
func TestCorruptFiles(t *testing.T) {
	seed := fuzzSeed(t, gguf.TypeQ8_0)
	try := func(data []byte) {
		gf, err := gguf.Parse(data)
		if err != nil {
			return
		}
		if m, err := newModel(gf, "x.gguf"); err == nil {
			if c, err := m.NewContext(lm.ContextOptions{NCtx: 4}); err == nil {
				c.AppendTokens([]int32{2, 5}, true)
				c.Close()
			}
		}
	}
	for n := 0; n < len(seed); n += 1 + n/64 {
		try(seed[:n])
	}
	buf := make([]byte, len(seed))
	for i := 0; i < min(len(seed), 20000); i += 7 {
		copy(buf, seed)
		buf[i] ^= 1 << (i % 8)
		try(buf)
	}
}
