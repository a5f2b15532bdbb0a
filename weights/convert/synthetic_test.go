package convert

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
	"github.com/blip2chat/blip2chat/weights/safetensors"
)

// TestSyntheticCheckpointTensors: the stand-in checkpoint's tensors are
// exactly the vision side of the golden checkpoints (hub layout: q_bias and
// v_bias; the transformers 5 case stores the fused qkv bias instead).
func TestSyntheticCheckpointTensors(t *testing.T) {
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
				if strings.HasPrefix(n, "language_model.") {
					continue
				}
				x, _ := ck.Tensor(n)
				if strings.HasSuffix(n, ".self_attn.qkv.bias") { // transformers 5: fused
					D := x.Shape[0] / 3
					p := strings.TrimSuffix(n, "qkv.bias")
					want[p+"q_bias"], want[p+"v_bias"] = fmt.Sprint([]int{D}), fmt.Sprint([]int{D})
					continue
				}
				want[n] = fmt.Sprint(x.Shape)
			}
			got := map[string]string{}
			for _, x := range SyntheticCheckpointTensors(cfg) {
				if _, dup := got[x.Name]; dup {
					t.Errorf("%s listed twice", x.Name)
				}
				got[x.Name] = fmt.Sprint(x.Shape)
			}
			for n, s := range want {
				if got[n] != s {
					t.Errorf("%s: synthetic shape %q, checkpoint %s", n, got[n], s)
				}
			}
			for n := range got {
				if _, ok := want[n]; !ok {
					t.Errorf("%s: not in the checkpoint", n)
				}
			}
		})
	}
}

