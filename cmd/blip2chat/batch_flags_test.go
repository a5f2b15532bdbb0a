package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBatchFlags: bad command lines are refused with one line (exit 2 for
// usage) before any model loads; the model folder here does not exist.
func TestBatchFlags(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "a.jpg")
	os.WriteFile(img, []byte("x"), 0o644)
	empty := t.TempDir()
	prompts := filepath.Join(dir, "prompts.txt")
	os.WriteFile(prompts, []byte("\n  \n"), 0o644)
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no model", []string{img}, 2, "usage: blip2chat batch"},
		{"no images", []string{"-m", "m"}, 2, "usage: blip2chat batch"},
		{"bad preset", []string{"-m", "m", img, "--preset", "fast"}, 2, `--preset "fast": no preset "fast"`},
		{"bad set", []string{"-m", "m", img, "--set", "vqa num_beams=x"}, 2, "num_beams takes a whole number"},
		{"set key", []string{"-m", "m", img, "--set", "threads=4"}, 2, "not a decoding setting"},
		{"captions grid", []string{"-m", "m", img, "--captions", "--prompt", "a", "--prompt", "b"}, 2, "one model, one prompt and one setting"},
		{"caption ext", []string{"-m", "m", img, "--captions", "--caption-ext", "txt"}, 2, "--caption-ext"},
		{"overwrite alone", []string{"-m", "m", img, "--overwrite"}, 2, "go with --captions"},
		{"report type", []string{"-m", "m", img, "--report", "r.pdf"}, 2, "want a .html or .md file"},
		{"empty prompts file", []string{"-m", "m", img, "--prompts", prompts}, 2, "holds no prompt"},
		{"threads", []string{"-m", "m", img, "--threads", "-1"}, 2, "negative"},
		{"empty folder", []string{"-m", "m", empty}, 1, "no images in"},
		{"missing image", []string{"-m", "m", filepath.Join(dir, "nope.jpg")}, 1, "no such file"},
		{"out is a folder", []string{"-m", "m", img, "--out", dir}, 1, "is a folder"},
		{"out is the image", []string{"-m", "m", img, "--out", img}, 1, "is an input"},
		{"missing model", []string{"-m", filepath.Join(dir, "nomodel"), img}, 1, "nomodel"},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"batch"}, c.args...), &out, &errb)
		if code != c.code || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", c.name, code, errb.String(), c.code, c.want)
		}
		// The error is one line; the progress may say which model loads.
		if n := strings.Count(strings.TrimSpace(errb.String()), "\n") - strings.Count(errb.String(), "batch: loading "); code == 1 && n > 0 {
			t.Errorf("%s: %d lines of error: %q", c.name, n+1, errb.String())
		}
	}
}
