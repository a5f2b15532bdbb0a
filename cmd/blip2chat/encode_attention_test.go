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
)

// rowSumDeviation is the largest |sum - 1| over the rows (last axis) of
// probabilities.
func rowSumDeviation(p []float32, rowLen int) float64 {
	worst := 0.0
	for r := 0; r < len(p)/rowLen; r++ {
		var s float64
		for _, v := range p[r*rowLen : (r+1)*rowLen] {
			s += float64(v)
		}
		worst = max(worst, math.Abs(s-1))
	}
	return worst
}

// TestEncodeAttention: `encode --attention-out` writes the Q-Former's
// cross-attention probabilities within 1e-5 of transformers' (f32
// weights, from the reference pixel_values; InstructBLIP with its
// instruction), in transformers' shape, rows summing to 1; from the image
// file too. For a retrieval model, --text gives the ITM pass's map, which
// depends on the text.
func TestEncodeAttention(t *testing.T) {
	for _, name := range []string{"blip2-opt", "instructblip-llama"} {
		t.Run(name, func(t *testing.T) {
			var meta struct {
				Inputs struct {
					Image       string `json:"image"`
					IDs         []int  `json:"qformer_input_ids"`
					Instruction string `json:"qformer_instruction"`
				} `json:"inputs"`
			}
			data, err := os.ReadFile(filepath.Join(goldenRoot, name, "attention.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &meta); err != nil {
				t.Fatal(err)
			}
			model := convertForTest(t, name)
			want := readTensors(t, filepath.Join(goldenRoot, name, "attention.safetensors"))["qformer_cross_attentions"]
			for _, from := range []string{"pixel_values", "image"} {
				dir := t.TempDir()
				out, att := filepath.Join(dir, "out.safetensors"), filepath.Join(dir, "att.safetensors")
				args := []string{"encode", "-m", model, "-o", out, "--attention-out", att}
				if from == "image" {
					args = append(args, filepath.Join(goldenRoot, "images", meta.Inputs.Image))
					if meta.Inputs.Instruction != "" {
						args = append(args, "--instruction", meta.Inputs.Instruction)
					}
				} else {
					args = append(args, "--pixel-values", filepath.Join(goldenRoot, name, "golden.safetensors"))
					if meta.Inputs.IDs != nil {
						args = append(args, "--instruction-ids", strings.Trim(fmt.Sprint(meta.Inputs.IDs), "[]"))
					}
				}
				var stdout, stderr bytes.Buffer
				if code := run(args, &stdout, &stderr); code != 0 {
					t.Fatalf("encode: exit %d: %s", code, stderr.String())
				}
				got := readTensors(t, att)["qformer_cross_attentions"]
				d := maxAbsDiff(t, got, want)
				p, _ := got.Float32()
				dev := rowSumDeviation(p, got.Shape[len(got.Shape)-1])
				t.Logf("from %s: max |p - transformers| %.3g, rows sum to 1 within %.3g", from, d, dev)
				if from == "pixel_values" && !(d <= 1e-5) {
					t.Errorf("cross-attention differs from transformers' by %.3g > 1e-5", d)
				}
				if from == "image" && !(d <= 1e-4) { // the image pipeline's pixels may differ a little from PIL's
					t.Errorf("from the image: cross-attention differs from transformers' by %.3g", d)
				}
				if dev > 1e-5 {
					t.Errorf("a row sums to 1%+.3g", dev)
				}
			}
		})
	}
	t.Run("blip2-itm", func(t *testing.T) {
		model := convertForTest(t, "blip2-itm")
		img := filepath.Join(goldenRoot, "images", "husky.jpg")
		var maps [][]float32
		for _, text := range []string{"a dog in the snow", "two people riding bicycles"} {
			dir := t.TempDir()
			out, att := filepath.Join(dir, "out.safetensors"), filepath.Join(dir, "att.safetensors")
			var stdout, stderr bytes.Buffer
			if code := run([]string{"encode", "-m", model, img, "-o", out, "--attention-out", att, "--text", text}, &stdout, &stderr); code != 0 {
				t.Fatalf("encode --text: exit %d: %s", code, stderr.String())
			}
			got := readTensors(t, att)["qformer_cross_attentions"]
			if !slices.Equal(got.Shape, []int{1, 2, 8, 257}) {
				t.Errorf("shape %v", got.Shape)
			}
			p, _ := got.Float32()
			if dev := rowSumDeviation(p, 257); dev > 1e-5 {
				t.Errorf("%q: a row sums to 1%+.3g", text, dev)
			}
			if l, err := readTensors(t, out)["itm_logits"].Float32(); err != nil || len(l) != 2 {
				t.Errorf("%q: itm_logits %v (%v)", text, l, err)
			}
			maps = append(maps, p)
		}
		if slices.Equal(maps[0], maps[1]) {
			t.Error("the ITM attention does not depend on the text")
		}
		var stdout, stderr bytes.Buffer
		gen := convertForTest(t, "blip2-opt")
		if code := run([]string{"encode", "-m", gen, img, "-o", filepath.Join(t.TempDir(), "o.safetensors"), "--text", "a dog"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "not a retrieval model") {
			t.Errorf("--text on a generation model: exit %d: %s", code, stderr.String())
		}
	})
}
