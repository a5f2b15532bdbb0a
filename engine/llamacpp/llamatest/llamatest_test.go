package llamatest

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/engine/llamacpp/internal/libfiles"
	"github.com/blip2chat/blip2chat/weights/gguf"
)

func TestRepoRootAndLibDir(t *testing.T) {
	root := RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("RepoRoot %s: %v", root, err)
	}
	t.Setenv(libfiles.EnvLib, "/some/where")
	if got := LibDir(t); got != "/some/where" {
		t.Errorf("LibDir with $%s set = %q", libfiles.EnvLib, got)
	}
}

// TestWriteLlama: the file holds the described model, its token embeddings
// are what Write returns, and the same seed gives the same bytes.
func TestWriteLlama(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, l Llama) ([]byte, []float32) {
		t.Helper()
		path := filepath.Join(dir, name)
		emb, err := l.Write(path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b, emb
	}
	def := DefaultLlama()
	a, emb := write("a.gguf", def)
	b, _ := write("b.gguf", def)
	if !bytes.Equal(a, b) {
		t.Error("the same seed gave different files")
	}
	other := def
	other.Seed = 2
	if c, _ := write("c.gguf", other); bytes.Equal(a, c) {
		t.Error("another seed gave the same file")
	}
	f, err := gguf.Parse(a)
	if err != nil {
		t.Fatal(err)
	}
	tokens, _ := f.Strings("tokenizer.ggml.tokens")
	if len(tokens) != def.NVocab || tokens[FirstByte] != "<0x00>" || tokens[FirstWord] != "▁w0" {
		t.Errorf("%d tokens, %q at FirstByte, %q at FirstWord", len(tokens), tokens[FirstByte], tokens[FirstWord])
	}
	if n, _ := f.String("general.name"); n != "tiny-random-llama" {
		t.Errorf("general.name %q", n)
	}
	info, data, ok := f.Tensor("token_embd.weight")
	if !ok || !slices.Equal(info.Dims, []uint64{uint64(def.NEmbd), uint64(def.NVocab)}) || len(emb) != def.NEmbd*def.NVocab {
		t.Fatalf("token_embd.weight %+v, %d values returned", info, len(emb))
	}
	for i, v := range emb {
		if got := math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:])); got != v {
			t.Fatalf("embedding %d: file %v, returned %v", i, got, v)
		}
	}
	if n := len(f.Tensors); n != 3+9*def.NLayer {
		t.Errorf("%d tensors, want %d", n, 3+9*def.NLayer)
	}

	// Pieces, a name and Std: pieces first, norms exactly 1.
	custom := Llama{NEmbd: 32, NHead: 4, NHeadKV: 2, NFF: 64, NLayer: 1, NCtxTrain: 64, Seed: 1,
		Pieces: []string{"▁a", "b"}, Name: "custom", Std: 0.5}
	c, _ := write("custom.gguf", custom)
	f, err = gguf.Parse(c)
	if err != nil {
		t.Fatal(err)
	}
	tokens, _ = f.Strings("tokenizer.ggml.tokens")
	if len(tokens) != FirstWord+2 || tokens[FirstWord] != "▁a" {
		t.Errorf("custom vocabulary %d tokens, %q at FirstWord", len(tokens), tokens[FirstWord])
	}
	_, norm, _ := f.Tensor("output_norm.weight")
	for i := 0; i < len(norm); i += 4 {
		if v := math.Float32frombits(binary.LittleEndian.Uint32(norm[i:])); v != 1 {
			t.Fatalf("norm weight %v, want 1", v)
		}
	}

	small := def
	small.NVocab = FirstWord
	if _, err := small.Write(filepath.Join(dir, "small.gguf")); err == nil || !strings.Contains(err.Error(), "too small") {
		t.Errorf("vocabulary without words: %v", err)
	}
}

func TestWriteT5(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t5.gguf")
	emb, nEmbd, err := WriteT5(path, 1)
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tokens, _ := f.Strings("tokenizer.ggml.tokens")
	if a, _ := f.String("general.architecture"); a != "t5" || len(tokens) != 40 || len(emb) != 40*nEmbd {
		t.Errorf("architecture %q, %d tokens, %d embedding values for width %d", a, len(tokens), len(emb), nEmbd)
	}
	for _, name := range []string{"enc.blk.0.attn_rel_b.weight", "dec.blk.1.cross_attn_o.weight", "output.weight"} {
		if _, _, ok := f.Tensor(name); !ok {
			t.Errorf("no tensor %s", name)
		}
	}
}
