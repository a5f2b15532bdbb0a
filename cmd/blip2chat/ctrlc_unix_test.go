//go:build unix

package main

import (
	"errors"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/weights/safetensors"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// blip2chatBinary builds the command once per test run.
func blip2chatBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build the binary:", err)
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "blip2chat-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "blip2chat")
		out, err := exec.Command(goTool, "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = errors.New(string(out))
		}
	})
	if binErr != nil {
		t.Fatalf("building blip2chat: %v", binErr)
	}
	return binPath
}

// bigPNG writes a w x h grey PNG: seconds to decode and resize, little to
// store.
func bigPNG(t *testing.T, path string, w, h int) {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(i / w)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

// bigVocabOPT writes a copy of the golden OPT checkpoint whose vocabulary
// has vocab tokens (the tokenizer's are padded): its token embedding, the
// largest tensor, makes a conversion that takes seconds.
func bigVocabOPT(t *testing.T, dir string, vocab int) string {
	t.Helper()
	src := filepath.Join(goldenRoot, "blip2-opt", "hf")
	copyDir(t, src, dir, func(name string, data []byte) []byte {
		if name == "model.safetensors" {
			return nil
		}
		return data
	})
	editConfig(t, dir, "text_config", func(m map[string]any) { m["vocab_size"] = vocab })
	st, err := safetensors.Open(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var tensors []safetensors.WriteTensor
	for _, name := range st.Names() {
		tt, _ := st.Tensor(name)
		w := safetensors.WriteTensor{Name: name, DType: tt.DType, Shape: tt.Shape, Data: tt.Data}
		if name == "language_model.model.decoder.embed_tokens.weight" {
			w.Shape = []int{vocab, tt.Shape[1]}
			w.Data = make([]byte, vocab*tt.Shape[1]*4)
			copy(w.Data, tt.Data)
		}
		tensors = append(tensors, w)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), tensors, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// interrupt starts the binary with args, sends SIGINT once ready says so
// (given the output so far and how long it has run), and returns the exit
// status (-2 when SIGINT's default action ended it), how long it took to
// exit after the signal (-1 when it ended before), and its output.
func interrupt(t *testing.T, args []string, wait time.Duration, ready func(stdout, stderr string, running time.Duration) bool) (code int, reaction time.Duration, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(blip2chatBinary(t), args...)
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	start := time.Now()
	deadline := start.Add(wait)
	for ready == nil || !ready(out.String(), errb.String(), time.Since(start)) {
		if time.Now().After(deadline) {
			if ready != nil {
				cmd.Process.Kill()
				<-done
				t.Fatalf("%v: not ready after %v; stdout %q, stderr %q", args, wait, out.String(), errb.String())
			}
			break
		}
		select {
		case <-done:
			return cmd.ProcessState.ExitCode(), -1, out.String(), errb.String()
		case <-time.After(5 * time.Millisecond):
		}
	}
	sent := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v still running 20 s after SIGINT", args)
	}
	reaction = time.Since(sent)
	code = cmd.ProcessState.ExitCode()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGINT {
		code = -2
	}
	return code, reaction, out.String(), errb.String()
}

// TestCtrlC: Ctrl+C (SIGINT) stops every long command within a second,
// with status 130 and one line saying so: ask while it answers and while
// it decodes a large image, encode while it decodes, bench between runs,
// convert between tensors (removing what it wrote). Commands without long
// work (tokenize, doctor) keep SIGINT's default action and end at once, if
// they have not finished before the signal.
func TestCtrlC(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	f := newCLIFixtures(t)
	big := filepath.Join(f.tmp, "big.png")
	bigPNG(t, big, 9000, 9000)
	after := func(d time.Duration) func(string, string, time.Duration) bool {
		return func(_, _ string, running time.Duration) bool { return running > d }
	}
	for _, c := range []struct {
		name   string
		args   []string
		ready  func(stdout, stderr string, running time.Duration) bool
		code   int
		stderr string
	}{
		{"ask while answering", []string{"ask", "-m", f.llama, f.img, "q", "--max-tokens", "20000", "--ctx", "20100", "--threads", "1", "--llama-lib", f.lib},
			func(out, _ string, _ time.Duration) bool { return out != "" }, 130, "blip2chat ask: interrupted\n"},
		{"ask while decoding a large image", []string{"ask", "-m", f.opt, big, "q"}, after(300 * time.Millisecond), 130, "blip2chat ask: interrupted\n"},
		{"encode while decoding a large image", []string{"encode", "-m", f.opt, big, "-o", filepath.Join(f.tmp, "e.safetensors")},
			after(300 * time.Millisecond), 130, "blip2chat encode: interrupted\n"},
		{"bench between runs", []string{"bench", "-m", f.opt, "--runs", "1000", "--threads", "1"}, after(1500 * time.Millisecond), 130, "blip2chat bench: interrupted\n"},
		{"convert between tensors", []string{"convert", bigVocabOPT(t, filepath.Join(f.tmp, "hf-bigvocab"), 1<<18), "-o", filepath.Join(f.tmp, "conv"), "--llm-type", "f32"},
			func(_, errs string, _ time.Duration) bool { return strings.Contains(errs, "tensors") }, 130, "blip2chat convert: interrupted; nothing written to " + filepath.Join(f.tmp, "conv") + "\n"},
		{"tokenize", []string{"tokenize", "-m", f.llama, "--llama-lib", f.lib, strings.Repeat("a long text ", 1000)}, after(20 * time.Millisecond), -2, ""},
		{"doctor", []string{"doctor", "-m", f.llama, "--llama-lib", f.lib}, after(20 * time.Millisecond), -2, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, reaction, _, stderr := interrupt(t, c.args, 60*time.Second, c.ready)
			if c.code == -2 && code == 0 {
				t.Logf("ended before the signal took effect")
				return
			}
			t.Logf("exit %d, %v after SIGINT", code, reaction.Round(time.Millisecond))
			if code != c.code {
				t.Errorf("exit status %d, want %d; stderr %q", code, c.code, stderr)
			}
			if c.stderr != "" && !strings.HasSuffix(stderr, c.stderr) {
				t.Errorf("stderr %q, want it to end with %q", stderr, c.stderr)
			}
			if reaction > time.Second {
				t.Errorf("took %v to stop after SIGINT", reaction)
			}
		})
	}
}
