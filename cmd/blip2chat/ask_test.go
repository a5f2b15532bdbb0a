package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/engine/llamacpp/capi"
	"github.com/blip2chat/blip2chat/engine/model/modeltest"
	"github.com/blip2chat/blip2chat/weights/safetensors"
)

// askChildEnv makes the test binary run blip2chat with the JSON-encoded
// arguments it holds and exit: error paths that load another llama.cpp
// library need a process of their own (a library loads once per process),
// and a crash there must not take the tests down.
const askChildEnv = "BLIP2CHAT_TEST_MAIN_ARGS"

func init() {
	if a := os.Getenv(askChildEnv); a != "" {
		var args []string
		if err := json.Unmarshal([]byte(a), &args); err != nil {
			panic(err)
		}
		os.Exit(run(args, os.Stdout, os.Stderr))
	}
}

// askModelDir converts a golden case into a fresh model folder.
func askModelDir(t *testing.T, c modeltest.Case, llmType string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), c.Name+"-"+llmType)
	if err := modeltest.BuildModelDir(c.HF, dir, llmType, modeltest.LibDir(t)); err != nil {
		t.Fatalf("converting %s: %v", c.Name, err)
	}
	return dir
}

func askQuestion(c modeltest.Case) string {
	p := c.Golden.Prompt
	if c.Family == "blip-2" {
		p = strings.TrimSuffix(strings.TrimPrefix(p, "Question: "), " Answer:")
	}
	return p
}

func runJSON(t *testing.T, args []string) askResult {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("blip2chat %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
	}
	var r askResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	return r
}

func readLogits(t *testing.T, path, name string) ([]float32, []int) {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ten, ok := f.Tensor(name)
	if !ok {
		t.Fatalf("%s has no %s (has %v)", path, name, f.Names())
	}
	v, err := ten.Float32()
	if err != nil {
		t.Fatal(err)
	}
	return v, ten.Shape
}

// The tests use one llama.cpp thread: its workers spin while they wait,
// which on a busy machine costs far more than they gain on these tiny models.

