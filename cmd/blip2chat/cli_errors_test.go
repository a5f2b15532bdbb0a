package main

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/blip2chat/blip2chat/engine/llamacpp/llamatest"
	"github.com/blip2chat/blip2chat/engine/model/modeltest"
	"github.com/blip2chat/blip2chat/weights/gguf"
)

// copyFile copies src to dst, keeping the first n bytes when n >= 0.
func copyFile(t *testing.T, src, dst string) { copyPrefix(t, src, dst, -1) }

func copyPrefix(t *testing.T, src, dst string, n int) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if n >= 0 {
		data = data[:n]
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyDir copies the regular files of src into a new folder dst; edit, if
// not nil, may change each file's bytes.
func copyDir(t *testing.T, src, dst string, edit func(name string, data []byte) []byte) string {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			data = edit(e.Name(), data)
		}
		if data != nil {
			if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dst
}

// pngClaiming is a 1x1 PNG whose header claims w x h pixels (CRC fixed).
func pngClaiming(t *testing.T, w, h uint32) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 1, 1))); err != nil {
		t.Fatal(err)
	}
	data := b.Bytes()
	// Signature (8), IHDR length (4), "IHDR" (4), width, height, 5 bytes, CRC.
	binary.BigEndian.PutUint32(data[16:], w)
	binary.BigEndian.PutUint32(data[20:], h)
	binary.BigEndian.PutUint32(data[29:], crc32.ChecksumIEEE(data[12:29]))
	return data
}

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cliFixtures are the broken and working inputs of TestCLIErrors.
type cliFixtures struct {
	lib, tmp, img                     string
	opt, llama                        string // converted golden model folders
	visionOnly, truncVision, truncLLM string // model folders with a missing or truncated file
	mixed, wide                       string // vision.gguf and llm.gguf of different checkpoints
	dupVocab                          string // an llm.gguf with a duplicated token
	pickle, truncST, flipST           string // broken Hugging Face folders
	emptyImg, textImg, tinyImg        string
	hugeImg, truncImg                 string
	emptyLib                          string
}

