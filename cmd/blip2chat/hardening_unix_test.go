//go:build unix

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mkfifo makes a FIFO at path, skipping the test where there are none.
func mkfifo(t *testing.T, path string) string {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	return path
}

// TestH3FIFOInputs (H1, H3): a FIFO wherever a file is read (the image,
// config.json, a tokenizer file, vision.gguf, llm.gguf, --llm,
// --pixel-values) is refused at once with one line, where open(2) would
// wait for a writer forever.
func TestH3FIFOInputs(t *testing.T) {
	f := newCLIFixtures(t)
	at := func(name string) string { return filepath.Join(f.tmp, name) }
	fifoImg := mkfifo(t, at("fifo.jpg"))
	const phrase = "is a named pipe (FIFO), not a regular file"

	hfFIFO := func(name, file string) string {
		dir := copyDir(t, filepath.Join(goldenRoot, "blip2-llama", "hf"), at(name), func(n string, data []byte) []byte {
			if n == file {
				return nil
			}
			return data
		})
		mkfifo(t, filepath.Join(dir, file))
		return dir
	}
	modelFIFO := func(name, file string) string {
		dir := copyDir(t, f.llama, at(name), func(n string, data []byte) []byte {
			if n == file {
				return nil
			}
			return data
		})
		mkfifo(t, filepath.Join(dir, file))
		return dir
	}
	cfgFIFO, tokFIFO := hfFIFO("hf-fifo-config", "config.json"), hfFIFO("hf-fifo-tok", "tokenizer.model")
	visFIFO, llmFIFO := modelFIFO("fifo-vision", "vision.gguf"), modelFIFO("fifo-llm", "llm.gguf")
	pvFIFO := mkfifo(t, at("pv.safetensors"))
	out := at("o.safetensors")

	for _, c := range []struct {
		name  string
		args  []string
		fifos []string
	}{
		{"ask: image", []string{"ask", "-m", f.opt, fifoImg, "q"}, []string{fifoImg}},
		{"encode: image", []string{"encode", "-m", f.opt, fifoImg, "-o", out}, []string{fifoImg}},
		{"convert: config.json", []string{"convert", cfgFIFO, "-o", at("out1"), "--llm-type", "f16"}, []string{filepath.Join(cfgFIFO, "config.json")}},
		{"convert: tokenizer.model", []string{"convert", tokFIFO, "-o", at("out2"), "--llm-type", "f16"}, []string{filepath.Join(tokFIFO, "tokenizer.model")}},
		{"ask: vision.gguf", []string{"ask", "-m", visFIFO, f.img, "q", "--llama-lib", f.lib}, []string{filepath.Join(visFIFO, "vision.gguf")}},
		{"ask: llm.gguf", []string{"ask", "-m", llmFIFO, f.img, "q", "--llama-lib", f.lib}, []string{filepath.Join(llmFIFO, "llm.gguf")}},
		{"tokenize: --llm", []string{"tokenize", "--llm", filepath.Join(llmFIFO, "llm.gguf"), "--llama-lib", f.lib, "hi"}, []string{filepath.Join(llmFIFO, "llm.gguf")}},
		{"encode: --pixel-values", []string{"encode", "-m", f.opt, "--pixel-values", pvFIFO, "-o", out}, []string{pvFIFO}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runWithin(t, 5*time.Second, c.args, c.fifos...)
			oneLine(t, c.name, code, stderr, phrase)
		})
	}
}

// TestC1EndlessImageCLI (C1): /dev/zero as the image of ask or encode, or a
// link to it named like a photo, is refused at once instead of read until
// memory runs out.
func TestC1EndlessImageCLI(t *testing.T) {
	f := newCLIFixtures(t)
	link := filepath.Join(f.tmp, "zero.jpg")
	if err := os.Symlink("/dev/zero", link); err != nil {
		t.Fatal(err)
	}
	for _, img := range []string{"/dev/zero", link} {
		for _, args := range [][]string{
			{"ask", "-m", f.opt, img, "what?"},
			{"encode", "-m", f.opt, img, "-o", filepath.Join(f.tmp, "o.safetensors")},
		} {
			code, _, stderr := runWithin(t, 5*time.Second, args)
			oneLine(t, strings.Join(args, " "), code, stderr, "is a character device, not a regular file")
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"ask", "-m", f.opt, f.img, "q", "--max-tokens", "1"}, &stdout, &stderr); code != 0 {
		t.Errorf("a real image: exit %d: %s", code, stderr.String())
	}
}

