package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/engine/llamacpp/capi"
	"github.com/blip2chat/blip2chat/engine/llamacpp/llamatest"
	"github.com/blip2chat/blip2chat/engine/model/modeltest"
)

// damagedLibCopy copies the library folder src (with its stamp) and cuts
// its llama library to n bytes.
func damagedLibCopy(t *testing.T, src string, n int) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(src, capi.StampFile)); err != nil {
		t.Skipf("%s has no stamp (not made by scripts/fetch-llama-lib.sh): %v", src, err)
	}
	return copyDir(t, src, filepath.Join(t.TempDir(), "lib"), func(name string, data []byte) []byte {
		if name == capi.LibraryFile {
			return data[:n]
		}
		return data
	})
}

// TestC6DamagedLibrary: a llama.cpp library cut to 1 MB made ask and doctor
// die of SIGBUS inside dlopen. Both now say, in one line, which file is
// damaged and how to reinstall it.
func TestC6DamagedLibrary(t *testing.T) {
	lib, err := filepath.Abs(llamatest.LibDir(t))
	if err != nil {
		t.Fatal(err)
	}
	bad := damagedLibCopy(t, lib, 1<<20)
	model := filepath.Join(t.TempDir(), "llama")
	if err := modeltest.BuildModelDir(filepath.Join(goldenRoot, "blip2-llama", "hf"), model, "f32", lib); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(goldenRoot, "images", "cat.jpg")
	want := "llama.cpp library file " + filepath.Join(bad, capi.LibraryFile) + " is 1048576 bytes, not the "
	for _, args := range [][]string{
		{"doctor", "--llama-lib", bad},
		{"ask", "-m", model, "--llama-lib", bad, img, "what is it?"},
	} {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		msg := errb.String()
		if code != 1 || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, want) || !strings.Contains(msg, "'make lib'") {
			t.Errorf("%s: exit %d, stderr %q\nwant one line with %q and 'make lib'", args[0], code, msg, want)
		}
	}
}

func TestGPULayersFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"all", -1, true}, {"0", 0, true}, {"33", 33, true}, {"-1", 0, false}, {"x", 0, false}, {"1e3", 0, false},
		{"99999999999999999999", 0, false},
	} {
		var g gpuLayers
		err := g.Set(tc.in)
		if (err == nil) != tc.ok || (tc.ok && int(g) != tc.want) {
			t.Errorf("Set(%q) = %d, %v", tc.in, g, err)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"ask", "--gpu-layers", "some", "-m", "x", "a.jpg", "q"}, &out, &errb); code != 2 ||
		!strings.Contains(errb.String(), `invalid value "some" for flag -gpu-layers: want a number of layers (0: none) or all`) {
		t.Errorf("bad --gpu-layers: exit %d, %q", code, errb.String())
	}
}

// EnvCUDALib names the folder of a CUDA build of the library (make test
// fetches @node-llama-cpp/linux-x64-cuda into lib-linux-x64-cuda).
const EnvCUDALib = "BLIP2CHAT_LLAMA_LIB_CUDA"

// TestCUDAFallback: with the CUDA build of the library and no GPU or driver
// (this machine), ask still answers, the same as with the CPU build, and
// says in one line that it runs on the CPU. A library is loaded once per
// process, so each run is a child process (this test binary).
func TestCUDAFallback(t *testing.T) {
	cuda := os.Getenv(EnvCUDALib)
	if cuda == "" {
		t.Skipf("$%s is not set (make test sets it to the linux-x64-cuda build it fetches)", EnvCUDALib)
	}
	lib, err := filepath.Abs(llamatest.LibDir(t))
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(t.TempDir(), "llama")
	if err := modeltest.BuildModelDir(filepath.Join(goldenRoot, "blip2-llama", "hf"), model, "q4_k_m", lib); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(goldenRoot, "images", "cat.jpg")
	ask := func(libDir string, extra ...string) (string, string) {
		t.Helper()
		args := append([]string{"ask", "-m", model, "--llama-lib", libDir, "--greedy", "--max-tokens", "8"}, extra...)
		args = append(args, img, "what is it?")
		cmd := exec.Command(os.Args[0], "-test.run=^TestRunChild$")
		cmd.Env = append(os.Environ(), "BLIP2CHAT_TEST_CHILD="+strings.Join(args, "\x1f"))
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("ask with %s: %v\n%s", libDir, err, errb.String())
		}
		return out.String(), errb.String()
	}
	cpuOut, cpuErr := ask(lib)
	gpuOut, gpuErr := ask(cuda)
	t.Logf("CUDA build: stdout %q, stderr %q", gpuOut, gpuErr)
	if cpuErr != "" || cpuOut == "" {
		t.Fatalf("CPU build: stdout %q, stderr %q", cpuOut, cpuErr)
	}
	if gpuOut != cpuOut {
		t.Errorf("CUDA build answered %q, the CPU build %q", gpuOut, cpuOut)
	}
	const want = "note: the CUDA build of llama.cpp cannot use a GPU here ("
	if strings.Count(gpuErr, "\n") != 1 || !strings.HasPrefix(gpuErr, want) || !strings.HasSuffix(gpuErr, "); the language model runs on the CPU\n") {
		t.Errorf("stderr %q, want one line %q...", gpuErr, want)
	}
	// --gpu-layers 0 asks for the CPU: nothing to say.
	if out, errs := ask(cuda, "--gpu-layers", "0"); out != cpuOut || errs != "" {
		t.Errorf("--gpu-layers 0: stdout %q, stderr %q", out, errs)
	}
}

// TestRunChild runs the command line in $BLIP2CHAT_TEST_CHILD (arguments
// separated by US, 0x1f) as the binary would, for tests that need a fresh process.
func TestRunChild(t *testing.T) {
	args := os.Getenv("BLIP2CHAT_TEST_CHILD")
	if args == "" {
		t.Skip("only run as a child of another test")
	}
	os.Exit(run(strings.Split(args, "\x1f"), os.Stdout, os.Stderr))
}