func newCLIFixtures(t *testing.T) *cliFixtures {
	t.Helper()
	lib, err := filepath.Abs(llamatest.LibDir(t))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	f := &cliFixtures{lib: lib, tmp: tmp, img: filepath.Join(goldenRoot, "images", "cat.jpg")}
	at := func(name string) string { return filepath.Join(tmp, name) }
	hf := func(name string) string { return filepath.Join(goldenRoot, name, "hf") }

	// f32 language models: no llama.cpp quantization, so quick to make.
	f.opt, f.llama = at("opt"), at("llama")
	for dir, ckpt := range map[string]string{f.opt: "blip2-opt", f.llama: "blip2-llama"} {
		if err := modeltest.BuildModelDir(hf(ckpt), dir, "f32", lib); err != nil {
			t.Fatalf("converting %s: %v", ckpt, err)
		}
	}
	f.visionOnly = copyDir(t, f.opt, at("vision-only"), func(name string, data []byte) []byte {
		if name == "llm.gguf" {
			return nil
		}
		return data
	})
	truncate := func(which string) func(string, []byte) []byte {
		return func(name string, data []byte) []byte {
			if name == which {
				return data[:len(data)*2/3]
			}
			return data
		}
	}
	f.truncVision = copyDir(t, f.llama, at("trunc-vision"), truncate("vision.gguf"))
	f.truncLLM = copyDir(t, f.llama, at("trunc-llm"), truncate("llm.gguf"))

	// A LLaMA where an OPT belongs, and a LLaMA of another width.
	tiny := modeltest.DefaultTinyLlama()
	f.mixed = at("mixed")
	os.Mkdir(f.mixed, 0o755)
	copyFile(t, filepath.Join(f.opt, "vision.gguf"), filepath.Join(f.mixed, "vision.gguf"))
	if _, err := tiny.Write(filepath.Join(f.mixed, "llm.gguf")); err != nil {
		t.Fatal(err)
	}
	f.wide = at("wide")
	os.Mkdir(f.wide, 0o755)
	copyFile(t, filepath.Join(f.llama, "vision.gguf"), filepath.Join(f.wide, "vision.gguf"))
	copyFile(t, filepath.Join(f.mixed, "llm.gguf"), filepath.Join(f.wide, "llm.gguf"))
	if vi, err := gguf.Open(filepath.Join(f.wide, "vision.gguf")); err != nil {
		t.Fatal(err)
	} else {
		if n, _ := vi.Int("blip2.projection.size"); n == tiny.NEmbd {
			t.Fatalf("the tiny LLaMA has the golden width %d", n)
		}
		vi.Close()
	}
	dup := tiny
	dup.Pieces = []string{"▁a", "</s>"}
	f.dupVocab = at("dup.gguf")
	if _, err := dup.Write(f.dupVocab); err != nil {
		t.Fatal(err)
	}

	// Hugging Face folders: pickle only, truncated, header length flipped.
	f.pickle = copyDir(t, hf("blip2-opt"), at("hf-pickle"), func(name string, data []byte) []byte {
		if name == "model.safetensors" {
			os.WriteFile(at("hf-pickle/pytorch_model.bin"), []byte("PK\x03\x04 not really a zip"), 0o644)
			return nil
		}
		return data
	})
	f.truncST = copyDir(t, hf("blip2-opt"), at("hf-trunc"), func(name string, data []byte) []byte {
		if name == "model.safetensors" {
			return data[:len(data)/2]
		}
		return data
	})
	f.flipST = copyDir(t, hf("blip2-opt"), at("hf-flip"), func(name string, data []byte) []byte {
		if name == "model.safetensors" {
			data[5] ^= 0x10 // the header length's high bytes
		}
		return data
	})

	// Images.
	f.emptyImg, f.textImg, f.tinyImg, f.hugeImg, f.truncImg = at("empty.jpg"), at("text.jpg"), at("tiny.png"), at("huge.png"), at("trunc.jpg")
	os.WriteFile(f.emptyImg, nil, 0o644)
	os.WriteFile(f.textImg, []byte("hello, I am not a picture\n"), 0o644)
	os.WriteFile(f.tinyImg, pngClaiming(t, 1, 1), 0o644)
	os.WriteFile(f.hugeImg, pngClaiming(t, 30000, 30000), 0o644)
	copyPrefix(t, f.img, f.truncImg, 5000)

	f.emptyLib = at("emptylib")
	os.Mkdir(f.emptyLib, 0o755)
	return f
}

