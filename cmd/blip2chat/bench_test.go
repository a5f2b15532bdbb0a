package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBenchUsage(t *testing.T) {
	model := convertForTest(t, "blip2-opt") // f32, vision only
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"nothing to bench", []string{"bench"}, 2, "usage: blip2chat bench"},
		{"both", []string{"bench", "--synthetic", "vision", "-m", model}, 2, "usage:"},
		{"stray argument", []string{"bench", "-m", model, "extra"}, 2, "usage:"},
		{"runs", []string{"bench", "-m", model, "--runs", "0"}, 1, "--runs must be at least 1"},
		{"threads", []string{"bench", "-m", model, "--threads", "-1"}, 1, "--threads must not be negative"},
		{"no decode tokens", []string{"bench", "-m", model, "--decode-tokens", "0"}, 1, "--decode-tokens must be from 1 to 2048"},
		{"absurd prompt", []string{"bench", "-m", model, "--prompt-tokens", "100000"}, 1, "--prompt-tokens and --decode-tokens must be from 1 to 2048, are 100000 and 64"},
		{"unknown synthetic", []string{"bench", "--synthetic", "gpt-5", "--cache", t.TempDir()}, 1, `no synthetic model "gpt-5" (want flan-t5-xl, itm-vit-g, opt-2.7b, vicuna-7b, vision)`},
		{"bad vision type", []string{"bench", "--synthetic", "vision", "--vision-type", "q4_0"}, 1, `unknown weight type "q4_0"`},
		{"type of a converted model", []string{"bench", "-m", model, "--vision-type", "q8_0"}, 1, "has f32 weights; --vision-type applies to --synthetic"},
		{"llm type of a converted model", []string{"bench", "-m", model, "--llm-type", "f16"}, 1, "--llm-type applies to --synthetic"},
		{"missing folder", []string{"bench", "-m", filepath.Join(t.TempDir(), "none")}, 1, "vision.gguf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			if code != tc.code || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errb.String(), tc.code, tc.want)
			}
		})
	}
}

// TestBenchModel benchmarks converted tiny models: the vision side alone
// (table and JSON) and the whole pipeline with the OPT language model.
func TestBenchModel(t *testing.T) {
	vis := convertForTest(t, "blip2-opt")
	var out, errb bytes.Buffer
	if code := run([]string{"bench", "-m", vis, "--runs", "2", "--threads", "1"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{vis, "vision weights f32", "1 threads", "2 runs", "vit", "qformer", "GFLOP/s", "peak RSS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}

	full := filepath.Join(t.TempDir(), "full")
	if code := run([]string{"convert", filepath.Join(goldenRoot, "blip2-opt", "hf"), "-o", full, "--vision-type", "f16", "--llm-type", "f32"}, &out, &errb); code != 0 {
		t.Fatalf("convert: exit %d: %s", code, errb.String())
	}
	for _, tc := range []struct {
		name   string
		args   []string
		stages []string
	}{
		{"vision", []string{"-m", vis}, []string{"vit", "qformer"}},
		{"opt", []string{"-m", full}, []string{"preprocess", "vit", "qformer", "projection", "tokenize", "prefill", "first_token", "decode", "ttft", "decode_beam5"}},
		{"opt vision only", []string{"-m", full, "--vision-only"}, []string{"vit", "qformer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out.Reset()
			args := append([]string{"bench", "--json", "--runs", "2"}, tc.args...)
			if code := run(args, &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			if strings.Count(out.String(), "\n") != 1 {
				t.Errorf("not one line: %q", out.String())
			}
			var r struct {
				Stages map[string]struct {
					MedianS    float64   `json:"median_s"`
					MinS       float64   `json:"min_s"`
					GFLOPS     float64   `json:"gflops"`
					TokensPerS float64   `json:"tokens_per_s"`
					Runs       []float64 `json:"runs_s"`
				} `json:"stages"`
				PeakRSSMiB float64 `json:"peak_rss_mib"`
				LLM        string  `json:"llm"`
			}
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatalf("%v: %s", err, out.String())
			}
			if len(r.Stages) != len(tc.stages) {
				t.Errorf("stages %v, want %v", r.Stages, tc.stages)
			}
			for _, n := range tc.stages {
				s, ok := r.Stages[n]
				if !ok || s.MedianS <= 0 || s.MinS <= 0 || s.MinS > s.MedianS || len(s.Runs) != 2 {
					t.Errorf("stage %s: %+v", n, s)
				}
			}
			if r.Stages["vit"].GFLOPS <= 0 || r.Stages["qformer"].GFLOPS <= 0 {
				t.Errorf("no GFLOP/s: %s", out.String())
			}
			if d, ok := r.Stages["decode"]; ok && (d.TokensPerS <= 0 || r.Stages["prefill"].TokensPerS <= 0 || r.LLM == "") {
				t.Errorf("no tokens/s or LLM: %s", out.String())
			}
			if _, err := os.Stat("/proc/self/status"); err == nil && r.PeakRSSMiB <= 0 {
				t.Errorf("peak RSS %v", r.PeakRSSMiB)
			}
		})
	}
}