// TestS2PathsQuoted (S2): a file name holding escape sequences (title,
// screen clear, colour, hyperlink) reaches the terminal escaped, in every
// error that names it: the image, a missing file, the model folder and an
// output path.
func TestS2PathsQuoted(t *testing.T) {
	f := newCLIFixtures(t)
	evil := "t\x1b]0;PWNED-TITLE\a\x1b[2J\x1b[31mred\x1b]8;;https:evil.example\x1b\\"
	textImg := filepath.Join(f.tmp, evil+".jpg")
	if err := os.WriteFile(textImg, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(f.tmp, evil+".safetensors")
	for _, args := range [][]string{
		{"ask", "-m", f.opt, textImg, "q"},                                       // unsupported format
		{"ask", "-m", f.opt, filepath.Join(f.tmp, evil, "x.jpg"), "q"},           // no such file
		{"ask", "-m", filepath.Join(f.tmp, evil), f.img, "q"},                    // no such model folder
		{"encode", "-m", f.opt, f.img, "-o", filepath.Join(out, "x")},            // output folder missing
		{"tokenize", "--llm", textImg, "hi"},                                     // not a GGUF file
		{"convert", filepath.Join(f.tmp, evil), "-o", filepath.Join(f.tmp, "o")}, // no such folder
	} {
		code, stdout, stderr := runWithin(t, 30*time.Second, args)
		if code != 1 || strings.ContainsAny(stderr+stdout, "\x1b\a") || !strings.Contains(stderr, `\x1b]0;PWNED-TITLE`) {
			t.Errorf("%q: exit %d, stderr %q: want 1 and the name escaped", args[0], code, stderr)
		}
	}
}

// TestU1RealErrors (U1): a model file that exists but cannot be read (a
// loop of links here; a folder without permission for a user who is not
// root) is reported as it is, not as "no vision.gguf" or "no llm.gguf".
func TestU1RealErrors(t *testing.T) {
	f := newCLIFixtures(t)
	for _, file := range []string{"vision.gguf", "llm.gguf"} {
		dir := copyDir(t, f.llama, filepath.Join(f.tmp, "loop-"+file), func(n string, data []byte) []byte {
			if n == file {
				return nil
			}
			return data
		})
		if err := os.Symlink(file, filepath.Join(dir, file)); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"ask", "-m", dir, f.img, "q", "--llama-lib", f.lib},
			{"tokenize", "-m", dir, "--llama-lib", f.lib, "hi"},
		} {
			if file == "vision.gguf" && args[0] == "tokenize" {
				continue
			}
			code, _, stderr := runWithin(t, 30*time.Second, args)
			oneLine(t, args[0]+" "+file, code, stderr, "too many levels of symbolic links")
			if strings.Contains(stderr, "no "+file) {
				t.Errorf("%s: %q says the file is missing", args[0], stderr)
			}
		}
	}
	code, _, stderr := runWithin(t, 30*time.Second, []string{"chat", filepath.Join(f.tmp, "loop-llm.gguf", "llm.gguf")})
	oneLine(t, "chat IMAGE", code, stderr, "too many levels of symbolic links")

	if os.Geteuid() == 0 {
		t.Log("running as root: permissions are not enforced, the unreadable-folder case is skipped")
		return
	}
	locked := copyDir(t, f.llama, filepath.Join(f.tmp, "locked"), nil)
	if err := os.Chmod(locked, 0o644); err != nil { // no search permission
		t.Fatal(err)
	}
	defer os.Chmod(locked, 0o755)
	code, _, stderr = runWithin(t, 30*time.Second, []string{"ask", "-m", locked, f.img, "q", "--llama-lib", f.lib})
	oneLine(t, "ask, folder without search permission", code, stderr, "permission denied")
}

