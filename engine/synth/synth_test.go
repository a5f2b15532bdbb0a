package synth

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/engine/lm/opt"
	"github.com/blip2chat/blip2chat/engine/vision"
	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
	"github.com/blip2chat/blip2chat/weights/lmconv"
)

// TestConfigs: every synthetic model has BLIP-2's ViT-g and Q-Former and
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
	hp, ok := opt.SyntheticShape(OPT27B)
	if !ok || hp.Hidden != o.Text.HiddenSize || hp.FFN != o.Text.FFNDim || hp.Layers != o.Text.NumHiddenLayers || hp.Vocab != o.Text.VocabSize {
		t.Errorf("engine/lm/opt's opt-2.7b %+v differs from the config %+v", hp, o.Text)
	}
	if _, err := Config("gpt-5"); err == nil || !strings.Contains(err.Error(), "vision") {
		t.Errorf("unknown name: %v", err)
	}
}

// TestVisionFile writes the synthetic vision side of the tiny golden
// config: cached under a name with type, seed and version, loadable, with
// finite outputs that depend on the weights; a second call reuses it.
func TestVisionFile(t *testing.T) {
	cfg, err := hfconfig.Load("../../testdata/golden/blip2-opt/hf")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var firstOut []float32
	for _, typ := range []string{"f32", "f16", "q8_0"} {
		t.Run(typ, func(t *testing.T) {
			var progress bytes.Buffer
			o := Options{VisionType: typ, Seed: 3, Progress: &progress}
			path, err := ensureVision(context.Background(), dir, "tiny", cfg, o)
			if err != nil {
				t.Fatal(err)
			}
			wantDir := "tiny-vision-" + typ + "-seed3-v1"
			if filepath.Base(filepath.Dir(path)) != wantDir || filepath.Base(path) != convert.VisionFile {
				t.Errorf("path %s, want .../%s/vision.gguf", path, wantDir)
			}
			if !strings.Contains(progress.String(), "writing synthetic tiny vision side ("+typ) {
				t.Errorf("progress: %q", progress.String())
			}
			st, _ := os.Stat(path)
			progress.Reset()
			again, err := ensureVision(context.Background(), dir, "tiny", cfg, o)
			if err != nil || again != path {
				t.Fatalf("second call: %s, %v", again, err)
			}
			if st2, _ := os.Stat(path); !st2.ModTime().Equal(st.ModTime()) || progress.Len() != 0 {
				t.Error("the cached file was written again")
			}

			m, err := vision.Load(path, vision.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if m.Info().WeightType != typ {
				t.Errorf("weight type %q", m.Info().WeightType)
			}
			px := make([]float32, 3*224*224)
			for i := range px {
				px[i] = float32(math.Sin(float64(i)))
			}
			feat, err := m.EncodeImage(context.Background(), px)
			if err != nil {
				t.Fatal(err)
			}
			q, err := m.QFormer(context.Background(), feat, nil)
			if err != nil {
				t.Fatal(err)
			}
			out, err := m.Project(q)
			if err != nil {
				t.Fatal(err)
			}
			var sum, sq float64
			for _, x := range append(feat.Data, out...) {
				if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
					t.Fatal("non-finite activation")
				}
				sum += float64(x)
				sq += float64(x) * float64(x)
			}
			rms := math.Sqrt(sq / float64(len(feat.Data)+len(out)))
			if rms < 0.05 || rms > 20 {
				t.Errorf("activations of RMS %g: the weights' scale is off", rms)
			}
			// The types agree to their precision: the same weights.
			if firstOut == nil {
				firstOut = out
			} else {
				var d, n float64
				for i := range out {
					d += math.Abs(float64(out[i] - firstOut[i]))
					n += math.Abs(float64(firstOut[i]))
				}
				if d/n > 0.05 {
					t.Errorf("%s output differs from f32's by %.1f%%", typ, 100*d/n)
				}
			}
		})
	}
	// Another seed is another file with other weights.
	p1, _ := ensureVision(context.Background(), dir, "tiny", cfg, Options{VisionType: "f16", Seed: 3})
	p2, err := ensureVision(context.Background(), dir, "tiny", cfg, Options{VisionType: "f16", Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(p1)
	b, _ := os.ReadFile(p2)
	if p1 == p2 || bytes.Equal(a, b) {
		t.Error("seeds 3 and 4 give the same file")
	}
}

// TestOPTFile: the OPT language model goes through engine/lm/opt's writer,
// under a name with its type; the size estimate is right.
func TestOPTFile(t *testing.T) {
	dir := t.TempDir()
	cfg, _ := Config(OPT27B)
	path, err := ensureLLM(context.Background(), dir, "opt-125m", cfg, Options{LLMType: "q8_0"})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(filepath.Dir(path)) != "opt-125m-llm-q8_0-seed0-v1" || filepath.Base(path) != "llm.gguf" {
		t.Errorf("path %s", path)
	}
	m, err := opt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	hp, _ := opt.SyntheticShape("opt-125m")
	if m.Hyper().Hidden != hp.Hidden {
		t.Errorf("hidden %d", m.Hyper().Hidden)
	}
	st, _ := os.Stat(path)
	tq, _ := lmconv.ParseOPTType("q8_0")
	est := optBytes(hp, tq.Write)
	if d := float64(st.Size()-est) / float64(st.Size()); d < 0 || d > 0.02 {
		t.Errorf("estimated %d bytes, file is %d", est, st.Size())
	}
}

// TestDiskSpace: a file larger than the free space is refused before
// anything is written, with a message that says what to do.
func TestDiskSpace(t *testing.T) {
	dir := t.TempDir()
	free, ok := freeBytes(dir)
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
