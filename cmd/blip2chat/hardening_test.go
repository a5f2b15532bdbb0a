package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/engine/kernels"
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/engine/model/modeltest"
	"github.com/blip2chat/blip2chat/weights/gguf"
)

// rewriteGGUF copies the GGUF file src to dst with its metadata passed
// through edit (which returns the value to write, or nil to drop the key)
// and its tensors unchanged: the probe's ggufpatch.py and vocabpatch.py.
func rewriteGGUF(t *testing.T, src, dst string, edit func(key string, v any) any) {
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := gguf.NewWriter()
	for _, kv := range f.KV {
		if v := edit(kv.Key, kv.Value); v != nil {
			w.Add(kv.Key, v)
		}
	}
	for _, ti := range f.Tensors {
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims); err != nil {
			t.Fatal(err)
		}
	}
	err = gguf.WriteFile(dst, w, func(i int, info gguf.TensorInfo, out io.Writer) error {
		_, data, _ := f.Tensor(info.Name)
		_, err := out.Write(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// setKey is an edit for rewriteGGUF that sets key to v.
func setKey(key string, v any) func(string, any) any {
	return func(k string, old any) any {
		if k == key {
			return v
		}
		return old
	}
}

// runWithin runs the command in-process and fails the test when it takes
// longer than d; fifos are then opened for writing, so that a command
// blocked in open(2) returns and the test can end.
func runWithin(t *testing.T, d time.Duration, args []string, fifos ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(args, &out, &errb) }()
	select {
	case code = <-done:
	case <-time.After(d):
		for _, f := range fifos {
			// Blocks until the command's open(2) takes the other end.
			go func() {
				if w, err := os.OpenFile(f, os.O_WRONLY, 0); err == nil {
					w.Close()
				}
			}()
		}
		t.Fatalf("%v still running after %v", args, d)
	}
	return code, out.String(), errb.String()
}

// oneLine checks a failure: exit status 1 and one line on stderr holding
// phrase.
func oneLine(t *testing.T, what string, code int, stderr, phrase string) {
	t.Helper()
	if code != 1 || !strings.Contains(stderr, phrase) || strings.Count(stderr, "\n") != 1 {
		t.Errorf("%s: exit %d, stderr %q; want 1 and one line saying %q", what, code, stderr, phrase)
	}
}

// TestH2ThreadsCapped (H2): --threads beyond the usable cores runs on the
// usable cores, in every backend (llama.cpp here, which took 150 times
// longer with 16 threads on 2 cores and spawned thousands with 100000),
// and says so once.
func TestH2ThreadsCapped(t *testing.T) {
	f := newCLIFixtures(t)
	usable := kernels.UsableThreads()
	for _, m := range []string{f.llama, f.opt} {
		start := time.Now()
		code, out, stderr := runWithin(t, 60*time.Second, []string{"ask", "-m", m, f.img, "what is it?", "--greedy", "--max-tokens", "3", "--threads", "100000", "--llama-lib", f.lib})
		took := time.Since(start)
		note := fmt.Sprintf("blip2chat ask: note: --threads 100000 is more than the %d usable cores; using %d\n", usable, usable)
		if code != 0 || stderr != note || out == "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want an answer and the note %q", m, code, out, stderr, note)
		}
		if took > 20*time.Second {
			t.Errorf("%s: --threads 100000 took %v", m, took)
		}
	}
	if n := lm.Threads(100000); n != usable {
		t.Errorf("lm.Threads(100000) = %d, want %d", n, usable)
	}
	if n := kernels.CapThreads(100000); n != usable {
		t.Errorf("kernels.CapThreads(100000) = %d, want %d", n, usable)
	}
}

// TestC4NumericFlags (C4): numeric flags are bounded by what they can
// mean: --ctx beyond what the answer needs is cut to it (not 24 GB of KV
// cache; a context larger than the machine's memory is refused by the
// backend, see engine/lm/llamacpp's TestC4ContextBeyondMemory), and --runs,
// --threads and --ctx of the other commands are checked.
func TestC4NumericFlags(t *testing.T) {
	f := newCLIFixtures(t)
	ask := func(extra ...string) []string {
		return append([]string{"ask", "-m", f.llama, f.img, "what is it?", "--greedy", "--threads", "1", "--llama-lib", f.lib}, extra...)
	}
	start := time.Now()
	code, out, stderr := runWithin(t, 60*time.Second, ask("--ctx", "100000000", "--max-tokens", "3"))
	if code != 0 || out == "" || stderr != "" || time.Since(start) > 20*time.Second {
		t.Errorf("--ctx 100000000: exit %d after %v, stdout %q, stderr %q", code, time.Since(start), out, stderr)
	}
	for _, c := range []struct {
		args   []string
		code   int
		phrase string
	}{
		{[]string{"bench", "-m", f.opt, "--runs", "1000000"}, 1, "--runs must be at most 1000"},
		{[]string{"chat", "-m", f.opt, "--threads", "-1"}, 2, "--threads -1 is negative"},
		{[]string{"chat", "-m", f.opt, "--ctx", "-5"}, 2, "--ctx -5 is negative"},
		{[]string{"demo", "--threads", "-3"}, 2, "--threads -3 is negative"},
	} {
		code, _, stderr := runWithin(t, 30*time.Second, c.args)
		if code != c.code || !strings.Contains(stderr, c.phrase) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, stderr, c.code, c.phrase)
		}
	}
}

