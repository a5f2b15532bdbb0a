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
			if w, err := os.OpenFile(f, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
		}
		t.Fatalf("%v still running after %v", args, d)
	}
	return code, out.String(), errb.String()
}

// mkfifo makes a FIFO at path, skipping the test where there are none.
func mkfifo(t *testing.T, path string) string {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	return path
}

// oneLine checks a failure: exit status 1 and one line on stderr holding
// phrase.
func oneLine(t *testing.T, what string, code int, stderr, phrase string) {
	t.Helper()
	if code != 1 || !strings.Contains(stderr, phrase) || strings.Count(stderr, "\n") != 1 {
		t.Errorf("%s: exit %d, stderr %q; want 1 and one line saying %q", what, code, stderr, phrase)
	}
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
