package synth

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
	"github.com/blip2chat/blip2chat/weights/hftok"
	"github.com/blip2chat/blip2chat/weights/lmconv"
	"github.com/blip2chat/blip2chat/weights/safetensors"
	"github.com/blip2chat/blip2chat/weights/sentencepiece"
)

const golden = "../../testdata/golden"

func hfDir(name string) string { return filepath.Join(golden, name, "hf") }

// goldenModel is the synthetic model of a golden checkpoint: its config and
// every small file (tokenizers, preprocessor), so that only the weights
// differ from the checkpoint's conversion.
func goldenModel(t *testing.T, name string, seed uint64) *Model {
	t.Helper()
	m := &Model{Files: map[string][]byte{}, Seed: seed}
	err := filepath.WalkDir(hfDir(name), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".safetensors") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(hfDir(name), path)
		if rel == "config.json" {
			m.Config = data
		} else {
			m.Files[filepath.ToSlash(rel)] = data
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRand: SplitMix64's reference outputs (Vigna's splitmix64.c, seed
// 1234567); Float32 covers [-1, 1).
func TestRand(t *testing.T) {
	r := NewRand(1234567)
	for i, want := range []uint64{6457827717110365317, 3203168211198807973, 9817491932198370423, 4593380528125082431, 16408922859458223821} {
		if got := r.Uint64(); got != want {
			t.Errorf("output %d = %d, want %d", i, got, want)
		}
	}
	lo, hi := float32(0), float32(0)
	for range 100000 {
		x := r.Float32()
		lo, hi = min(lo, x), max(hi, x)
	}
	if lo < -1 || lo > -0.999 || hi >= 1 || hi < 0.999 {
		t.Errorf("Float32 range [%v, %v]", lo, hi)
	}
}

// TestCheckpointTensors: the stand-in checkpoint holds exactly the golden
// checkpoints' tensors and shapes (hub layout: q_bias and v_bias where
// transformers 5 stores the fused qkv bias; T5's embedding copies, which
// the converter only checks, left out).
func TestCheckpointTensors(t *testing.T) {
	for _, name := range []string{"blip2-opt", "blip2-llama", "blip2-t5", "instructblip-llama"} {
		t.Run(name, func(t *testing.T) {
			cfg, err := hfconfig.Load(hfDir(name))
			if err != nil {
				t.Fatal(err)
			}
			ck, err := safetensors.OpenCheckpoint(hfDir(name))
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			want := map[string]string{}
			for _, n := range ck.Names() {
				x, _ := ck.Tensor(n)
				switch {
				case n == lmconv.Prefix+"encoder.embed_tokens.weight" || n == lmconv.Prefix+"decoder.embed_tokens.weight":
					continue
				case strings.HasSuffix(n, ".self_attn.qkv.bias"): // transformers 5: fused
					D := x.Shape[0] / 3
					p := strings.TrimSuffix(n, "qkv.bias")
					want[p+"q_bias"], want[p+"v_bias"] = fmt.Sprint([]int{D}), fmt.Sprint([]int{D})
					continue
				}
				want[n] = fmt.Sprint(x.Shape)
			}
			c, err := checkpointTensors(cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, n := range c.Names() {
				x, ok := c.Tensor(n)
				if _, dup := got[n]; dup || !ok || x.DType != safetensors.F16 {
					t.Errorf("%s: listed twice or not F16", n)
				}
				got[n] = fmt.Sprint(x.Shape)
			}
			for n, s := range want {
				if got[n] != s {
					t.Errorf("%s: stand-in shape %q, checkpoint %s", n, got[n], s)
				}
			}
			for n := range got {
				if _, ok := want[n]; !ok {
					t.Errorf("%s: not in the checkpoint", n)
				}
			}
		})
	}
	if err := languageModelTensors(&standIn{}, &hfconfig.TextConfig{ModelType: "gpt2"}); err == nil {
		t.Error("gpt2: no error")
	}
}

// TestLayout: a synthetic model of a golden checkpoint, with its tokenizer
// files, is the checkpoint's conversion but for the weights: the same
// metadata (but general.name, and the checkpoint layout: the stand-in is
// always the hub's) and the same tensors, types and shapes, in order, for
// every weight type.
func TestLayout(t *testing.T) {
	for _, c := range []struct{ name, vision, llm string }{
		{"blip2-opt", "f32", "q8_0"},
		{"blip2-opt", "q8_0", "f16"},
		{"blip2-llama", "f16", "f16"},
		{"blip2-t5", "q8_0", "q8_0"},
		{"instructblip-llama", "f16", "q8_0"},
	} {
		t.Run(c.name+"/"+c.vision+"/"+c.llm, func(t *testing.T) {
			opt := convert.Options{VisionType: c.vision, LLMType: c.llm}
			realDir, synDir := t.TempDir(), t.TempDir()
			if _, err := convert.Convert(context.Background(), hfDir(c.name), realDir, opt); err != nil {
				t.Fatal(err)
			}
			m := goldenModel(t, c.name, 7)
			paths, err := m.Write(context.Background(), synDir, opt)
			if err != nil {
				t.Fatal(err)
			}
			files, err := m.Plan(opt)
			if err != nil {
				t.Fatal(err)
			}
			for i, path := range paths {
				if filepath.Ext(path) != ".gguf" { // generation_config.json, copied
					want, _ := os.ReadFile(filepath.Join(realDir, filepath.Base(path)))
					if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
						t.Errorf("%s differs from the converted folder's (%v)", path, err)
					}
					continue
				}
				want := openGGUF(t, filepath.Join(realDir, filepath.Base(path)))
				got := openGGUF(t, path)
				sameLayout(t, filepath.Base(path), got, want)
				if n, _ := got.String(gguf.KeyName); n != "synthetic (random weights)" {
					t.Errorf("general.name %q", n)
				}
				var size int64
				for _, x := range got.Tensors {
					size += int64(x.Size())
				}
				if b, err := files[i].Bytes(); err != nil || b != size {
					t.Errorf("%s: plan says %d bytes (%v), file holds %d", path, b, err, size)
				}
			}
		})
	}
}

func sameLayout(t *testing.T, name string, got, want *gguf.File) {
	t.Helper()
	kvs := func(f *gguf.File) map[string]any {
		m := map[string]any{}
		for _, kv := range f.KV {
			if kv.Key != gguf.KeyName && kv.Key != convert.KeyCheckpointLayout {
				m[kv.Key] = kv.Value
			}
		}
		return m
	}
	g, w := kvs(got), kvs(want)
	for k, v := range w {
		if !reflect.DeepEqual(g[k], v) {
			t.Errorf("%s: %s: synthetic %.80v, converted %.80v", name, k, g[k], v)
		}
	}
	for k := range g {
		if _, ok := w[k]; !ok {
			t.Errorf("%s: %s only in the synthetic file", name, k)
		}
	}
	if len(got.Tensors) != len(want.Tensors) {
		t.Fatalf("%s: %d tensors, converted %d", name, len(got.Tensors), len(want.Tensors))
	}
	for i, g := range got.Tensors {
		w := want.Tensors[i]
		if g.Name != w.Name || g.Type != w.Type || !slices.Equal(g.Dims, w.Dims) {
			t.Errorf("%s: tensor %d: synthetic %s %s %v, converted %s %s %v", name, i, g.Name, g.Type, g.Dims, w.Name, w.Type, w.Dims)
		}
	}
}

func openGGUF(t *testing.T, path string) *gguf.File {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestGeneratedTokenizers: without tokenizer files the family's own are
// generated, of the model's vocabulary size, and converted.
func TestGeneratedTokenizers(t *testing.T) {
	for _, name := range []string{"blip2-opt", "blip2-llama", "blip2-t5"} {
		t.Run(name, func(t *testing.T) {
			m := goldenModel(t, name, 1)
			m.Files = nil
			f, err := m.PlanLLM("f16")
			if err != nil {
				t.Fatal(err)
			}
			cfg, _ := hfconfig.Parse(m.Config)
			// All rows, but T5's padding (its pieces are a multiple of
			// 128, then 100 sentinels, as 32000 + 100 of 32128).
			want := cfg.Text.VocabSize
			if name == "blip2-t5" {
				want -= (want - 100) % 128
			}
			tokens, _ := f.Value(gguf.KeyTokens)
			if n := len(tokens.([]string)); n != want {
				t.Errorf("%d tokens, want %d of vocab_size %d", n, want, cfg.Text.VocabSize)
			}
			for _, k := range []string{gguf.KeyEOSID, gguf.KeyAddBOS} {
				if _, ok := f.Value(k); !ok {
					t.Errorf("no %s", k)
				}
			}
		})
	}
	for _, tc := range []struct {
		name               string
		cfg                string
		pieces, modelType  int
		unk, bos, eos, pad int
		first              string
	}{
		{Vicuna7B, realShapes[Vicuna7B].config, 32000, 2, 0, 1, 2, -1, "<unk> <s> </s> <0x00>"},
		{FlanT5XL, realShapes[FlanT5XL].config, 32000, 1, 2, -1, 1, 0, "<pad> </s> <unk> \u2581a"},
	} {
		cfg, _ := hfconfig.Parse([]byte(tc.cfg))
		files, err := tokenizerFiles(&cfg.Text)
		if err != nil {
			t.Fatal(err)
		}
		for name, data := range files {
			if !strings.HasSuffix(name, ".model") {
				continue
			}
			m, err := sentencepiece.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			first := []string{m.Pieces[0].Text, m.Pieces[1].Text, m.Pieces[2].Text, m.Pieces[3].Text}
			if len(m.Pieces) != tc.pieces || m.ModelType != tc.modelType || m.UnkID != tc.unk || m.BOSID != tc.bos ||
				m.EOSID != tc.eos || m.PadID != tc.pad || strings.Join(first, " ") != tc.first {
				t.Errorf("%s: %d pieces of type %d, ids %d %d %d %d, first %q", tc.name, len(m.Pieces), m.ModelType, m.UnkID, m.BOSID, m.EOSID, m.PadID, first)
			}
		}
	}
	files, err := gpt2Files(300)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for n, data := range files {
		os.WriteFile(filepath.Join(dir, n), data, 0o644)
	}
	b, _, err := hftok.LoadBPEDir(dir)
	if err != nil || len(b.Vocab) != 300 || b.Vocab["</s>"] != 2 || b.Vocab["Ġ"] != 4+' ' {
		t.Errorf("GPT-2 files: %d tokens, %v", len(b.Vocab), err)
	}
	if _, err := gpt2Files(100); err == nil {
		t.Error("an OPT vocabulary of 100: no error")
	}
}

// TestDeterministic: the same seed writes the same bytes, another seed other
// weights of the same size; planning leaves nothing in the temp folder.
func TestDeterministic(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	write := func(seed uint64) []byte {
		m := goldenModel(t, "blip2-opt", seed)
		dir := t.TempDir()
		if _, err := m.Write(context.Background(), dir, convert.Options{VisionType: "q8_0", LLMType: "q8_0"}); err != nil {
			t.Fatal(err)
		}
		var all []byte
		for _, f := range []string{convert.VisionFile, lmconv.FileName} {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		return all
	}
	a, b, c := write(1), write(1), write(2)
	if !bytes.Equal(a, b) {
		t.Error("seed 1 twice: different files")
	}
	if bytes.Equal(a, c) || len(a) != len(c) {
		t.Errorf("seeds 1 and 2: equal %v, sizes %d %d", bytes.Equal(a, c), len(a), len(c))
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in the temp folder: %v", left)
	}
}

// TestValues: matrices have variance 1/fan_in, norm gains sit near 1,
// biases and embeddings are small, everything is finite; with Init.Std,
// matrices and embeddings have that deviation and gains are exactly 1.
func TestValues(t *testing.T) {
	stats := func(v []float32) (mean, variance, maxAbs float64) {
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("non-finite value %v", x)
			}
			mean += float64(x)
			maxAbs = max(maxAbs, math.Abs(float64(x)))
		}
		mean /= float64(len(v))
		for _, x := range v {
			variance += (float64(x) - mean) * (float64(x) - mean)
		}
		return mean, variance / float64(len(v)), maxAbs
	}
	for _, tc := range []struct {
		name                    string
		shape                   []int
		init                    Init
		mean, variance, maxAbs  float64
		meanTol, varTol, absTol float64
	}{
		{"v.blk.0.ffn_up.weight", []int{256, 1408}, Init{}, 0, 1.0 / 1408, math.Sqrt(3.0 / 1408), 1e-3, 0.05, 1e-6},
		{"v.blk.0.ffn_down.weight", []int{64, 6144}, Init{}, 0, 1.0 / 6144, math.Sqrt(3.0 / 6144), 1e-3, 0.05, 1e-6},
		{"v.blk.0.ln1.weight", []int{4096}, Init{}, 1, 0.01 / 3, 0.1 + 1, 0.01, 0.1, 1e-6},
		{"v.blk.0.ffn_up.bias", []int{4096}, Init{}, 0, 0.0004 / 3, 0.02, 0.002, 0.1, 1e-6},
		{"v.pos_embd", []int{257, 64}, Init{}, 0, 0.0004, 0.02 * math.Sqrt(3), 0.002, 0.1, 1e-6},
		{"blk.0.attn_q.weight", []int{64, 64}, Init{Std: 0.5}, 0, 0.25, 0.5 * math.Sqrt(3), 0.02, 0.05, 1e-6},
		{"token_embd.weight", []int{400, 32}, Init{Std: 0.5}, 0, 0.25, 0.5 * math.Sqrt(3), 0.02, 0.05, 1e-6},
		{"blk.0.attn_norm.weight", []int{64}, Init{Std: 0.5}, 1, 0, 1, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Values(tc.name, tc.shape, 3, tc.init)()
			if err != nil {
				t.Fatal(err)
			}
			n := 1
			for _, d := range tc.shape {
				n *= d
			}
			if len(v) != n {
				t.Fatalf("%d values for %v", len(v), tc.shape)
			}
			mean, variance, maxAbs := stats(v)
			if math.Abs(mean-tc.mean) > tc.meanTol {
				t.Errorf("mean %g, want %g ± %g", mean, tc.mean, tc.meanTol)
			}
			if tc.variance == 0 && variance != 0 || tc.variance > 0 && math.Abs(variance/tc.variance-1) > tc.varTol {
				t.Errorf("variance %g, want %g ± %.0f%%", variance, tc.variance, 100*tc.varTol)
			}
			if maxAbs > tc.maxAbs+tc.absTol {
				t.Errorf("largest magnitude %g, bound %g", maxAbs, tc.maxAbs)
			}
		})
	}
	a, _ := Values("x.weight", []int{4, 32}, 1, Init{})()
	b, _ := Values("y.weight", []int{4, 32}, 1, Init{})()
	again, _ := Values("x.weight", []int{4, 32}, 1, Init{})()
	if slices.Equal(a, b) || !slices.Equal(a, again) {
		t.Error("two tensors got the same values, or one tensor different values")
	}
}

// TestRefusals: bad types and configs are errors.
func TestRefusals(t *testing.T) {
	good := goldenModel(t, "blip2-opt", 1)
	bad := goldenModel(t, "blip2-opt", 1)
	bad.Config = bytes.Replace(bad.Config, []byte(`"patch_size": 14`), []byte(`"patch_size": 15`), 1)
	if bytes.Equal(bad.Config, good.Config) {
		t.Fatal("test edit did not apply")
	}
	for _, tc := range []struct {
		name string
		m    *Model
		opt  convert.Options
		want string
	}{
		{"unknown type", good, convert.Options{VisionType: "q4_0", VisionOnly: true}, "unknown weight type"},
		{"bf16", good, convert.Options{VisionType: "bf16", VisionOnly: true}, "bf16 is not supported"},
		{"q4_k_m OPT", good, convert.Options{LLMType: "q4_k_m"}, "not available for OPT"},
		{"bad config", bad, convert.Options{VisionType: "f16", VisionOnly: true}, "patch_size"},
		{"not a config", &Model{Config: []byte("{")}, convert.Options{}, "synthetic model"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.m.Plan(tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestCocoImageSize: the -coco checkpoints' 364-pixel images (a larger
// position table) convert, with a preprocessor that resizes to 364.
func TestCocoImageSize(t *testing.T) {
	m := goldenModel(t, "blip2-opt", 1)
	m.Config = bytes.Replace(m.Config, []byte(`"image_size": 224`), []byte(`"image_size": 364`), 1)
	m.Files["preprocessor_config.json"] = bytes.Replace(m.Files["preprocessor_config.json"], []byte(`"height": 224,
  "width": 224`), []byte(`"height": 364,
  "width": 364`), 1)
	files, err := m.Plan(convert.Options{VisionOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{convert.KeyVisionImageSize, convert.KeyImageWidth, convert.KeyImageHeight} {
		if v, _ := files[0].Value(k); v != uint32(364) {
			t.Errorf("%s = %v", k, v)
		}
	}
	for _, x := range files[0].Tensors {
		if x.Name == convert.TensorPosEmbd && x.Shape[0] != 26*26+1 {
			t.Errorf("%s shape %v", x.Name, x.Shape)
		}
	}
}

// TestWriteCheckpoint writes a checkpoint folder of a golden config in
// three shards and converts it: what the real-size measurements do with
// the real shapes (WriteCheckpoint).
func TestWriteCheckpoint(t *testing.T) {
	for _, name := range []string{"blip2-opt", "instructblip-llama", "blip2-t5"} {
		cfg, err := os.ReadFile(filepath.Join(golden, name, "hf", "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := writeCheckpoint(dir, cfg, 3, 1); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 3; i++ {
			if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("model-%05d-of-00003.safetensors", i))); err != nil {
				t.Error(err)
			}
		}
		res, err := convert.Convert(context.Background(), dir, t.TempDir(), convert.Options{LLMType: "f16"})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(res.Unused) > 0 {
			t.Errorf("%s: unused %v", name, res.Unused)
		}
	}
}