// TestC2VisionMetadata (C2): a vision.gguf whose metadata convert would
// never have written (an image of 100000x100000 or 20000x20000 pixels, a
// size other than the ViT's, no layers, a NaN epsilon, another resampling)
// is refused at load, at once, with the check convert runs
// (convert.CheckVisionMetadata), instead of allocating 40 GB.
func TestC2VisionMetadata(t *testing.T) {
	f := newCLIFixtures(t)
	src := filepath.Join(f.opt, "vision.gguf")
	for _, c := range []struct {
		key    string
		value  any
		phrase string
	}{
		{"blip2.image.width", uint32(100000), "metadata blip2.image.width = 100000 is out of range [1, 16384]"},
		{"blip2.image.height", uint32(20000), "metadata blip2.image.height = 20000 is out of range [1, 16384]"},
		{"blip2.image.width", uint32(300), "differs from blip2.vision.image_size"},
		{"blip2.vision.block_count", uint32(0), "metadata blip2.vision.block_count = 0 is out of range"},
		{"blip2.qformer.block_count", uint32(0), "metadata blip2.qformer.block_count = 0 is out of range"},
		{"blip2.qformer.cross_attention_freq", uint32(0), "cross_attention_freq = 0 is out of range"},
		{"blip2.vision.layer_norm_epsilon", float32(math.NaN()), "blip2.vision.layer_norm_epsilon = NaN: must be a finite number"},
		{"blip2.qformer.layer_norm_epsilon", float32(math.Inf(1)), "blip2.qformer.layer_norm_epsilon = +Inf: must be a finite number"},
		{"blip2.image.resample", uint32(99), "blip2.image.resample = 99 is out of range [3, 3]"},
		{"blip2.image.std", []float32{0.5, 0, 0.5}, "blip2.image.std[1] = 0: must be a finite number in (0"},
		{"blip2.image.rescale_factor", float32(math.Inf(1)), "rescale_factor = +Inf"},
	} {
		t.Run(fmt.Sprintf("%s=%v", c.key, c.value), func(t *testing.T) {
			dir := copyDir(t, f.opt, filepath.Join(t.TempDir(), "m"), nil)
			rewriteGGUF(t, src, filepath.Join(dir, "vision.gguf"), setKey(c.key, c.value))
			for _, args := range [][]string{
				{"ask", "-m", dir, f.img, "q", "--max-tokens", "1"},
				{"encode", "-m", dir, f.img, "-o", filepath.Join(dir, "o.safetensors")},
			} {
				start := time.Now()
				code, _, stderr := runWithin(t, 60*time.Second, args)
				oneLine(t, args[0], code, stderr, c.phrase)
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("%s: refused after %v", args[0], d)
				}
			}
		})
	}
}

// patchSafetensors overwrites the first value of an F32 tensor of the
// safetensors file at path with v.
func patchSafetensors(t *testing.T, path, tensor string, v float32) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(data)
	var header map[string]struct {
		DType   string `json:"dtype"`
		Offsets [2]int `json:"data_offsets"`
	}
	if err := json.Unmarshal(data[8:8+n], &header); err != nil {
		t.Fatal(err)
	}
	e, ok := header[tensor]
	if !ok || e.DType != "F32" {
		t.Fatalf("%s: no F32 tensor %s", path, tensor)
	}
	binary.LittleEndian.PutUint32(data[8+int(n)+e.Offsets[0]:], math.Float32bits(v))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// editConfig rewrites the config.json of the checkpoint folder dir with