// TestCLIErrors runs every command in-process on the bad inputs a user
// meets: each failure is exit status 1 (2 for a bad command line) with one
// line on stderr naming the problem, never a crash, and writes nothing.
func TestCLIErrors(t *testing.T) {
	f := newCLIFixtures(t)
	out := filepath.Join(f.tmp, "out") // never created by a failing command
	outST := filepath.Join(f.tmp, "o.safetensors")
	long := strings.Repeat("what is this thing and why is it here? ", 120) // > 512 tokens
	ask := func(dir string, extra ...string) []string {
		return append([]string{"ask", "-m", dir, f.img, "what is it?", "--max-tokens", "3", "--threads", "1", "--llama-lib", f.lib}, extra...)
	}
	hf := func(name string) string { return filepath.Join(goldenRoot, name, "hf") }

	for _, c := range []struct {
		name   string
		args   []string
		env    map[string]string
		code   int
		phrase string // in stderr (in stdout when code is 0 and stdout is set)
		stdout bool
	}{
		// The command line itself.
		{"help", []string{"help"}, nil, 0, "commands:", true},
		{"-h lists the commands", []string{"-h"}, nil, 0, "commands:", true},
		{"help of a command", []string{"help", "ask"}, nil, 0, "usage: blip2chat ask", false},
		{"command -h", []string{"convert", "-h"}, nil, 0, "-vision-only", false},
		{"version", []string{"--version"}, nil, 0, "blip2chat ", true},
		{"unknown command", []string{"frobnicate"}, nil, 2, `unknown command "frobnicate"`, false},
		{"unknown flag", []string{"ask", "--bogus"}, nil, 2, "flag provided but not defined: -bogus (see 'blip2chat ask -h')", false},
		{"unknown flag, default command", []string{"--bogus"}, nil, 2, "flag provided but not defined: -bogus", false},
		{"bad flag value", []string{"ask", "--max-tokens", "many"}, nil, 2, `invalid value "many" for flag -max-tokens`, false},

		// convert
		{"convert: no args", []string{"convert"}, nil, 2, "usage: blip2chat convert", false},
		{"convert: no -o", []string{"convert", hf("blip2-opt")}, nil, 2, "usage: blip2chat convert", false},
		{"convert: missing folder", []string{"convert", filepath.Join(f.tmp, "nope"), "-o", out}, nil, 1, "nope: no such folder", false},
		{"convert: a file for the folder", []string{"convert", filepath.Join(hf("blip2-opt"), "config.json"), "-o", out}, nil, 1, "config.json is a file; give the checkpoint's folder", false},
		{"convert: no config.json", []string{"convert", f.emptyLib, "-o", out}, nil, 1, "has no config.json", false},
		{"convert: pickle only", []string{"convert", f.pickle, "-o", out}, nil, 1, "refusing a PyTorch pickle checkpoint", false},
		{"convert: truncated safetensors", []string{"convert", f.truncST, "-o", out}, nil, 1, "model.safetensors: tensor", false},
		{"convert: flipped safetensors header", []string{"convert", f.flipST, "-o", out}, nil, 1, "model.safetensors: header length", false},
		{"convert: -o is a file", []string{"convert", hf("blip2-opt"), "-o", f.img}, nil, 1, "cat.jpg is a file, not a model folder", false},
		{"convert: bad vision type", []string{"convert", hf("blip2-opt"), "-o", out, "--vision-type", "q4_0"}, nil, 1, `unknown weight type "q4_0"`, false},
		{"convert: q4_k_m for OPT", []string{"convert", hf("blip2-opt"), "-o", out, "--llm-type", "q4_k_m"}, nil, 1, "not available for OPT", false},
		{"ask: a retrieval model", []string{"ask", "-m", itmModel(t, "q8_0"), f.img, "what?"}, nil, 1, "is a retrieval model (Blip2ForImageTextRetrieval): it matches images and texts but cannot answer questions; use match, index or search", false},
		{"convert: no library to quantize", []string{"convert", hf("blip2-llama"), "-o", out, "--llama-lib", f.emptyLib}, nil, 1, "quantizing the language model to q4_k_m needs the llama.cpp library: no llama.cpp library in", false},
		{"convert: $BLIP2CHAT_LLAMA_LIB wrong", []string{"convert", hf("blip2-t5"), "-o", out}, map[string]string{"BLIP2CHAT_LLAMA_LIB": f.emptyLib}, 1, "or unset BLIP2CHAT_LLAMA_LIB", false},

		// encode
		{"encode: no -o", []string{"encode", "-m", f.opt, f.img}, nil, 2, "usage: blip2chat encode", false},
		{"encode: missing model folder", []string{"encode", "-m", filepath.Join(f.tmp, "nope"), f.img, "-o", outST}, nil, 1, "nope: no such model folder", false},
		{"encode: a file for the model folder", []string{"encode", "-m", f.img, f.img, "-o", outST}, nil, 1, "is not a model folder", false},
		{"encode: truncated vision.gguf", []string{"encode", "-m", f.truncVision, f.img, "-o", outST}, nil, 1, "vision.gguf: tensor", false},
		{"encode: missing image", []string{"encode", "-m", f.opt, filepath.Join(f.tmp, "none.jpg"), "-o", outST}, nil, 1, "none.jpg", false},
		{"encode: a folder for the image", []string{"encode", "-m", f.opt, f.tmp, "-o", outST}, nil, 1, "is a folder, not a regular file", false},
		{"encode: empty image", []string{"encode", "-m", f.opt, f.emptyImg, "-o", outST}, nil, 1, "empty.jpg: empty file", false},
		{"encode: text named .jpg", []string{"encode", "-m", f.opt, f.textImg, "-o", outST}, nil, 1, "text.jpg: unsupported image format", false},
		{"encode: PNG claiming 30000x30000", []string{"encode", "-m", f.opt, f.hugeImg, "-o", outST}, nil, 1, "huge.png: 30000x30000 is 900 megapixels", false},
		{"encode: truncated JPEG", []string{"encode", "-m", f.opt, f.truncImg, "-o", outST}, nil, 1, "trunc.jpg: truncated JPEG", false},
		{"encode: -o in a missing folder", []string{"encode", "-m", f.opt, f.img, "-o", filepath.Join(out, "x.safetensors")}, nil, 1, "folder " + out + " does not exist", false},
		{"encode: -o is a folder", []string{"encode", "-m", f.opt, f.img, "-o", f.tmp}, nil, 1, "is a folder; give a file name", false},
		{"encode: bad instruction ids", []string{"encode", "-m", f.opt, f.img, "-o", outST, "--instruction-ids", "1,x"}, nil, 2, `"x" is not a token id`, false},

		// ask: arguments
		{"ask: no question", []string{"ask", "-m", f.opt, f.img}, nil, 2, "usage: blip2chat ask", false},
		{"ask: --max-tokens -1", ask(f.opt, "--max-tokens", "-1"), nil, 2, "--max-tokens -1 is negative", false},
		{"ask: --temp -1", ask(f.opt, "--temp", "-1"), nil, 2, "--temp -1 is negative", false},
		{"ask: --top-p 2", ask(f.opt, "--top-p", "2"), nil, 2, "top-p 2 is outside 0..1", false},
		{"ask: --top-k -3", ask(f.opt, "--top-k", "-3"), nil, 2, "top-k -3 is negative", false},
		{"ask: --temp NaN", ask(f.opt, "--temp", "NaN"), nil, 2, "temperature is NaN", false},
		{"ask: --seed too large", ask(f.opt, "--seed", "99999999999"), nil, 2, "--seed 99999999999: must be below", false},
		{"ask: --ctx -5", ask(f.opt, "--ctx", "-5"), nil, 2, "--ctx -5 is negative", false},
		{"ask: --threads -4", ask(f.opt, "--threads", "-4"), nil, 2, "--threads -4 is negative", false},
		{"ask: --logits-out in a missing folder", ask(f.llama, "--logits-out", filepath.Join(out, "l.safetensors")), nil, 1, "does not exist", false},
		// ask: model folders
		{"ask: missing model folder", ask(filepath.Join(f.tmp, "nope")), nil, 1, "nope: no such model folder", false},
		{"ask: a file for the model folder", ask(f.img), nil, 1, "is not a model folder", false},
		{"ask: vision-only folder", ask(f.visionOnly), nil, 1, "no llm.gguf (was it converted with --vision-only?)", false},
		{"ask: truncated vision.gguf", ask(f.truncVision), nil, 1, "vision.gguf: tensor", false},
		{"ask: truncated llm.gguf", ask(f.truncLLM), nil, 1, "llm.gguf: tensor", false},
		{"ask: llm.gguf of another family", ask(f.mixed), nil, 1, "is a llama model but", false},
		{"ask: llm.gguf of another width", ask(f.wide), nil, 1, "takes 256-wide embeddings but", false},
		{"ask: --llm is the vision file", ask(f.llama, "--llm", filepath.Join(f.llama, "vision.gguf")), nil, 1, "is a vision file, not a language model", false},
		{"ask: --llm with a duplicated token", ask(f.llama, "--llm", f.dupVocab), nil, 1, `tokenizer.ggml.tokens are both "</s>"`, false},
		// ask: images
		{"ask: missing image", []string{"ask", "-m", f.opt, filepath.Join(f.tmp, "none.jpg"), "q"}, nil, 1, "none.jpg", false},
		{"ask: empty image", []string{"ask", "-m", f.opt, f.emptyImg, "q"}, nil, 1, "empty.jpg: empty file", false},
		{"ask: text named .jpg", []string{"ask", "-m", f.opt, f.textImg, "q"}, nil, 1, "unsupported image format", false},
		{"ask: PNG claiming 30000x30000", []string{"ask", "-m", f.opt, f.hugeImg, "q"}, nil, 1, "the limit is", false},
		{"ask: 1x1 image", []string{"ask", "-m", f.opt, f.tinyImg, "q", "--max-tokens", "2", "--greedy"}, nil, 0, "", false},
		// ask: library
		{"ask: --llama-lib empty folder", ask(f.llama, "--llama-lib", f.emptyLib), nil, 1, "no llama.cpp library in " + f.emptyLib, false},
		{"ask: --llama-lib missing folder", ask(f.llama, "--llama-lib", filepath.Join(f.tmp, "nolib")), nil, 1, "no llama.cpp library in", false},
		{"ask: $BLIP2CHAT_LLAMA_LIB wrong", []string{"ask", "-m", f.llama, f.img, "q"}, map[string]string{"BLIP2CHAT_LLAMA_LIB": f.emptyLib}, 1, "or unset BLIP2CHAT_LLAMA_LIB", false},
		// ask: context
		{"ask: question longer than the training context", []string{"ask", "-m", f.llama, f.img, long, "--llama-lib", f.lib}, nil, 1, "the context holds 512 (the model's training context); shorten it", false},
		{"ask: OPT question too long", []string{"ask", "-m", f.opt, f.img, long}, nil, 1, "the question is too long", false},
		{"ask: --ctx too small", ask(f.llama, "--ctx", "10"), nil, 1, "the context holds 10 (--ctx); shorten it", false},
		{"ask: --max-tokens 0", ask(f.opt, "--max-tokens", "0"), nil, 0, "", false},
		{"ask: answer cut by the context", ask(f.opt, "--max-tokens", "100000", "--greedy"), nil, 0, "note: the answer stops after", false},

		// tokenize
		{"tokenize: no text", []string{"tokenize", "-m", f.llama}, nil, 2, "usage: blip2chat tokenize", false},
		{"tokenize: missing model folder", []string{"tokenize", "-m", filepath.Join(f.tmp, "nope"), "hi"}, nil, 1, "no such model folder", false},
		{"tokenize: vision-only folder", []string{"tokenize", "-m", f.visionOnly, "hi"}, nil, 1, "no llm.gguf", false},
		{"tokenize: truncated llm.gguf", []string{"tokenize", "-m", f.truncLLM, "--llama-lib", f.lib, "hi"}, nil, 1, "llm.gguf: tensor", false},
		{"tokenize: --llm is an image", []string{"tokenize", "--llm", f.img, "hi"}, nil, 1, "not a GGUF file", false},
		{"tokenize: duplicated token", []string{"tokenize", "--llm", f.dupVocab, "--llama-lib", f.lib, "hi"}, nil, 1, "the vocabulary is damaged", false},
		{"tokenize: --llama-lib empty folder", []string{"tokenize", "-m", f.llama, "--llama-lib", f.emptyLib, "hi"}, nil, 1, "no llama.cpp library in", false},

		// doctor
		{"doctor: stray argument", []string{"doctor", "x"}, nil, 2, "usage: blip2chat doctor", false},
		{"doctor: missing model folder", []string{"doctor", "--llama-lib", f.lib, "-m", filepath.Join(f.tmp, "nope")}, nil, 1, "nope: no such model folder", false},
		{"doctor: a file for the model folder", []string{"doctor", "--llama-lib", f.lib, "-m", f.img}, nil, 1, "cat.jpg is not a model folder", false},
		{"doctor: vision-only folder", []string{"doctor", "--llama-lib", f.lib, "-m", f.visionOnly}, nil, 1, "has no llm.gguf", false},
		{"doctor: truncated llm.gguf", []string{"doctor", "--llama-lib", f.lib, "-m", f.truncLLM}, nil, 1, "llm.gguf: tensor", false},
		{"doctor: mixed folder", []string{"doctor", "--llama-lib", f.lib, "-m", f.mixed}, nil, 1, "the files come from different checkpoints", false},
		{"doctor: empty --llama-lib", []string{"doctor", "--llama-lib", f.emptyLib}, nil, 1, "no llama.cpp library in", false},

		// sessions
		{"sessions: stray argument", []string{"sessions", "x"}, nil, 2, "usage: blip2chat sessions", false},
		{"sessions: none yet", []string{"sessions"}, map[string]string{"XDG_DATA_HOME": f.tmp}, 0, "No sessions yet", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := run(c.args, &stdout, &stderr)
			msg := stderr.String()
			if code != c.code {
				t.Fatalf("exit status %d, want %d; stderr %q", code, c.code, msg)
			}
			for _, crash := range []string{"panic", "goroutine ", "GGML_ASSERT", "SIGSEGV"} {
				if strings.Contains(msg, crash) || strings.Contains(stdout.String(), crash) {
					t.Fatalf("%q in the output: %s", crash, msg)
				}
			}
			where := msg
			if c.stdout {
				where = stdout.String()
			}
			if !strings.Contains(where, c.phrase) {
				t.Errorf("output %q does not say %q", where, c.phrase)
			}
			if c.code != 0 && (strings.Count(msg, "\n") != 1 || !strings.HasSuffix(msg, "\n")) {
				t.Errorf("stderr is not one line: %q", msg)
			}
			for _, p := range []string{out, outST} {
				if _, err := os.Stat(p); err == nil && c.code != 0 {
					t.Errorf("%s written by a failing command", p)
				}
			}
			if leftovers, _ := filepath.Glob(filepath.Join(f.tmp, "*", ".*")); len(leftovers) > 0 {
				t.Errorf("temporary files left: %v", leftovers)
			}
		})
	}
}

