package demo

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/engine/vision"
	"github.com/blip2chat/blip2chat/weights/gguf"
)

func TestEnsureBuildsOnce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ensure func(context.Context, string) (string, error)
		dir    func(string) string
		ready  func(string) bool
		// what the vision side and the vocabulary must be
		queries, hidden, tokens, vocab int
	}{
		// The trained model: 192 px in patches of 64 (one per grid cell of
		// the scenes) and CLS; 9 queries; its own 512-piece tokenizer.
		{"trained", Ensure, Dir, Ready, 9, 128, 10, 512},
		{"random", EnsureRandom, RandomDir, ReadyRandom, numQueries, visionHidden, 257, lmVocab},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			start := time.Now()
			dir, err := tc.ensure(context.Background(), data)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("built in %v", time.Since(start))
			if dir != tc.dir(data) || !tc.ready(dir) {
				t.Fatalf("%s is not ready after Ensure", dir)
			}
			// The vision side loads in our engine with the expected shapes.
			vm, err := vision.Load(filepath.Join(dir, "vision.gguf"), vision.Options{})
			if err != nil {
				t.Fatal(err)
			}
			info := vm.Info()
			if info.NumQueryTokens != tc.queries || info.Vision.HiddenSize != tc.hidden || info.Vision.Tokens != tc.tokens {
				t.Errorf("vision info = %+v", info)
			}
			vm.Close()
			// The language model is a llama GGUF with its vocabulary.
			f, err := gguf.Open(filepath.Join(dir, "llm.gguf"))
			if err != nil {
				t.Fatal(err)
			}
			if a, _ := f.String("general.architecture"); a != "llama" {
				t.Errorf("architecture %q, want llama", a)
			}
			if toks, _ := f.Strings("tokenizer.ggml.tokens"); len(toks) != tc.vocab {
				t.Errorf("%d tokens, want %d", len(toks), tc.vocab)
			}
			f.Close()
			// No temporary folders are left behind.
			ents, _ := os.ReadDir(data)
			if len(ents) != 1 || ents[0].Name() != filepath.Base(dir) {
				t.Errorf("data folder holds %v, want only %s", ents, filepath.Base(dir))
			}
			// A second Ensure reuses it; a stale version is rebuilt.
			st1, _ := os.Stat(filepath.Join(dir, "llm.gguf"))
			if _, err := tc.ensure(context.Background(), data); err != nil {
				t.Fatal(err)
			}
			st2, _ := os.Stat(filepath.Join(dir, "llm.gguf"))
			if !os.SameFile(st1, st2) {
				t.Error("Ensure rebuilt a ready model")
			}
			if err := os.WriteFile(filepath.Join(dir, stamp), []byte(`{"version":0}`), 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.ready(dir) {
				t.Fatal("Ready accepts an old version")
			}
			if _, err := tc.ensure(context.Background(), data); err != nil {
				t.Fatal(err)
			}
			if !tc.ready(dir) {
				t.Fatal("old version not rebuilt")
			}
		})
	}
}

// TestTrainedIsNotRandom: the two models' folders are not taken for each
// other (the stamp's label tells them apart).
func TestTrainedIsNotRandom(t *testing.T) {
	data := t.TempDir()
	dir, err := EnsureRandom(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	if Ready(dir) {
		t.Error("the random-weight folder passes for the trained demo model")
	}
}

func TestBuildRandomIsDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, dir := range []string{a, b} {
		if err := BuildRandom(context.Background(), dir); err != nil {
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
	for _, ensure := range []func(context.Context, string) (string, error){Ensure, EnsureRandom} {
		data := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := ensure(ctx, data); err == nil {
			t.Fatal("Ensure with a cancelled context succeeded")
		}
		ents, _ := os.ReadDir(data)
		if len(ents) != 0 {
			t.Errorf("cancelled build left %v", ents)
		}
	}
}

// TestSamplesAreScenes: the samples are the generator's 224x224 PNGs, the
// one the demo opens with first.
func TestSamplesAreScenes(t *testing.T) {
	names := Samples()
	if len(names) < 2 || names[0] != SampleName {
		t.Fatalf("samples %v, want %s first and more", names, SampleName)
	}
	for _, name := range names {
		b, err := samples.ReadFile("samples/" + name)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r := img.Bounds(); r.Dx() != 224 || r.Dy() != 224 || len(b) > 16<<10 {
			t.Errorf("%s: %v, %d bytes: not a small 224x224 scene", name, r, len(b))
		}
	}
	if !bytes.Equal(SampleImage(), mustRead(t, "samples/"+SampleName)) {
		t.Error("SampleImage is not the first sample")
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := samples.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
