package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/engine/llamacpp/capi"
	"github.com/blip2chat/blip2chat/engine/llamacpp/llamatest"
	"github.com/blip2chat/blip2chat/engine/model/modeltest"
	"github.com/blip2chat/blip2chat/weights/gguf"
)

func TestDoctorMissingLibrary(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run([]string{"doctor", "--llama-lib", dir}, &out, &errb)
	if code == 0 {
		t.Fatalf("exit 0 with an empty --llama-lib folder; stdout:\n%s", out.String())
	}
	want := "blip2chat doctor: no llama.cpp library in " + dir + " (expected " + capi.LibraryFile +
		"); run 'make lib' or scripts/fetch-llama-lib.sh, or drop --llama-lib\n"
	if errb.String() != want {
		t.Errorf("stderr:\n%q\nwant one line:\n%q", errb.String(), want)
	}
	// The rest of the report is still printed.
	for _, s := range []string{"blip2chat ", "go ", "cpu ", "llama.cpp    NOT USABLE"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("stdout lacks %q:\n%s", s, out.String())
		}
	}
}

func writeDoctorGGUF(t *testing.T, path, arch string, tensors int) {
	t.Helper()
	w := gguf.NewWriter()
	w.Add("general.architecture", arch)
	for i := range tensors {
		if err := w.AddTensor(fmt.Sprintf("t%d", i), gguf.TypeF32, []uint64{4}); err != nil {
			t.Fatal(err)
		}
	}
	err := gguf.WriteFile(path, w, func(_ int, _ gguf.TensorInfo, out io.Writer) error {
		_, err := out.Write(make([]byte, 16))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDoctor(t *testing.T) {
	lib := llamatest.LibDir(t)
	model := t.TempDir()
	writeDoctorGGUF(t, filepath.Join(model, "vision.gguf"), "blip2", 3)
	writeDoctorGGUF(t, filepath.Join(model, "llm.gguf"), "llama", 2)
	os.WriteFile(filepath.Join(model, "notes.txt"), []byte("hello"), 0o644)

	// Every file is listed; these GGUFs are not a model, which the check
	// after the list says.
	var out, errb bytes.Buffer
	if code := run([]string{"doctor", "--llama-lib", lib, "-m", model}, &out, &errb); code != 1 {
		t.Fatalf("exit %d: %s\n%s", code, errb.String(), out.String())
	}
	t.Logf("\n%s", out.String())
	abs, _ := filepath.Abs(lib)
	for _, s := range []string{
		"llama.cpp    " + abs + " (--llama-lib)",
		"  version    0.4.0",
		"  cpu        CPU :",
		"  devices    CPU (",
		"  llm.gguf     224 B, gguf v3, llama, 2 tensors, 1 metadata keys\n",
		"  notes.txt    5 B\n",
		"  vision.gguf  288 B, gguf v3, blip2, 3 tensors, 1 metadata keys\n",
		"  check        PROBLEM (see the error below)\n",
	} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("stdout lacks %q", s)
		}
	}
	if want := "vision.gguf: general.architecture is \"blip2\""; strings.Count(errb.String(), "\n") != 1 || !strings.Contains(errb.String(), want) {
		t.Errorf("stderr %q, want one line with %q", errb.String(), want)
	}

	// A broken or missing model file: reported, exit status 1, one line.
	os.WriteFile(filepath.Join(model, "llm.gguf"), []byte("GGUF\x03\x00"), 0o644)
	os.Remove(filepath.Join(model, "vision.gguf"))
	out.Reset()
	errb.Reset()
	if code := run([]string{"doctor", "--llama-lib", lib, "-m", model}, &out, &errb); code != 1 {
		t.Fatalf("exit %d with a broken model folder", code)
	}
	if !strings.Contains(out.String(), "UNREADABLE") || !strings.Contains(out.String(), "vision.gguf  MISSING") {
		t.Errorf("stdout:\n%s", out.String())
	}
	if lines := strings.Count(errb.String(), "\n"); lines != 1 || !strings.Contains(errb.String(), "llm.gguf") {
		t.Errorf("stderr %q, want one line naming llm.gguf", errb.String())
	}
}

// TestDoctorModelCheck: a converted folder passes the check; the same
// vision.gguf with another family's llm.gguf does not.
func TestDoctorModelCheck(t *testing.T) {
	lib := llamatest.LibDir(t)
	good := filepath.Join(t.TempDir(), "opt")
	if err := modeltest.BuildModelDir(filepath.Join(goldenRoot, "blip2-opt", "hf"), good, "f32", lib); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"doctor", "--llama-lib", lib, "-m", good}, &out, &errb); code != 0 || errb.Len() != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errb.String(), out.String())
	}
	// The column is as wide as the folder's longest file name.
	if want := regexp.MustCompile(`\n  check +vision.gguf and llm.gguf load and belong together\n`); !want.MatchString(out.String()) {
		t.Errorf("stdout lacks %q:\n%s", want, out.String())
	}

	mixed := t.TempDir()
	copyFile(t, filepath.Join(good, "vision.gguf"), filepath.Join(mixed, "vision.gguf"))
	w := modeltest.DefaultTinyLlama()
	if _, err := w.Write(filepath.Join(mixed, "llm.gguf")); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	code := run([]string{"doctor", "--llama-lib", lib, "-m", mixed}, &out, &errb)
	if want := "is a llama model but"; code != 1 || strings.Count(errb.String(), "\n") != 1 || !strings.Contains(errb.String(), want) {
		t.Errorf("exit %d, stderr %q; want 1 and one line with %q", code, errb.String(), want)
	}
}

func TestDoctorUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"doctor", "extra"}, &out, &errb); code != 2 {
		t.Errorf("exit %d for a stray argument, want 2", code)
	}
}
