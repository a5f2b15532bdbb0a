//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal: what is written to tty arrives at
// master, as on a user's terminal.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skip("no pseudo-terminals here:", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skip("cannot unlock the pseudo-terminal:", err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skip("no pseudo-terminal number:", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skip("cannot open the pseudo-terminal:", err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// TestS1AnswerSanitized (S1): a model whose vocabulary holds escape
// sequences (a window title, a screen clear, a colour, the clipboard, a
// hyperlink) cannot drive the user's terminal through ask: on a terminal
// the control characters are neutralised as the interface does; into a
// pipe the text is the model's, byte for byte; --json escapes them.
func TestS1AnswerSanitized(t *testing.T) {
	f := newCLIFixtures(t)
	args := func(m string, extra ...string) []string {
		return append([]string{"ask", "-m", m, f.img, "what is it?", "--greedy", "--max-tokens", "6", "--threads", "1", "--llama-lib", f.lib}, extra...)
	}
	// The tokens the golden LLaMA answers with, greedily.
	code, out, stderr := runWithin(t, 60e9, args(f.llama, "--json"))
	if code != 0 {
		t.Fatalf("ask --json: exit %d: %s", code, stderr)
	}
	var r askResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	// Their pieces become escape sequences (those not in the prompt, whose
	// tokenization must not change).
	evil := map[int]string{}
	for i, id := range r.IDs {
		if !slices.Contains(r.PromptIDs, id) && evil[int(id)] == "" {
			evil[int(id)] = fmt.Sprintf("\x1b]0;PWNED%d\a\x1b[2J\x1b[31mRED\x1b]52;c;SGVsbG8=\a\x1b]8;;https:evil.example\x1b\\click%d", i, i)
		}
	}
	if len(evil) == 0 {
		t.Fatalf("every answer token %v is in the prompt", r.IDs)
	}
	dir := copyDir(t, f.llama, filepath.Join(f.tmp, "escvocab"), nil)
	rewriteGGUF(t, filepath.Join(f.llama, "llm.gguf"), filepath.Join(dir, "llm.gguf"), func(k string, v any) any {
		if k != "tokenizer.ggml.tokens" {
			return v
		}
		toks := slices.Clone(v.([]string))
		for id, s := range evil {
			toks[id] = s
		}
		return toks
	})

	// Into a pipe: the model's text as it is.
	code, raw, stderr := runWithin(t, 60e9, args(dir))
	if code != 0 || !strings.Contains(raw, "\x1b]0;PWNED") {
		t.Fatalf("into a pipe: exit %d, stdout %q, stderr %s; want the raw text", code, raw, stderr)
	}
	// --json: exact and escaped.
	code, js, _ := runWithin(t, 60e9, args(dir, "--json"))
	if err := json.Unmarshal([]byte(js), &r); code != 0 || err != nil || !strings.Contains(r.Text, "\x1b]0;PWNED") || strings.ContainsRune(js, 0x1b) {
		t.Errorf("--json: exit %d, %v, %q", code, err, js)
	}
	// On a terminal: nothing a terminal would act on.
	master, tty := openPTY(t)
	var screen bytes.Buffer
	read := make(chan struct{})
	go func() { io.Copy(&screen, master); close(read) }()
	var errb bytes.Buffer
	code = run(args(dir), tty, &errb)
	tty.Close()
	<-read
	if code != 0 {
		t.Fatalf("on a terminal: exit %d: %s", code, errb.String())
	}
	got := screen.String()
	if strings.ContainsAny(got, "\x1b\a\u009b\u009d") || !strings.Contains(got, "\uFFFD]0;PWNED") {
		t.Errorf("on a terminal the answer is %q: want the control characters replaced", got)
	}
}
