package synth

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/lmconv"
	"github.com/blip2chat/blip2chat/weights/plan"
)

// TestConfigs: every real-shape model has BLIP-2's ViT-g and Q-Former and
// its checkpoint's language model shape.
func TestConfigs(t *testing.T) {
	for _, tc := range []struct {
		name, family, text string
		proj               int
		textInput, hasLLM  bool
	}{
		{Vision, "blip-2", "opt", 2560, false, false},
		{OPT27B, "blip-2", "opt", 2560, false, true},
		{FlanT5XL, "blip-2", "t5", 2048, false, true},
		{Vicuna7B, "instructblip", "llama", 4096, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Config(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			v, q := c.Vision, c.QFormer
			if v.HiddenSize != 1408 || v.NumHiddenLayers != 39 || v.NumAttentionHeads != 16 || v.IntermediateSize != 6144 ||
				v.PatchSize != 14 || v.ImageSize != 224 || !v.QKVBias {
				t.Errorf("ViT %+v", v)
			}
			if q.HiddenSize != 768 || q.NumHiddenLayers != 12 || q.NumAttentionHeads != 12 || q.IntermediateSize != 3072 ||
				q.CrossAttentionFrequency != 2 || q.EncoderHiddenSize != 1408 || c.NumQueryTokens != 32 {
				t.Errorf("Q-Former %+v, %d queries", q, c.NumQueryTokens)
			}
			if c.ModelType != tc.family || c.Text.ModelType != tc.text || c.Text.HiddenSize != tc.proj {
				t.Errorf("family %q, text %q of width %d", c.ModelType, c.Text.ModelType, c.Text.HiddenSize)
			}
			if (c.ModelType == "instructblip") != tc.textInput || HasLLM(tc.name) != tc.hasLLM {
				t.Errorf("text input / LLM")
			}
		})
	}
	t5, _ := Config(FlanT5XL)
	if x := t5.Text; x.NumLayers != 24 || x.NumDecoderLayers != 24 || x.DFF != 5120 || x.NumHeads != 32 || x.VocabSize != 32128 {
		t.Errorf("flan-t5-xl %+v", x)
	}
	ll, _ := Config(Vicuna7B)
	if x := ll.Text; x.NumHiddenLayers != 32 || x.IntermediateSize != 11008 || x.VocabSize != 32001 || ll.QFormer.VocabSize != 30523 {
		t.Errorf("vicuna-7b %+v", x)
	}
	o, _ := Config(OPT27B)
	if x := o.Text; x.HiddenSize != 2560 || x.FFNDim != 10240 || x.NumHiddenLayers != 32 || x.VocabSize != 50272 {
		t.Errorf("opt-2.7b %+v", x)
	}
	if _, err := Config("gpt-5"); err == nil || !strings.Contains(err.Error(), "vision") {
		t.Errorf("unknown name: %v", err)
	}
}