// TestAskGolden runs `blip2chat ask` on each golden case (LLaMA, T5, OPT) from the
// image file: prompt ids, logits (exact: 1e-4 for LLaMA at every prompt
// position, soft tokens included; T5's decoder steps within 5e-2) and the
// greedy answer under the top-2 gap rule; it measures the default settings
// and the q8_0 and q4_k_m files.
func TestAskGolden(t *testing.T) {
	lib := modeltest.LibDir(t)
	for _, c := range modeltest.Cases(t, "llama", "t5", "opt") {
		t.Run(c.Name, func(t *testing.T) {
			dir := askModelDir(t, c, "f32")
			g := c.Golden
			img := filepath.Join(modeltest.GoldenDir(t), "images", g.Image)
			st := c.Tensors(t)
			name, tol := "logits", 1e-4
			if c.TextType == "t5" {
				name, tol = "decoder_logits", 5e-2
			}
			want, wantShape := modeltest.Float32(t, st, name)
			steps := g.ComparableSteps()
			// compare checks the logits file against the golden; for T5 only
			// the decoder steps whose inputs match the golden's are: the
			// first, and one more per leading generated id equal to it.
			compare := func(label, path string, ids []int32, tol float64) float64 {
				got, shape := readLogits(t, path, name)
				w := want
				if c.TextType == "t5" {
					same := 0
					for same < len(ids) && same < len(g.GreedyIDs) && ids[same] == g.GreedyIDs[same] {
						same++
					}
					n := min(same+1, shape[0], wantShape[0])
					got, w = got[:n*shape[1]], want[:n*shape[1]]
				} else if fmt.Sprint(shape) != fmt.Sprint(wantShape) {
					t.Fatalf("%s: logits shape %v, golden %v", label, shape, wantShape)
				}
				d := modeltest.MaxAbsDiff(got, w)
				t.Logf("%s: max |logit - golden| %.3g", label, d)
				if d > tol {
					t.Errorf("%s: logits differ from golden by %.3g > %g", label, d, tol)
				}
				return d
			}
			for _, variant := range []struct {
				label string
				args  []string
			}{
				{"template", []string{askQuestion(c)}},
				{"raw prompt", []string{g.Prompt, "--raw-prompt"}},
			} {
				out := filepath.Join(t.TempDir(), "logits.safetensors")
				args := append([]string{"ask", "-m", dir, img}, variant.args...)
				args = append(args, "--exact", "--greedy", "--json", "--max-tokens", fmt.Sprint(len(g.GreedyIDs)),
					"--logits-out", out, "--llama-lib", lib, "--threads", "1")
				r := runJSON(t, args)
				if fmt.Sprint(r.PromptIDs) != fmt.Sprint(g.PromptIDs) {
					t.Errorf("%s: prompt ids\n got %v\nwant %v", variant.label, r.PromptIDs, g.PromptIDs)
				}
				if len(r.IDs) < steps || fmt.Sprint(r.IDs[:steps]) != fmt.Sprint(g.GreedyIDs[:steps]) {
					t.Errorf("%s: greedy ids %v, want %v (first %d steps)", variant.label, r.IDs, g.GreedyIDs, steps)
				}
				if r.Timings.Tokens != len(r.IDs) || r.Timings.PromptRows == 0 || r.Stop == "" {
					t.Errorf("%s: result %+v", variant.label, r)
				}
				compare(variant.label+" exact", out, r.IDs, tol)
			}
			// Measured: the default settings (flash attention, f16 KV
			// cache) and quantized language models via --llm.
			out := filepath.Join(t.TempDir(), "logits.safetensors")
			r := runJSON(t, []string{"ask", "-m", dir, img, askQuestion(c), "--greedy", "--json", "--max-tokens", "4",
				"--logits-out", out, "--llama-lib", lib, "--threads", "1"})
			compare("default settings", out, r.IDs, 0.1)
			quantized := []string{"q8_0", "q4_k_m"}
			if c.TextType == "opt" {
				quantized = []string{"q8_0"} // q4_k_m needs llama.cpp's quantizer, which has no OPT
			}
			for _, typ := range quantized {
				qdir := askModelDir(t, c, typ)
				out := filepath.Join(t.TempDir(), "logits.safetensors")
				r := runJSON(t, []string{"ask", "-m", dir, "--llm", filepath.Join(qdir, "llm.gguf"), img, askQuestion(c),
					"--greedy", "--exact", "--json", "--max-tokens", "4", "--logits-out", out, "--llama-lib", lib, "--threads", "1"})
				// Random tiny weights quantize badly; this only catches
				// a broken file (logits O(10)).
				compare(typ+" (exact)", out, r.IDs, 10)
			}
		})
	}
}

// TestAskText: without --json the answer is streamed as text, one line.
func TestAskText(t *testing.T) {
	lib := modeltest.LibDir(t)
	c := modeltest.Cases(t, "llama")[0]
	dir := askModelDir(t, c, "f32")
	img := filepath.Join(modeltest.GoldenDir(t), "images", c.Golden.Image)
	var out, errb bytes.Buffer
	args := []string{"ask", "-m", dir, img, "what is it?", "--max-tokens", "5", "--seed", "7", "--temp", "0.9", "--llama-lib", lib, "--threads", "1"}
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.HasSuffix(out.String(), "\n") || strings.HasPrefix(out.String(), " ") || errb.Len() != 0 {
		t.Errorf("output %q, stderr %q", out.String(), errb.String())
	}
	// The same seed gives the same answer.
	var again bytes.Buffer
	run(args, &again, &errb)
	if again.String() != out.String() {
		t.Errorf("seed 7 gave %q, then %q", out.String(), again.String())
	}
	for _, bad := range [][]string{
		{"ask", img, "q"},                                              // no -m
		{"ask", "-m", dir, img},                                        // no question
		{"ask", "-m", dir, img, "q", "--top-p", "3"},                   // bad sampling
		{"ask", "-m", dir, img, "q", "--max-tokens", "-1"},             // bad count
		{"ask", "-m", dir, filepath.Join(dir, "none.jpg"), "q"},        // missing image
		{"ask", "-m", filepath.Join(dir, "nowhere"), img, "q"},         // missing model
		{"ask", "-m", dir, img, "q", "--ctx", "5", "--llama-lib", lib}, // prompt too long
	} {
		var o, e bytes.Buffer
		code := run(bad, &o, &e)
		if code == 0 || (code == 1 && strings.Count(e.String(), "\n") != 1) {
			t.Errorf("%v: exit %d, stderr %q", bad, code, e.String())
		}
	}
}