// TestSyntheticVisionLayout: a synthetic file has the converted file's
// metadata (but its name and the Q-Former vocabulary, which a synthetic
// model has none of) and the same tensors, types and shapes, in order.
func TestSyntheticVisionLayout(t *testing.T) {
	for _, name := range []string{"blip2-opt", "instructblip-llama"} {
		for _, typ := range []string{"f32", "f16", "q8_0"} {
			t.Run(name+"/"+typ, func(t *testing.T) {
				cfg, err := hfconfig.Load(hfDir(name))
				if err != nil {
					t.Fatal(err)
				}
				realDir, synDir := t.TempDir(), t.TempDir()
				if _, err := Convert(context.Background(), hfDir(name), realDir, Options{VisionType: typ, VisionOnly: true}); err != nil {
					t.Fatal(err)
				}
				s, err := PlanSyntheticVision(cfg, typ, 7)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Write(context.Background(), synDir, Options{}); err != nil {
					t.Fatal(err)
				}
				want := openGGUF(t, filepath.Join(realDir, VisionFile))
				got := openGGUF(t, filepath.Join(synDir, VisionFile))
				skip := map[string]bool{"general.name": true, "blip2.qformer.tokenizer.vocab": true, "blip2.qformer.tokenizer.lower_case": true}
				kvs := func(f *gguf.File) map[string]any {
					m := map[string]any{}
					for _, kv := range f.KV {
						if !skip[kv.Key] {
							m[kv.Key] = kv.Value
						}
					}
					return m
				}
				if g, w := kvs(got), kvs(want); !reflect.DeepEqual(g, w) {
					for k, v := range w {
						if !reflect.DeepEqual(g[k], v) {
							t.Errorf("%s: synthetic %v, converted %v", k, g[k], v)
						}
					}
					for k := range g {
						if _, ok := w[k]; !ok {
							t.Errorf("%s: only in the synthetic file", k)
						}
					}
				}
				if n, _ := got.String("general.name"); !strings.Contains(n, "synthetic") {
					t.Errorf("general.name %q", n)
				}
				if len(got.Tensors) != len(want.Tensors) || len(s.Tensors) != len(want.Tensors) {
					t.Fatalf("%d (plan %d) tensors, converted %d", len(got.Tensors), len(s.Tensors), len(want.Tensors))
				}
				var bytes int64
				for i, g := range got.Tensors {
					w := want.Tensors[i]
					if g.Name != w.Name || g.Type != w.Type || !slices.Equal(g.Dims, w.Dims) {
						t.Errorf("tensor %d: synthetic %s %s %v, converted %s %s %v", i, g.Name, g.Type, g.Dims, w.Name, w.Type, w.Dims)
					}
					bytes += int64(g.Size())
				}
				if pb, err := s.Bytes(); err != nil || bytes != pb {
					t.Errorf("plan says %d bytes (%v), file holds %d", pb, err, bytes)
				}
			})
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

// TestSyntheticDeterministic: the same seed writes the same bytes, another
// seed other weights; planning leaves nothing in the temp folder.
func TestSyntheticDeterministic(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	cfg, err := hfconfig.Load(hfDir("blip2-opt"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(seed uint64) []byte {
		s, err := PlanSyntheticVision(cfg, "q8_0", seed)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := s.Write(context.Background(), dir, Options{}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, VisionFile))
		if err != nil {
			t.Fatal(err)
		}
		return b
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

// TestSyntheticValues: matrices have variance 1/fan_in, norm gains sit
// near 1, biases and embeddings are small; everything is finite.
func TestSyntheticValues(t *testing.T) {
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
		mean, variance, maxAbs  float64
		meanTol, varTol, absTol float64
	}{
		{"v.blk.0.ffn_up.weight", []int{256, 1408}, 0, 1.0 / 1408, math.Sqrt(3.0 / 1408), 1e-3, 0.05, 1e-6},
		{"v.blk.0.ffn_down.weight", []int{64, 6144}, 0, 1.0 / 6144, math.Sqrt(3.0 / 6144), 1e-3, 0.05, 1e-6},
		{"v.blk.0.ln1.weight", []int{4096}, 1, 0.01 / 3, 0.1 + 1, 0.01, 0.1, 1e-6},
		{"v.blk.0.ffn_up.bias", []int{4096}, 0, 0.0004 / 3, 0.02, 0.002, 0.1, 1e-6},
		{"v.pos_embd", []int{257, 64}, 0, 0.0004, 0.02 * math.Sqrt(3), 0.002, 0.1, 1e-6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := RandomValues(tc.name, tc.shape, 3)()
			if err != nil {
				t.Fatal(err)
			}
			if len(v) != product(tc.shape) {
				t.Fatalf("%d values for %v", len(v), tc.shape)
			}
			mean, variance, maxAbs := stats(v)
			if math.Abs(mean-tc.mean) > tc.meanTol {
				t.Errorf("mean %g, want %g ± %g", mean, tc.mean, tc.meanTol)
			}
			if math.Abs(variance/tc.variance-1) > tc.varTol {
				t.Errorf("variance %g, want %g ± %.0f%%", variance, tc.variance, 100*tc.varTol)
			}
			if maxAbs > tc.maxAbs+tc.absTol {
				t.Errorf("largest magnitude %g, bound %g", maxAbs, tc.maxAbs)
			}
		})
	}
	a, _ := RandomValues("x.weight", []int{4, 32}, 1)()
	b, _ := RandomValues("y.weight", []int{4, 32}, 1)()
	if slices.Equal(a, b) {
		t.Error("two tensors got the same values")
	}
}

// TestSyntheticRefusals: bad types and configs are errors.
func TestSyntheticRefusals(t *testing.T) {
	cfg, err := hfconfig.Load(hfDir("blip2-opt"))
	if err != nil {
		t.Fatal(err)
	}
	bad := *cfg
	bad.Vision.PatchSize = 15
	for _, tc := range []struct {
		name string
		cfg  *hfconfig.Config
		typ  string
		want string
	}{
		{"unknown type", cfg, "q4_0", "unknown weight type"},
		{"bf16", cfg, "bf16", "bf16 is not supported"},
		{"bad config", &bad, "f16", "patch_size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := PlanSyntheticVision(tc.cfg, tc.typ, 1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
