package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/engine/llamacpp/llamatest"
	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/lmconv"
)

// TestConvertCommand: flags, the refusal of a language model without a
// converter (one line naming the family, nothing written) and the warning
// about unused tensors.
func TestConvertCommand(t *testing.T) {
	hf := func(name string) string { return filepath.Join(goldenRoot, name, "hf") }
	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no output", []string{"convert", hf("blip2-opt")}, 2, "usage:"},
		{"no input", []string{"convert", "-o", "x"}, 2, "usage:"},
		{"bad vision type", []string{"convert", hf("blip2-opt"), "-o", "OUT", "--vision-type", "q4_0", "--vision-only"}, 1, `unknown weight type "q4_0"`},
		{"missing folder", []string{"convert", filepath.Join(goldenRoot, "nope"), "-o", "OUT", "--vision-only"}, 1, "nope"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "m")
			for i, a := range c.args {
				if a == "OUT" {
					c.args[i] = out
				}
			}
			var stdout, stderr bytes.Buffer
			code := run(c.args, &stdout, &stderr)
			if code != c.code || !strings.Contains(stderr.String(), c.msg) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr.String(), c.code, c.msg)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("output folder created")
			}
		})
	}

	// Families whose converter is not registered in this binary.
	for _, fam := range []struct{ ckpt, family string }{{"blip2-opt", "opt"}, {"blip2-t5", "t5"}, {"instructblip-llama", "llama"}} {
		if slices.Contains(lmconv.Families(), fam.family) {
			continue
		}
		t.Run("unsupported "+fam.family, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "m")
			var stdout, stderr bytes.Buffer
			code := run([]string{"convert", hf(fam.ckpt), "-o", out}, &stdout, &stderr)
			want := `language model "` + fam.family + `" is not supported yet; use --vision-only to convert the vision side`
			if code != 1 || !strings.Contains(stderr.String(), want) || strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want one line with %q", code, stderr.String(), want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("output folder created")
			}
		})
	}

	t.Run("vision only", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "m")
		var stdout, stderr bytes.Buffer
		if code := run([]string{"convert", "--vision-only", hf("blip2-t5"), "-o", out, "--vision-type", "q8_0"}, &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		warn := 0
		for _, l := range strings.Split(stderr.String(), "\n") {
			if strings.HasPrefix(l, "warning: ") {
				warn++
				if !strings.Contains(l, "52 checkpoint tensor(s) not used") || !strings.Contains(l, "language_model.decoder.") {
					t.Errorf("warning %q", l)
				}
			}
		}
		if warn != 1 {
			t.Errorf("%d warning lines in %q", warn, stderr.String())
		}
		if !strings.Contains(stderr.String(), "converted ") {
			t.Errorf("no progress summary in %q", stderr.String())
		}
		if got := strings.TrimSpace(stdout.String()); got != "wrote "+filepath.Join(out, "vision.gguf") {
			t.Errorf("stdout %q", got)
		}
	})
}

// TestConvertQuantizesLLM: the default LLaMA/T5 type is q4_k_m, made by
// llama.cpp's quantizer after the f16 file is written; an explicit f16 skips it.
func TestConvertQuantizesLLM(t *testing.T) {
	lib := llamatest.LibDir(t)
	for _, c := range []struct {
		ckpt, llmType string
		fileType      uint32 // general.file_type (llama_ftype) of llm.gguf
	}{
		{"blip2-llama", "", 15},    // LLAMA_FTYPE_MOSTLY_Q4_K_M
		{"blip2-t5", "q4_k_m", 15}, // encoder-decoder too
		{"blip2-llama", "f16", 1},  // LLAMA_FTYPE_MOSTLY_F16
	} {
		t.Run(c.ckpt+"/"+c.llmType, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "m")
			args := []string{"convert", filepath.Join(goldenRoot, c.ckpt, "hf"), "-o", out, "--llama-lib", lib}
			if c.llmType != "" {
				args = append(args, "--llm-type", c.llmType)
			}
			var stdout, stderr bytes.Buffer
			if code := run(args, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			f, err := gguf.Open(filepath.Join(out, "llm.gguf"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if ft, _ := f.Uint32("general.file_type"); ft != c.fileType {
				t.Errorf("general.file_type %d, want %d", ft, c.fileType)
			}
			if st, err := os.Stat(filepath.Join(out, "llm.gguf")); err != nil || st.Mode().Perm() != 0o644 {
				t.Errorf("llm.gguf mode: %v %v", st, err)
			}
			if leftovers, _ := filepath.Glob(filepath.Join(out, ".*")); len(leftovers) != 0 {
				t.Errorf("temporary files left: %v", leftovers)
			}
		})
	}
}
