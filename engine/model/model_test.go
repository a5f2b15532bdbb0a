package model_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/engine/chat"
	"github.com/blip2chat/blip2chat/engine/imageprep"
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/engine/model"
	"github.com/blip2chat/blip2chat/engine/model/modeltest"
	"github.com/blip2chat/blip2chat/weights/gguf"
)

func TestMain(m *testing.M) { modeltest.Main(m) }

// TestOpen opens each golden case's model folder, checks what it reports,
// and runs the vision side on the golden image: the soft tokens must match
// transformers' language_model_inputs.
func TestOpen(t *testing.T) {
	arch := map[string]string{"llama": "llama", "t5": "t5", "opt": "blip2-opt"}
	for _, c := range modeltest.Cases(t, "llama", "t5", "opt") {
		t.Run(c.Name, func(t *testing.T) {
			dir := modeltest.ModelDir(t, c, "f32")
			var stages []string
			m, err := model.Open(dir, model.Options{LlamaLib: modeltest.LibDir(t), Threads: 1, NCtx: 300,
				Progress: func(stage string, f float64) {
					if f == 1 {
						stages = append(stages, stage)
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			in := m.Info()
			if b := m.LM.Info().Backend; b == "" || (c.TextType == "opt") != (b == "Go (OPT)") {
				t.Errorf("backend %q", b)
			}
			if in.Family != c.Family || in.LLMFamily != c.TextType || in.Arch != arch[c.TextType] || in.NEmbd == 0 || in.NumQueryTokens == 0 {
				t.Errorf("info %+v", in)
			}
			if strings.Join(stages, ",") != "vision,language model" {
				t.Errorf("progress stages %v", stages)
			}
			s := m.DefaultSettings()
			if s.NCtx != 300 || s.Threads != 1 || s.Sampling() || chat.TemplateFor(c.Family, s.Template).Validate() != nil {
				t.Errorf("default settings %+v", s)
			}
			s3 := chat.DefaultSettings()
			s3.MaxTokens = 3
			ch, err := m.NewChat(s3)
			if err != nil {
				t.Fatal(err)
			}
			if got := ch.Settings(); got.MaxTokens != 3 || got.NCtx != 300 || got.Template != s.Template {
				t.Errorf("chat settings %+v", got)
			}
			ch.Close()

			instr := ""
			if c.Family == "instructblip" {
				instr = c.Golden.Prompt
			}
			soft, err := m.SoftTokens(context.Background(), filepath.Join(modeltest.GoldenDir(t), "images", c.Golden.Image), instr)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := modeltest.Float32(t, c.Tensors(t), "language_model_inputs")
			if d := modeltest.MaxAbsDiff(soft, want); d > 1e-4 {
				t.Errorf("soft tokens differ from golden by %.3g", d)
			} else {
				t.Logf("soft tokens within %.3g of golden", d)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	lib := modeltest.LibDir(t)
	cs := modeltest.Cases(t, "llama", "t5")
	var llama, t5 modeltest.Case
	for _, c := range cs {
		switch c.TextType {
		case "llama":
			llama = c
		case "t5":
			t5 = c
		}
	}
	llamaDir := modeltest.ModelDir(t, llama, "f32")
	t5Dir := modeltest.ModelDir(t, t5, "f32")
	tmp := t.TempDir()
	visionOnly := filepath.Join(tmp, "vision-only")
	os.Mkdir(visionOnly, 0o755)
	data, _ := os.ReadFile(filepath.Join(llamaDir, model.VisionFile))
	os.WriteFile(filepath.Join(visionOnly, model.VisionFile), data, 0o644)
	wide := filepath.Join(tmp, "wide.gguf")
	tiny := modeltest.DefaultTinyLlama()
	tiny.NEmbd = llama.OtherWidth()
	if _, err := tiny.Write(wide); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(tmp, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	for _, tc := range []struct {
		name, dir, llm, want string
	}{
		{"missing folder", filepath.Join(tmp, "none"), "", "no such model folder"},
		{"not a folder", file, "", "not a model folder"},
		{"no vision.gguf", tmp, "", "no vision.gguf"},
		{"no llm.gguf", visionOnly, "", "no llm.gguf"},
		{"other family", llamaDir, filepath.Join(t5Dir, model.LLMFile), "is a t5 model but"},
		{"other width", llamaDir, wide, fmt.Sprintf("takes %d-wide embeddings but", tiny.NEmbd)},
	} {
		_, err := model.Open(tc.dir, model.Options{LlamaLib: lib, LLMPath: tc.llm})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line with %q", tc.name, err, tc.want)
		}
		// Check finds the same problems without loading the weights.
		err = model.Check(tc.dir, model.Options{LlamaLib: lib, LLMPath: tc.llm})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Check %s: %v, want one line with %q", tc.name, err, tc.want)
		}
	}
	// The missing llm.gguf is a sentinel, so that each command can say
	// what to do (ask: --llm; chat has no such flag).
	if _, err := model.Open(visionOnly, model.Options{LlamaLib: lib}); !errors.Is(err, model.ErrNoLLM) || strings.Contains(err.Error(), "--llm") {
		t.Errorf("vision-only folder: %v, want model.ErrNoLLM without a flag", err)
	}
	if err := model.Check(llamaDir, model.Options{LlamaLib: lib}); err != nil {
		t.Errorf("Check %s: %v", llamaDir, err)
	}
	// OpenLLM refuses what no backend runs.
	opt := filepath.Join(tmp, "opt.gguf")
	data, _ = os.ReadFile(filepath.Join(llamaDir, model.LLMFile))
	os.WriteFile(opt, []byte(strings.Replace(string(data), "\x05\x00\x00\x00\x00\x00\x00\x00llama", "\x05\x00\x00\x00\x00\x00\x00\x00lxama", 1)), 0o644)
	if _, err := model.OpenLLM(opt, lib, lm.OpenOptions{}); err == nil {
		t.Error("an unknown architecture opened")
	}
	if _, err := model.OpenLLM(filepath.Join(llamaDir, model.VisionFile), lib, lm.OpenOptions{}); err == nil || !strings.Contains(err.Error(), "is a vision file") {
		t.Errorf("vision file as the language model: %v", err)
	}
}

// copyModelDir copies a model folder's files into a new folder.
func copyModelDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	for _, name := range []string{model.VisionFile, model.LLMFile} {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestC5ModelFileChanged (C5): a model file truncated while a chat runs
// (the probe: `truncate -s 0 vision.gguf`, then /image; `truncate -s 0
// llm.gguf`, then a question) gives an error saying the file changed on
// disk, for every backend, never a fatal fault (SIGBUS) that takes the
// process and the terminal with it.
func TestC5ModelFileChanged(t *testing.T) {
	img := filepath.Join(modeltest.GoldenDir(t), "images", "cat.jpg")
	for _, c := range modeltest.Cases(t, "llama", "t5", "opt") {
		if c.Family != "blip-2" {
			continue
		}
		for _, file := range []string{model.VisionFile, model.LLMFile} {
			t.Run(c.Name+"/"+file, func(t *testing.T) {
				dir := copyModelDir(t, modeltest.ModelDir(t, c, "f32"))
				m, err := model.Open(dir, model.Options{LlamaLib: modeltest.LibDir(t), Threads: 2, NCtx: 128})
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				s := chat.DefaultSettings()
				s.MaxTokens = 2
				ch, err := m.NewChat(s)
				if err != nil {
					t.Fatal(err)
				}
				defer ch.Close()
				ctx := context.Background()
				pic, err := imageprep.Load(ctx, img)
				if err != nil {
					t.Fatal(err)
				}
				if err := ch.SetImage(ctx, pic, img); err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(filepath.Join(dir, file), 0); err != nil {
					t.Fatal(err)
				}
				err = ch.SetImage(ctx, pic, img)
				if err == nil {
					_, err = ch.Ask(ctx, "what is it?", func(string) {})
				}
				if !errors.Is(err, gguf.ErrChanged) || !strings.Contains(err.Error(), "changed on disk") {
					t.Fatalf("after truncating %s: %v, want the file changed on disk", file, err)
				}
				t.Log(err)
			})
		}
	}
}
