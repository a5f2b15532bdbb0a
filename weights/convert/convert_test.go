package convert

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/plan"
	"github.com/blip2chat/blip2chat/weights/safetensors"
)

const goldenDir = "../../testdata/golden"

func hfDir(name string) string { return filepath.Join(goldenDir, name, "hf") }

// copyCheckpoint writes a copy of a golden checkpoint into a temp folder,
// with edit applied to its tensor list (the small JSON files are copied
// as they are).
func copyCheckpoint(t *testing.T, name string, edit func([]safetensors.WriteTensor) []safetensors.WriteTensor) string {
	t.Helper()
	src := hfDir(name)
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".safetensors") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := safetensors.Open(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ts []safetensors.WriteTensor
	for _, n := range f.Names() {
		x, _ := f.Tensor(n)
		ts = append(ts, safetensors.WriteTensor{Name: n, DType: x.DType, Shape: x.Shape, Data: bytes.Clone(x.Data)})
	}
	if edit != nil {
		ts = edit(ts)
	}
	if err := safetensors.WriteFile(filepath.Join(dst, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dst
}

// listDir returns the names in dir (sorted), nil if it does not exist.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var n []string
	for _, e := range es {
		n = append(n, e.Name())
	}
	return n
}

// modelDirWithFile makes a model folder that already holds a user file
// and an older vision.gguf, which a failed conversion must not touch.
func modelDirWithFile(t *testing.T) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "model")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"notes.txt", VisionFile} {
		if err := os.WriteFile(filepath.Join(d, f), []byte("keep me"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func checkUntouched(t *testing.T, d string) {
	t.Helper()
	if got := strings.Join(listDir(t, d), ","); got != "notes.txt,"+VisionFile {
		t.Errorf("model folder now holds %s", got)
	}
	for _, f := range []string{"notes.txt", VisionFile} {
		if b, _ := os.ReadFile(filepath.Join(d, f)); string(b) != "keep me" {
			t.Errorf("%s was modified", f)
		}
	}
}

// TestRefuseBadTensor: a missing, mis-shaped or non-float tensor refuses
// the conversion with its name, and nothing is written, into a new folder
// or an existing one.
func TestRefuseBadTensor(t *testing.T) {
	remove := func(name string) func([]safetensors.WriteTensor) []safetensors.WriteTensor {
		return func(ts []safetensors.WriteTensor) []safetensors.WriteTensor {
			var out []safetensors.WriteTensor
			for _, x := range ts {
				if x.Name != name {
					out = append(out, x)
				}
			}
			return out
		}
	}
	reshape := func(name string, shape []int) func([]safetensors.WriteTensor) []safetensors.WriteTensor {
		return func(ts []safetensors.WriteTensor) []safetensors.WriteTensor {
			for i := range ts {
				if ts[i].Name == name {
					n := 1
					for _, d := range shape {
						n *= d
					}
					ts[i].Shape, ts[i].Data = shape, make([]byte, 4*n)
				}
			}
			return ts
		}
	}
	retype := func(name string) func([]safetensors.WriteTensor) []safetensors.WriteTensor {
		return func(ts []safetensors.WriteTensor) []safetensors.WriteTensor {
			for i := range ts {
				if ts[i].Name == name {
					ts[i].DType = safetensors.I32
				}
			}
			return ts
		}
	}
	cases := []struct {
		name, ckpt, tensor string
		edit               func([]safetensors.WriteTensor) []safetensors.WriteTensor
		want               string
	}{
		{"missing vision weight", "blip2-opt", "vision_model.encoder.layers.1.mlp.fc2.weight", nil, "missing"},
		{"missing v_bias", "blip2-llama", "vision_model.encoder.layers.0.self_attn.v_bias", nil, "missing"},
		{"missing fused qkv bias", "blip2-t5", "", nil, "missing"}, // t5 layout, layer 1 without qkv.bias
		{"missing cross-attention", "blip2-opt", "qformer.encoder.layer.0.crossattention.attention.key.weight", nil, "missing"},
		{"missing query tokens", "blip2-llama", "query_tokens", nil, "missing"},
		{"missing projection", "blip2-opt", "language_projection.bias", nil, "missing"},
		{"missing instruct text ffn", "instructblip-llama", "qformer.encoder.layer.1.output.dense.weight", nil, "missing"},
		{"missing word embeddings", "instructblip-llama", "qformer.embeddings.word_embeddings.weight", nil, "missing"},
		{"transposed fc1", "blip2-opt", "vision_model.encoder.layers.0.mlp.fc1.weight", reshape("vision_model.encoder.layers.0.mlp.fc1.weight", []int{176, 264}), "shape [176 264], expected [264 176]"},
		{"short position embedding", "blip2-llama", "vision_model.embeddings.position_embedding", reshape("vision_model.embeddings.position_embedding", []int{1, 256, 176}), "expected [1 257 176]"},
		{"wrong query count", "instructblip-llama", "query_tokens", reshape("query_tokens", []int{1, 7, 128}), "expected [1 8 128]"},
		{"integer weight", "blip2-opt", "qformer.encoder.layer.1.attention.attention.value.weight", retype("qformer.encoder.layer.1.attention.attention.value.weight"), "dtype I32"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			edit := c.edit
			tensor := c.tensor
			if c.ckpt == "blip2-t5" && tensor == "" {
				tensor = "vision_model.encoder.layers.1.self_attn.qkv.bias"
			}
			if edit == nil {
				edit = remove(tensor)
			}
			src := copyCheckpoint(t, c.ckpt, edit)
			for _, existing := range []bool{false, true} {
				out := filepath.Join(t.TempDir(), "new")
				if existing {
					out = modelDirWithFile(t)
				}
				var warn, prog bytes.Buffer
				_, err := Convert(context.Background(), src, out, Options{VisionType: "f16", VisionOnly: true, Warnings: &warn, Progress: &prog})
				if err == nil {
					t.Fatal("converted without error")
				}
				if !strings.Contains(err.Error(), tensor) || !strings.Contains(err.Error(), c.want) {
					t.Errorf("error %q does not name %s (%s)", err, tensor, c.want)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error is not one line: %q", err)
				}
				if existing {
					checkUntouched(t, out)
				} else if l := listDir(t, out); l != nil {
					t.Errorf("new model folder created with %v", l)
				}
				if prog.Len() != 0 {
					t.Errorf("progress printed before validation ended: %q", prog.String())
				}
			}
		})
	}
}

// TestUnusedWarning: tensors no output reads are listed in one warning
// line, with their count.
func TestUnusedWarning(t *testing.T) {
	cases := []struct {
		ckpt  string
		count string
		first string
	}{
		{"blip2-opt", "36 checkpoint tensor(s)", "language_model.model.decoder.embed_positions.weight"},
		{"instructblip-llama", "21 checkpoint tensor(s)", "language_model.lm_head.weight"},
	}
	for _, c := range cases {
		t.Run(c.ckpt, func(t *testing.T) {
			var warn bytes.Buffer
			res, err := Convert(context.Background(), hfDir(c.ckpt), t.TempDir(), Options{VisionType: "f32", VisionOnly: true, Warnings: &warn})
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(warn.String()), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "warning: ") || !strings.Contains(lines[0], c.count) || !strings.Contains(lines[0], c.first) {
				t.Errorf("warnings %q: want one line with %q and %q", warn.String(), c.count, c.first)
			}
			for _, u := range res.Unused {
				if !strings.HasPrefix(u, "language_model.") {
					t.Errorf("vision tensor %s reported unused", u)
				}
			}
		})
	}
}

// TestLanguageModelRequired: without --vision-only, a family lmconv does
// not convert, and a checkpoint without a language model, are refused by
// name, and nothing is written.
func TestLanguageModelRequired(t *testing.T) {
	noLM := copyCheckpoint(t, "blip2-opt", func(ts []safetensors.WriteTensor) []safetensors.WriteTensor {
		var out []safetensors.WriteTensor
		for _, x := range ts {
			if !strings.HasPrefix(x.Name, "language_model.") {
				out = append(out, x)
			}
		}
		return out
	})
	out := filepath.Join(t.TempDir(), "m")
	_, err := Convert(context.Background(), noLM, out, Options{})
	if want := "has no language model (Blip2ForConditionalGeneration); use --vision-only"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want %q", err, want)
	}
	if l := listDir(t, out); l != nil {
		t.Errorf("wrote %v", l)
	}
	// config.json refuses other families; a Source made otherwise is
	// refused by planLLM.
	src, err := Open(hfDir("blip2-opt"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cfg := *src.Config
	cfg.Text.ModelType = "gptj"
	src.Config = &cfg
	if _, err := PlanFiles(src, Options{}); err == nil || !strings.Contains(err.Error(), `language model "gptj" is not supported yet; use --vision-only to convert the vision side`) {
		t.Errorf("gptj: %v", err)
	}
}

// fakeLLM plans an llm.gguf holding the token embeddings, as a stand-in
// for lmconv.
func fakeLLM(name string, hook func()) func(*Source, Options) (*plan.File, error) {
	return func(src *Source, opt Options) (*plan.File, error) {
		t, err := src.Copy("token_embd.weight", MatrixType(gguf.TypeF16, []int{1000, 64}), []int{1000, 64}, name, 1000, 64)
		if err != nil {
			return nil, err
		}
		if hook != nil {
			inner := t.Values
			t.Values = func() ([]float32, error) { hook(); return inner() }
		}
		return &plan.File{Name: "llm.gguf", KV: []gguf.KV{{Key: gguf.KeyArchitecture, Value: "opt"}}, Tensors: []plan.Tensor{t},
			Skipped: []string{"language_model.lm_head.weight"}, Warnings: []string{"from the fake"}}, nil
	}
}

// TestLanguageModelPlan: the language model's plan is written beside the
// vision file, the tensors it reads or skips are not reported unused, its
// warnings are passed on; its plan errors refuse the conversion before
// anything is written.
func TestLanguageModelPlan(t *testing.T) {
	const embed = "language_model.model.decoder.embed_tokens.weight"
	out := modelDirWithFile(t)
	var warn bytes.Buffer
	res, err := Convert(context.Background(), hfDir("blip2-opt"), out, Options{planLLM: fakeLLM(embed, nil), Warnings: &warn})
	if err != nil {
		t.Fatal(err)
	}
	if res.LLMFamily != "opt" || len(res.Files) != 3 || filepath.Base(res.Files[2]) != GenerationConfigFile {
		t.Errorf("result %+v", res)
	}
	for _, u := range res.Unused {
		if u == embed || u == "language_model.lm_head.weight" {
			t.Errorf("%s reported unused", u)
		}
	}
	if !strings.HasPrefix(warn.String(), "warning: from the fake\n") {
		t.Errorf("warnings %q", warn.String())
	}
	if got := strings.Join(listDir(t, out), ","); got != "generation_config.json,llm.gguf,notes.txt,vision.gguf" {
		t.Errorf("model folder holds %s", got)
	}
	f, err := gguf.Open(filepath.Join(out, "llm.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	info, _, ok := f.Tensor("token_embd.weight")
	f.Close()
	if !ok || info.Type != gguf.TypeF16 || info.Dims[0] != 64 || info.Dims[1] != 1000 {
		t.Errorf("llm.gguf token_embd.weight: %+v", info)
	}

	// A plan error (here a wrong tensor name) refuses everything.
	out = modelDirWithFile(t)
	if _, err := Convert(context.Background(), hfDir("blip2-opt"), out, Options{planLLM: fakeLLM("language_model.nope", nil)}); err == nil || !strings.Contains(err.Error(), "language_model.nope") {
		t.Errorf("error %v does not name the tensor", err)
	}
	checkUntouched(t, out)
}

// TestInterrupted: cancelling while the files are written removes the
// temporary files and leaves the folder as it was.
func TestInterrupted(t *testing.T) {
	for _, existing := range []bool{true, false} {
		out := filepath.Join(t.TempDir(), "m")
		if existing {
			out = modelDirWithFile(t)
		}
		ctx, cancel := context.WithCancel(context.Background())
		_, err := Convert(ctx, hfDir("blip2-opt"), out, Options{Progress: &bytes.Buffer{}, planLLM: fakeLLM("language_model.model.decoder.embed_tokens.weight", cancel)})
		cancel()
		if err == nil || !strings.Contains(err.Error(), "interrupted") || !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want an interruption matching context.Canceled", err)
		}
		if existing {
			checkUntouched(t, out)
		} else if l := listDir(t, out); l != nil {
			t.Errorf("left %v", l)
		}
	}
}

// TestFolderErrors: a missing checkpoint folder, a file given for one, a
// folder without config.json and an output "folder" that is a file are
// refused with one line naming them, and nothing is written.
func TestFolderErrors(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	empty := filepath.Join(tmp, "empty")
	os.Mkdir(empty, 0o755)
	out := filepath.Join(tmp, "out")
	for _, c := range []struct{ name, in, out, want string }{
		{"missing input", filepath.Join(tmp, "none"), out, filepath.Join(tmp, "none") + ": no such folder"},
		{"input is a file", file, out, file + " is a file; give the checkpoint's folder"},
		{"no config.json", empty, out, empty + " has no config.json"},
		{"output is a file", hfDir("blip2-opt"), file, file + " is a file, not a model folder"},
	} {
		_, err := Convert(context.Background(), c.in, c.out, Options{VisionOnly: true})
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v, want one line with %q", c.name, err, c.want)
		}
	}
	if l := listDir(t, tmp); len(l) != 2 {
		t.Errorf("left %v", l)
	}
}

// TestPickleRefused: a folder with only a PyTorch pickle checkpoint is
// refused by the safetensors reader's explanation.
func TestPickleRefused(t *testing.T) {
	d := t.TempDir()
	cfg, err := os.ReadFile(filepath.Join(hfDir("blip2-opt"), "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(d, "config.json"), cfg, 0o644)
	os.WriteFile(filepath.Join(d, "pytorch_model.bin"), []byte("PK\x03\x04 not really"), 0o644)
	out := filepath.Join(t.TempDir(), "m")
	_, err = Convert(context.Background(), d, out, Options{VisionOnly: true})
	if !errors.Is(err, safetensors.ErrPickle) {
		t.Errorf("error %v, want ErrPickle", err)
	}
	if l := listDir(t, out); l != nil {
		t.Errorf("wrote %v", l)
	}
}

// TestWeightTypes: the requested type goes to matrices whose input size
// allows it; vectors, embeddings and norms stay F32.
func TestWeightTypes(t *testing.T) {
	for _, c := range []struct {
		opt  string
		want map[string]gguf.Type
	}{
		{"f32", map[string]gguf.Type{"v.blk.0.attn_qkv.weight": gguf.TypeF32, "q.blk.0.attn_q.weight": gguf.TypeF32, "v.pos_embd": gguf.TypeF32}},
		{"f16", map[string]gguf.Type{"v.blk.0.attn_qkv.weight": gguf.TypeF16, "v.patch_embd.weight": gguf.TypeF16, "proj.weight": gguf.TypeF16,
			"v.blk.0.attn_qkv.bias": gguf.TypeF32, "q.query_tokens": gguf.TypeF32, "q.word_embd": gguf.TypeF32, "v.class_embd": gguf.TypeF32}},
		// The default is q8_0 (DefaultVisionType).
		{"", map[string]gguf.Type{"v.blk.0.attn_qkv.weight": gguf.TypeF16, "q.blk.0.attn_q.weight": gguf.TypeQ8_0, "proj.weight": gguf.TypeQ8_0,
			"v.blk.0.attn_qkv.bias": gguf.TypeF32, "q.query_tokens": gguf.TypeF32, "q.word_embd": gguf.TypeF32, "v.class_embd": gguf.TypeF32}},
		// 176 and 264 (ViT widths) and 588 (patch) are not multiples of
		// 32: those fall back to f16; the Q-Former's 128 and 256 are.
		{"q8_0", map[string]gguf.Type{"v.blk.0.attn_qkv.weight": gguf.TypeF16, "v.patch_embd.weight": gguf.TypeF16, "v.blk.1.ffn_down.weight": gguf.TypeF16,
			"q.blk.0.attn_q.weight": gguf.TypeQ8_0, "q.blk.0.cross_k.weight": gguf.TypeF16, "q.blk.1.ffn_down_query.weight": gguf.TypeQ8_0,
			"q.blk.1.ffn_up.weight": gguf.TypeQ8_0, "proj.weight": gguf.TypeQ8_0, "q.embd_ln.weight": gguf.TypeF32, "q.pos_embd": gguf.TypeF32}},
	} {
		t.Run(c.opt, func(t *testing.T) {
			out := t.TempDir()
			if _, err := Convert(context.Background(), hfDir("instructblip-llama"), out, Options{VisionType: c.opt, VisionOnly: true}); err != nil {
				t.Fatal(err)
			}
			f, err := gguf.Open(filepath.Join(out, VisionFile))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for name, typ := range c.want {
				info, _, ok := f.Tensor(name)
				if !ok || info.Type != typ {
					t.Errorf("%s: %v (present %v), want %v", name, info.Type, ok, typ)
				}
			}
		})
	}
	if _, err := Convert(context.Background(), hfDir("blip2-opt"), t.TempDir(), Options{VisionType: "q4", VisionOnly: true}); err == nil {
		t.Error("unknown vision type accepted")
	}
	for _, c := range []struct {
		want  gguf.Type
		shape []int
		got   gguf.Type
	}{
		{gguf.TypeQ8_0, []int{64, 1408}, gguf.TypeQ8_0},
		{gguf.TypeQ8_0, []int{1408, 588}, gguf.TypeF16},
		{gguf.TypeQ8_0, []int{1408}, gguf.TypeF32},
		{gguf.TypeF16, []int{10, 3}, gguf.TypeF16},
		{gguf.TypeF32, []int{10, 3}, gguf.TypeF32},
	} {
		if g := MatrixType(c.want, c.shape); g != c.got {
			t.Errorf("MatrixType(%v, %v) = %v, want %v", c.want, c.shape, g, c.got)
		}
	}
}

// TestLayoutsAndMetadata: both checkpoint layouts give the same fused qkv
// bias layout, and the metadata describes the model.
func TestLayoutsAndMetadata(t *testing.T) {
	for _, c := range []struct {
		ckpt, layout, family, llm, prompt string
		vocab                             int
	}{
		{"blip2-llama", "hub", "blip-2", "llama", PromptFormatBLIP2, 0},
		{"blip2-t5", "transformers5", "blip-2", "t5", PromptFormatBLIP2, 0},
		{"instructblip-llama", "hub", "instructblip", "llama", PromptFormatInstructBLIP, 1000},
		{"blip2-itm", "hub", "blip-2", "", PromptFormatBLIP2, 1000},
	} {
		t.Run(c.ckpt, func(t *testing.T) {
			out := t.TempDir()
			if _, err := Convert(context.Background(), hfDir(c.ckpt), out, Options{VisionType: "f32", VisionOnly: true}); err != nil {
				t.Fatal(err)
			}
			f, err := gguf.Open(filepath.Join(out, VisionFile))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for k, want := range map[string]string{"blip2.checkpoint_layout": c.layout, "blip2.family": c.family,
				"blip2.llm.family": c.llm, "blip2.prompt_format": c.prompt, "general.architecture": "blip2-vision"} {
				if got, _ := f.String(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			vocab, _ := f.Strings("blip2.qformer.tokenizer.vocab")
			if len(vocab) != c.vocab {
				t.Errorf("vocab of %d tokens, want %d", len(vocab), c.vocab)
			}
			// The fused bias: q, zeros (hub) or the saved middle third, v.
			ck, err := safetensors.OpenCheckpoint(hfDir(c.ckpt))
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			_, data, ok := f.Tensor("v.blk.1.attn_qkv.bias")
			if !ok {
				t.Fatal("no v.blk.1.attn_qkv.bias")
			}
			got, _ := (safetensors.Tensor{DType: safetensors.F32, Shape: []int{len(data) / 4}, Data: data}).Float32()
			var want []float32
			if c.layout == "hub" {
				q, _ := ck.Tensor("vision_model.encoder.layers.1.self_attn.q_bias")
				v, _ := ck.Tensor("vision_model.encoder.layers.1.self_attn.v_bias")
				qf, _ := q.Float32()
				vf, _ := v.Float32()
				want = append(append(append(want, qf...), make([]float32, len(qf))...), vf...)
			} else {
				b, _ := ck.Tensor("vision_model.encoder.layers.1.self_attn.qkv.bias")
				want, _ = b.Float32()
			}
			if len(got) != len(want) {
				t.Fatalf("bias of %d values, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("bias[%d] = %v, want %v", i, got[i], want[i])
				}
			}
		})
	}
}

// TestPreprocessorRefused: preprocessing the engine would not follow
// (another resampling filter, no resize, no RGB conversion, another size)
// is refused with one line naming the setting, and nothing is written.
func TestPreprocessorRefused(t *testing.T) {
	for _, c := range []struct{ edit, want string }{
		{`"resample": 2`, "resample 2 is not supported: blip2chat resizes images with bicubic resampling (3)"},
		{`"do_resize": false`, "do_resize false is not supported"},
		{`"do_convert_rgb": false`, "do_convert_rgb false is not supported"},
		{`"size": {"height": 364, "width": 364}`, "resizes to 364x364 but the vision model takes 224x224 images"},
	} {
		t.Run(c.edit, func(t *testing.T) {
			hf := copyCheckpoint(t, "blip2-opt", nil)
			path := filepath.Join(hf, "preprocessor_config.json")
			if err := os.WriteFile(path, []byte("{"+c.edit+"}"), 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "m")
			_, err := Convert(context.Background(), hf, out, Options{VisionOnly: true})
			if err == nil || !strings.Contains(err.Error(), "preprocessor_config.json: "+c.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v, want one line with %q", err, c.want)
			}
			if l := listDir(t, out); l != nil {
				t.Errorf("wrote %v", l)
			}
		})
	}
}
