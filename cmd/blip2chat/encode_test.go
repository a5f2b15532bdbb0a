package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/weights/safetensors"
)

const goldenRoot = "../../testdata/golden"

// convertForTest converts a golden checkpoint's vision side (f32) with the
// convert command and returns the model folder.
func convertForTest(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	var out, errb bytes.Buffer
	if code := run([]string{"convert", filepath.Join(goldenRoot, name, "hf"), "-o", dir, "--vision-type", "f32", "--vision-only"}, &out, &errb); code != 0 {
		t.Fatalf("convert %s: exit %d: %s", name, code, errb.String())
	}
	if !strings.Contains(out.String(), filepath.Join(dir, "vision.gguf")) {
		t.Errorf("convert printed %q", out.String())
	}
	return dir
}

func readTensors(t *testing.T, path string) map[string]safetensors.Tensor {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m := map[string]safetensors.Tensor{}
	for _, n := range f.Names() {
		m[n], _ = f.Tensor(n)
	}
	return m
}

func maxAbsDiff(t *testing.T, got, want safetensors.Tensor) float64 {
	t.Helper()
	if !slices.Equal(got.Shape, want.Shape) {
		t.Errorf("%s: shape %v, want %v", want.Name, got.Shape, want.Shape)
		return math.Inf(1)
	}
	g, err := got.Float32()
	if err != nil {
		t.Fatal(err)
	}
	w, err := want.Float32()
	if err != nil {
		t.Fatal(err)
	}
	d := 0.0
	for i := range w {
		d = math.Max(d, math.Abs(float64(g[i])-float64(w[i])))
	}
	if math.IsNaN(d) {
		return math.Inf(1)
	}
	return d
}

// TestEncodeGolden converts each golden checkpoint and runs the encode
// command on the golden image file (tolerance 1e-3, through our image
// preprocessing) and on the golden pixel_values (1e-4): the saved tensors
// have the golden names and shapes.
func TestEncodeGolden(t *testing.T) {
	for _, name := range []string{"blip2-llama", "blip2-t5", "blip2-opt", "instructblip-llama"} {
		t.Run(name, func(t *testing.T) {
			var meta struct {
				Image           string `json:"image"`
				Prompt          string `json:"prompt"`
				QFormerInputIDs []int  `json:"qformer_input_ids"`
			}
			data, err := os.ReadFile(filepath.Join(goldenRoot, name, "golden.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &meta); err != nil {
				t.Fatal(err)
			}
			model := convertForTest(t, name)
			goldenFile := filepath.Join(goldenRoot, name, "golden.safetensors")
			golden := readTensors(t, goldenFile)
			keys := []string{"vision_last_hidden_state", "qformer_last_hidden_state", "language_model_inputs"}

			for _, c := range []struct {
				from string
				tol  float64
			}{{"image", 1e-3}, {"pixel_values", 1e-4}} {
				out := filepath.Join(t.TempDir(), "out.safetensors")
				args := []string{"encode", "-m", model, "-o", out}
				if c.from == "image" {
					args = append(args, filepath.Join(goldenRoot, "images", meta.Image))
				} else {
					args = append(args, "--pixel-values", goldenFile)
				}
				if meta.QFormerInputIDs != nil {
					if c.from == "image" {
						args = append(args, "--instruction", meta.Prompt)
					} else {
						args = append(args, "--instruction-ids", strings.Trim(fmt.Sprint(meta.QFormerInputIDs), "[]"))
					}
				}
				var stdout, stderr bytes.Buffer
				if code := run(args, &stdout, &stderr); code != 0 {
					t.Fatalf("encode from %s: exit %d: %s", c.from, code, stderr.String())
				}
				for _, stage := range []string{"load", "preprocess", "vit", "qformer", "project", "write"} {
					if !strings.Contains(stderr.String(), stage+" ") {
						t.Errorf("stderr lacks the time of %s: %q", stage, stderr.String())
					}
				}
				got := readTensors(t, out)
				for _, k := range keys {
					d := maxAbsDiff(t, got[k], golden[k])
					t.Logf("from %s: %s max abs diff %.3g", c.from, k, d)
					if !(d <= c.tol) {
						t.Errorf("from %s: %s differs by %.3g > %g", c.from, k, d, c.tol)
					}
				}
				t.Logf("from %s: pixel_values max abs diff %.3g", c.from, maxAbsDiff(t, got["pixel_values"], golden["pixel_values"]))
				if meta.QFormerInputIDs != nil {
					ids, err := got["qformer_input_ids"].Int64()
					if err != nil || fmt.Sprint(ids) != fmt.Sprint(meta.QFormerInputIDs) {
						t.Errorf("qformer_input_ids %v (%v), want %v", ids, err, meta.QFormerInputIDs)
					}
				}
			}
		})
	}
}

// TestEncodeUsage: argument mistakes are usage errors (exit 2), bad input
// one-line errors (exit 1).
func TestEncodeUsage(t *testing.T) {
	model := convertForTest(t, "blip2-opt")
	img := filepath.Join(goldenRoot, "images", "husky.jpg")
	px := filepath.Join(goldenRoot, "blip2-opt", "golden.safetensors")
	out := filepath.Join(t.TempDir(), "o.safetensors")
	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no model", []string{"encode", img, "-o", out}, 2, "usage:"},
		{"no output", []string{"encode", "-m", model, img}, 2, "usage:"},
		{"image and pixel values", []string{"encode", "-m", model, img, "--pixel-values", px, "-o", out}, 2, "usage:"},
		{"no image", []string{"encode", "-m", model, "-o", out}, 2, "usage:"},
		{"missing model", []string{"encode", "-m", filepath.Join(t.TempDir(), "nope"), img, "-o", out}, 1, "no such model folder"},
		{"missing image", []string{"encode", "-m", model, filepath.Join(t.TempDir(), "x.jpg"), "-o", out}, 1, "x.jpg"},
		{"instruction to BLIP-2", []string{"encode", "-m", model, img, "-o", out, "--instruction", "hi"}, 1, "vocabulary"},
		{"bad ids", []string{"encode", "-m", model, img, "-o", out, "--instruction-ids", "1,x"}, 2, `"x"`},
		{"pixel file without pixel_values", []string{"encode", "-m", model, "--pixel-values", filepath.Join(goldenRoot, "blip2-itm", "golden.safetensors"), "-o", out}, 1, "no pixel_values"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(c.args, &stdout, &stderr)
			if code != c.code || !strings.Contains(stderr.String(), c.msg) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr.String(), c.code, c.msg)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("output written")
			}
		})
	}
}