// edit applied to its text_config (text) or vision_config.
func editConfig(t *testing.T, dir, section string, edit func(map[string]any)) {
	t.Helper()
	p := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	edit(cfg[section].(map[string]any))
	if data, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestU4NonFiniteAtConvert (U4): convert refuses what would only show up
// later as an empty or garbled answer: a NaN or infinite weight, a weight
// f16 cannot hold, and norm epsilons that f32 stores as +Inf (1e39) or 0
// (1e-300) — the metadata checked with the loaders' own functions.
func TestU4NonFiniteAtConvert(t *testing.T) {
	tmp := t.TempDir()
	hf := filepath.Join(goldenRoot, "blip2-llama", "hf")
	for i, c := range []struct {
		name   string
		edit   func(dir string)
		extra  []string
		phrase string
	}{
		{"NaN in a vision weight", func(dir string) {
			patchSafetensors(t, filepath.Join(dir, "model.safetensors"), "vision_model.embeddings.patch_embedding.weight", float32(math.NaN()))
		}, nil, "tensor v.patch_embd.weight: value 0 is NaN: the checkpoint's weights are damaged"},
		{"+Inf in a language model weight", func(dir string) {
			patchSafetensors(t, filepath.Join(dir, "model.safetensors"), "language_model.model.norm.weight", float32(math.Inf(1)))
		}, nil, "tensor output_norm.weight: value 0 is +Inf"},
		{"a weight f16 cannot hold", func(dir string) {
			patchSafetensors(t, filepath.Join(dir, "model.safetensors"), "vision_model.embeddings.patch_embedding.weight", 1e6)
		}, []string{"--vision-type", "f16"}, "value 0, 1e+06, does not fit F16 (at most 65504)"},
		{"rms_norm_eps 1e39", func(dir string) {
			editConfig(t, dir, "text_config", func(m map[string]any) { m["rms_norm_eps"] = 1e39 })
		}, nil, "llama.attention.layer_norm_rms_epsilon = +Inf: must be a finite number in (0, 1]"},
		{"rms_norm_eps 1e-300", func(dir string) {
			editConfig(t, dir, "text_config", func(m map[string]any) { m["rms_norm_eps"] = 1e-300 })
		}, nil, "llama.attention.layer_norm_rms_epsilon = 0: must be a finite number in (0, 1]"},
		{"rope_theta 1e39", func(dir string) {
			editConfig(t, dir, "text_config", func(m map[string]any) { m["rope_theta"] = 1e39 })
		}, nil, "llama.rope.freq_base = +Inf"},
		{"vision layer_norm_eps 1e39", func(dir string) {
			editConfig(t, dir, "vision_config", func(m map[string]any) { m["layer_norm_eps"] = 1e39 })
		}, nil, "blip2.vision.layer_norm_epsilon = +Inf"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDir(t, hf, filepath.Join(tmp, fmt.Sprint("hf", i)), nil)
			c.edit(dir)
			out := filepath.Join(tmp, fmt.Sprint("out", i))
			args := append([]string{"convert", dir, "-o", out, "--llm-type", "f16"}, c.extra...)
			code, _, stderr := runWithin(t, 120*time.Second, args)
			// Progress lines may come first; the error is the last line.
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if last := lines[len(lines)-1]; code != 1 || !strings.HasPrefix(last, "blip2chat convert: ") || !strings.Contains(last, c.phrase) {
				t.Errorf("exit %d, stderr %q; want 1 and a last line saying %q", code, stderr, c.phrase)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s was written", out)
			}
		})
	}
}

// TestC3LLMMetadata (C3): an llm.gguf whose metadata llama.cpp would abort
// on (a NaN or negative norm epsilon: GGML_ASSERT, the process gone) or
// compute nothing useful from (a NaN rope base, no heads, no context) is
// refused before llama.cpp sees it, by the check convert runs
// (lmconv.CheckMetadata), for LLaMA, T5 and OPT alike.
func TestC3LLMMetadata(t *testing.T) {
	f := newCLIFixtures(t)
	t5 := filepath.Join(f.tmp, "t5")
	if err := modeltest.BuildModelDir(filepath.Join(goldenRoot, "blip2-t5", "hf"), t5, "f32", f.lib); err != nil {
		t.Fatal(err)
	}
	nan := float32(math.NaN())
	for _, c := range []struct {
		model, key string
		value      any
		phrase     string
	}{
		{f.llama, "llama.attention.layer_norm_rms_epsilon", nan, "llama.attention.layer_norm_rms_epsilon = NaN: must be a finite number in (0, 1]"},
		{f.llama, "llama.attention.layer_norm_rms_epsilon", float32(-1), "layer_norm_rms_epsilon = -1: must be a finite number"},
		{f.llama, "llama.rope.freq_base", nan, "llama.rope.freq_base = NaN"},
		{f.llama, "llama.attention.head_count", uint32(0), "llama.attention.head_count = 0 is out of range"},
		{f.llama, "llama.context_length", uint32(0), "llama.context_length = 0 is out of range"},
		{f.llama, "llama.block_count", uint32(1000000000), "llama.block_count = 1000000000 is out of range [1, 512]"},
		{t5, "t5.attention.layer_norm_rms_epsilon", nan, "t5.attention.layer_norm_rms_epsilon = NaN"},
		{t5, "t5.attention.layer_norm_epsilon", float32(math.Inf(1)), "t5.attention.layer_norm_epsilon = +Inf"},
		{f.opt, "blip2-opt.attention.layer_norm_epsilon", nan, "blip2-opt.attention.layer_norm_epsilon = NaN"},
	} {
		t.Run(fmt.Sprintf("%s=%v", c.key, c.value), func(t *testing.T) {
			dir := copyDir(t, c.model, filepath.Join(t.TempDir(), "m"), nil)
			rewriteGGUF(t, filepath.Join(c.model, "llm.gguf"), filepath.Join(dir, "llm.gguf"), setKey(c.key, c.value))
			code, _, stderr := runWithin(t, 60*time.Second, []string{"ask", "-m", dir, f.img, "q", "--max-tokens", "2", "--threads", "1", "--llama-lib", f.lib})
			oneLine(t, c.key, code, stderr, c.phrase)
			for _, crash := range []string{"GGML_ASSERT", "panic", "goroutine "} {
				if strings.Contains(stderr, crash) {
					t.Errorf("%q in %q", crash, stderr)
				}
			}
		})
	}
}