// TestConvertIntoExistingFolder: converting into a folder that holds a
// model needs --force (D3); it then replaces its files whole (new files
// renamed over the old), keeps the user's other files and leaves no
// temporary file; a --vision-only conversion keeps llm.gguf and warns in
// one line when it no longer fits.
func TestConvertIntoExistingFolder(t *testing.T) {
	f := newCLIFixtures(t)
	dir := copyDir(t, f.llama, filepath.Join(f.tmp, "existing"), nil)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644)
	var stdout, stderr bytes.Buffer
	before, _ := os.ReadFile(filepath.Join(dir, "vision.gguf"))
	if code := run([]string{"convert", filepath.Join(goldenRoot, "blip2-opt", "hf"), "-o", dir}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "vision.gguf already exists; add --force to replace it") {
		t.Fatalf("without --force: exit %d: %s", code, stderr.String())
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "vision.gguf")); !bytes.Equal(before, after) {
		t.Fatal("vision.gguf changed without --force")
	}
	stderr.Reset()
	if code := run([]string{"convert", filepath.Join(goldenRoot, "blip2-opt", "hf"), "-o", dir, "--force"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	arch := func(name string) string {
		g, err := gguf.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		s, _ := g.String("general.architecture")
		return s
	}
	if a := arch("llm.gguf"); a != "blip2-opt" {
		t.Errorf("llm.gguf is %q, want the new blip2-opt", a)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "notes.txt")); string(data) != "mine" {
		t.Error("notes.txt changed")
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	// The LLaMA vision side over the OPT folder: llm.gguf stays, with a warning.
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"convert", "--vision-only", filepath.Join(goldenRoot, "blip2-llama", "hf"), "-o", dir, "--llama-lib", f.lib, "--force"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if a := arch("llm.gguf"); a != "blip2-opt" {
		t.Errorf("llm.gguf is %q after --vision-only, want the kept blip2-opt", a)
	}
	var warns []string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, "does not fit") {
			warns = append(warns, l)
		}
	}
	if len(warns) != 1 || !strings.HasPrefix(warns[0], "warning: the llm.gguf kept in ") || !strings.Contains(warns[0], "different checkpoints") {
		t.Errorf("warnings %q, want one about the kept llm.gguf", warns)
	}
}