// fakeLib makes a copy of the llama.cpp library folder whose libllama has
// its bytes old replaced by new (same length).
func fakeLib(t *testing.T, lib string, old, new string) string {
	t.Helper()
	dir := t.TempDir()
	ents, err := os.ReadDir(lib)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		src := filepath.Join(lib, e.Name())
		if e.Name() == capi.StampFile {
			continue // a library changed by hand is not the one installed: nothing to check it against
		}
		if e.Name() == capi.LibraryFile {
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(data, []byte(old)) {
				t.Fatalf("%s does not contain %q", src, old)
			}
			if err := os.WriteFile(filepath.Join(dir, e.Name()), bytes.ReplaceAll(data, []byte(old), []byte(new)), 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.Symlink(src, filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestAskErrors runs ask in a child process for each broken setup and
// requires exit status 1 with exactly one line on stderr and no crash.
func TestAskErrors(t *testing.T) {
	lib, err := filepath.Abs(modeltest.LibDir(t))
	if err != nil {
		t.Fatal(err)
	}
	c := modeltest.Cases(t, "llama")[0]
	dir := askModelDir(t, c, "f32")
	img := filepath.Join(modeltest.GoldenDir(t), "images", c.Golden.Image)
	tmp := t.TempDir()

	data, err := os.ReadFile(filepath.Join(dir, "llm.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(tmp, "truncated.gguf")
	os.WriteFile(truncated, data[:len(data)*2/3], 0o644)
	flipped := filepath.Join(tmp, "flipped.gguf")
	bad := bytes.Clone(data)
	bad[20] ^= 0x7f // the metadata entry count
	os.WriteFile(flipped, bad, 0o644)
	wide := filepath.Join(tmp, "wide.gguf")
	tiny := modeltest.DefaultTinyLlama()
	tiny.NEmbd = c.OtherWidth()
	if _, err := tiny.Write(wide); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"wrong library version", []string{"--llama-lib", fakeLib(t, lib, "0.4.0-dev", "0.3.9-dev")}, "is version 0.3.9-dev; blip2chat needs v0.4.0"},
		{"missing symbol", []string{"--llama-lib", fakeLib(t, lib, "llama_model_meta_val_str\x00", "llama_model_meta_val_stX\x00")}, "missing symbol llama_model_meta_val_str"},
		{"no library", []string{"--llama-lib", tmp}, "no llama.cpp library in"},
		{"truncated GGUF", []string{"--llama-lib", lib, "--llm", truncated}, "truncated.gguf"},
		{"corrupt GGUF header", []string{"--llama-lib", lib, "--llm", flipped}, "flipped.gguf"},
		{"embedding size mismatch", []string{"--llama-lib", lib, "--llm", wide}, fmt.Sprintf("takes %d-wide embeddings but", tiny.NEmbd)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args, _ := json.Marshal(append([]string{"ask", "-m", dir, img, "what is it?", "--max-tokens", "2"}, tc.args...))
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), askChildEnv+"="+string(args))
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			code := cmd.ProcessState.ExitCode()
			msg := errb.String()
			t.Logf("exit %d: %s", code, strings.TrimSpace(msg))
			if code != 1 {
				t.Errorf("exit status %d (%v), want 1; stdout %q stderr %q", code, err, out.String(), msg)
			}
			if strings.Count(msg, "\n") != 1 || !strings.HasPrefix(msg, "blip2chat ask: ") {
				t.Errorf("stderr is not one line: %q", msg)
			}
			if !strings.Contains(msg, tc.want) {
				t.Errorf("stderr %q does not say %q", msg, tc.want)
			}
		})
	}
}
