package demo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/engine/vision"
	"github.com/blip2chat/blip2chat/weights/gguf"
)

func TestEnsureBuildsOnceAndConverts(t *testing.T) {
	data := t.TempDir()
	start := time.Now()
	dir, err := Ensure(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built in %v", time.Since(start))
	if !Ready(dir) {
		t.Fatalf("%s is not ready after Ensure", dir)
	}
	// The vision side loads in our engine with the shapes we asked for.
	vm, err := vision.Load(filepath.Join(dir, "vision.gguf"), vision.Options{})
	if err != nil {
		t.Fatal(err)
	}
	info := vm.Info()
	if info.NumQueryTokens != numQueries || info.Vision.HiddenSize != visionHidden || info.Vision.Tokens != 257 || info.ProjectionSize != lmHidden {
		t.Errorf("vision info = %+v", info)
	}
	vm.Close()
	// The language model is a llama GGUF with our vocabulary.
	f, err := gguf.Open(filepath.Join(dir, "llm.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := f.String("general.architecture"); a != "llama" {
		t.Errorf("architecture %q, want llama", a)
	}
	if toks, _ := f.Strings("tokenizer.ggml.tokens"); len(toks) != lmVocab {
		t.Errorf("%d tokens, want %d", len(toks), lmVocab)
	}
	f.Close()
	// No temporary folders are left behind.
	ents, _ := os.ReadDir(data)
	if len(ents) != 1 || ents[0].Name() != "demo" {
		t.Errorf("data folder holds %v, want only demo", ents)
	}
	// A second Ensure reuses it; a stale version is rebuilt.
	st1, _ := os.Stat(filepath.Join(dir, "llm.gguf"))
	if _, err := Ensure(context.Background(), data); err != nil {
		t.Fatal(err)
	}
	st2, _ := os.Stat(filepath.Join(dir, "llm.gguf"))
	if !os.SameFile(st1, st2) {
		t.Error("Ensure rebuilt a ready model")
	}
	if err := os.WriteFile(filepath.Join(dir, stamp), []byte(`{"version":0}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if Ready(dir) {
		t.Fatal("Ready accepts an old version")
	}
	if _, err := Ensure(context.Background(), data); err != nil {
		t.Fatal(err)
	}
	if !Ready(dir) {
		t.Fatal("old version not rebuilt")
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, dir := range []string{a, b} {
		if err := Build(context.Background(), dir); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"vision.gguf", "llm.gguf"} {
		x, _ := os.ReadFile(filepath.Join(a, f))
		y, _ := os.ReadFile(filepath.Join(b, f))
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Errorf("%s differs between two builds", f)
		}
	}
}

func TestCancelledBuildLeavesNothing(t *testing.T) {
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Ensure(ctx, data); err == nil {
		t.Fatal("Ensure with a cancelled context succeeded")
	}
	ents, _ := os.ReadDir(data)
	if len(ents) != 0 {
		t.Errorf("cancelled build left %v", ents)
	}
}

func TestSampleImageIsSmallJPEG(t *testing.T) {
	b := SampleImage()
	if len(b) > 200<<10 || len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		t.Fatalf("sample image: %d bytes, not a small JPEG", len(b))
	}
}