// TestD3Outputs (D3): an output path (encode -o, ask --logits-out,
// convert's model files) that is an input of the command (by any name), a
// symbolic link, a FIFO or a device node is refused and left as it was; an
// existing regular file is replaced only with --force.
func TestD3Outputs(t *testing.T) {
	f := newCLIFixtures(t)
	at := func(name string) string { return filepath.Join(f.tmp, name) }
	img := at("victim.jpg")
	copyFile(t, f.img, img)
	hard := at("hard.jpg")
	if err := os.Link(img, hard); err != nil {
		t.Fatal(err)
	}
	model := copyDir(t, f.opt, at("m"), nil)
	llama := copyDir(t, f.llama, at("ml"), nil)
	link := at("link.safetensors")
	os.Symlink(at("elsewhere.safetensors"), link)
	fifo := mkfifo(t, at("fifo.safetensors"))
	dev := at("mynull")
	if err := syscall.Mknod(dev, syscall.S_IFCHR|0o666, 1<<8|3); err != nil { // a private /dev/null
		t.Logf("no device node (%v): that case is skipped", err)
		dev = ""
	}
	encode := func(out string, extra ...string) []string {
		return append([]string{"encode", "-m", model, img, "-o", out}, extra...)
	}
	ask := func(m, out string, extra ...string) []string {
		return append([]string{"ask", "-m", m, img, "q", "--max-tokens", "1", "--llama-lib", f.lib, "--logits-out", out}, extra...)
	}
	snapshot := func(p string) string {
		fi, err := os.Lstat(p)
		if err != nil {
			return err.Error()
		}
		if !fi.Mode().IsRegular() { // never read: a FIFO would block
			return fi.Mode().String()
		}
		data, _ := os.ReadFile(p)
		return fi.Mode().String() + string(data)
	}
	cases := []struct {
		name, target, phrase string
		args                 []string
	}{
		{"encode -o the input image", img, "is an input", encode(img, "--force")},
		{"encode -o a hard link to the image", hard, "is the input " + img, encode(hard, "--force")},
		{"encode -o the model's vision.gguf", filepath.Join(model, "vision.gguf"), "is an input", encode(filepath.Join(model, "vision.gguf"), "--force")},
		{"ask --logits-out the image", img, "is an input", ask(llama, img, "--force")},
		{"ask --logits-out the model's llm.gguf", filepath.Join(llama, "llm.gguf"), "is an input", ask(llama, filepath.Join(llama, "llm.gguf"), "--force")},
		{"encode -o a symbolic link", link, "is a symbolic link", encode(link, "--force")},
		{"encode -o a FIFO", fifo, "is a named pipe (FIFO): not replaced", encode(fifo, "--force")},
		{"ask --logits-out a FIFO", fifo, "is a named pipe (FIFO): not replaced", ask(llama, fifo, "--force")},
	}
	if dev != "" {
		cases = append(cases, struct {
			name, target, phrase string
			args                 []string
		}{"encode -o a character device", dev, "is a character device: not replaced", encode(dev, "--force")})
	}
	// convert: the model folder's files are links to the checkpoint's.
	hfDir := filepath.Join(goldenRoot, "blip2-opt", "hf")
	conv := at("conv")
	os.Mkdir(conv, 0o755)
	absST, _ := filepath.Abs(filepath.Join(hfDir, "model.safetensors"))
	os.Symlink(absST, filepath.Join(conv, "llm.gguf"))
	cases = append(cases, struct {
		name, target, phrase string
		args                 []string
	}{"convert -o a folder whose llm.gguf is a link", filepath.Join(conv, "llm.gguf"), "is a symbolic link", []string{"convert", hfDir, "-o", conv, "--force"}})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := snapshot(c.target)
			code, _, stderr := runWithin(t, 60*time.Second, c.args, fifo)
			oneLine(t, c.name, code, stderr, c.phrase)
			if after := snapshot(c.target); after != before {
				t.Errorf("%s changed", c.target)
			}
		})
	}

	// An existing regular file: refused, then replaced with --force.
	prev := at("prev.safetensors")
	os.WriteFile(prev, []byte("precious"), 0o644)
	code, _, stderr := runWithin(t, 60*time.Second, encode(prev))
	oneLine(t, "encode -o an existing file", code, stderr, "prev.safetensors already exists; add --force to replace it")
	if data, _ := os.ReadFile(prev); string(data) != "precious" {
		t.Errorf("replaced without --force")
	}
	code, _, stderr = runWithin(t, 60*time.Second, ask(llama, prev))
	oneLine(t, "ask --logits-out an existing file", code, stderr, "already exists; add --force")
	if code, _, stderr = runWithin(t, 60*time.Second, encode(prev, "--force")); code != 0 {
		t.Fatalf("encode --force: exit %d: %s", code, stderr)
	}
	if data, _ := os.ReadFile(prev); string(data) == "precious" {
		t.Errorf("not replaced with --force")
	}
}