// TestEnsureVision writes the synthetic vision side of the tiny golden
// config: cached under a name with type, seed and version, written once; a
// second call reuses it; another seed is another file.
func TestEnsureVision(t *testing.T) {
	dir := t.TempDir()
	m := goldenModel(t, "blip2-opt", 3)
	for _, typ := range []string{"f32", "q8_0"} {
		var progress bytes.Buffer
		o := Options{VisionType: typ, Seed: 3, Progress: &progress}
		path, err := ensureVision(context.Background(), dir, "tiny", m, o)
		if err != nil {
			t.Fatal(err)
		}
		wantDir := "tiny-vision-" + typ + "-seed3-v2"
		if filepath.Base(filepath.Dir(path)) != wantDir || filepath.Base(path) != convert.VisionFile {
			t.Errorf("path %s, want .../%s/vision.gguf", path, wantDir)
		}
		if !strings.Contains(progress.String(), "writing synthetic tiny vision side ("+typ) {
			t.Errorf("progress: %q", progress.String())
		}
		st, _ := os.Stat(path)
		progress.Reset()
		again, err := ensureVision(context.Background(), dir, "tiny", m, o)
		if err != nil || again != path {
			t.Fatalf("second call: %s, %v", again, err)
		}
		if st2, _ := os.Stat(path); !st2.ModTime().Equal(st.ModTime()) || progress.Len() != 0 {
			t.Error("the cached file was written again")
		}
	}
	other := *m
	other.Seed = 4
	p1, _ := ensureVision(context.Background(), dir, "tiny", m, Options{VisionType: "f16", Seed: 3})
	p2, err := ensureVision(context.Background(), dir, "tiny", &other, Options{VisionType: "f16", Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(p1)
	b, _ := os.ReadFile(p2)
	if p1 == p2 || bytes.Equal(a, b) {
		t.Error("seeds 3 and 4 give the same file")
	}
}

// TestEnsureLLM: the language model is cached under a name with its type;
// a quantized type goes through the quantizer, asked for before anything
// is written, and is refused without one.
func TestEnsureLLM(t *testing.T) {
	dir := t.TempDir()
	path, err := ensureLLM(context.Background(), dir, "opt", goldenModel(t, "blip2-opt", 0), Options{LLMType: "q8_0"})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(filepath.Dir(path)) != "opt-llm-q8_0-seed0-v2" || filepath.Base(path) != lmconv.FileName {
		t.Errorf("path %s", path)
	}
	f := openGGUF(t, path)
	if a, _ := f.String(gguf.KeyArchitecture); a != lmconv.OPTArch {
		t.Errorf("architecture %q", a)
	}

	llama := goldenModel(t, "blip2-llama", 0)
	var quantized []string
	fake := func() (lmconv.Quantizer, error) {
		return func(in, out string, ftype int32) error {
			quantized = append(quantized, filepath.Base(in))
			data, err := os.ReadFile(in)
			if err != nil {
				return err
			}
			return os.WriteFile(out, data, 0o644)
		}, nil
	}
	path, err = ensureLLM(context.Background(), dir, "llama", llama, Options{LLMType: "q4_k_m", Quantizer: fake})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(filepath.Dir(path)) != "llama-llm-q4_k_m-seed0-v2" || len(quantized) != 1 {
		t.Errorf("path %s, quantized %v", path, quantized)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.partial")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	empty := t.TempDir()
	for _, q := range []func() (lmconv.Quantizer, error){nil, func() (lmconv.Quantizer, error) { return nil, errors.New("no library") }} {
		_, err := ensureLLM(context.Background(), empty, "llama", llama, Options{LLMType: "q4_k_m", Quantizer: q})
		if err == nil || !strings.Contains(err.Error(), "--llm-type f16 or q8_0") {
			t.Errorf("no quantizer: %v", err)
		}
	}
	if left, _ := os.ReadDir(empty); len(left) != 0 {
		t.Errorf("written without a quantizer: %v", left)
	}
}

// TestDiskSpace: a file larger than the free space is refused before
// anything is written, with a message that says what to do.
func TestDiskSpace(t *testing.T) {
	dir := t.TempDir()
	free, ok := plan.FreeSpace(dir)
	if !ok {
		t.Skip("free space unknown here")
	}
	if err := checkSpace(dir, 1<<20); err != nil {
		t.Errorf("1 MB: %v", err)
	}
	err := checkSpace(dir, free+1<<30)
	if err == nil || !strings.Contains(err.Error(), "not enough disk space") || !strings.Contains(err.Error(), "--cache") {
		t.Errorf("too large: %v", err)
	}
}

func TestEnsureErrors(t *testing.T) {
	if _, err := Ensure(context.Background(), "nope", Options{CacheDir: t.TempDir()}); err == nil {
		t.Error("unknown model: no error")
	}
	if _, err := Ensure(context.Background(), Vision, Options{CacheDir: t.TempDir(), VisionType: "q4_0"}); err == nil {
		t.Error("bad vision type: no error")
	}
	// A cache path that is a file, not a folder.
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := Ensure(context.Background(), Vision, Options{CacheDir: f}); err == nil {
		t.Error("cache folder is a file: no error")
	}
}
