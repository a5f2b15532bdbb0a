// Package llamatest holds test helpers for code that runs llama.cpp: the
// library folder the tests load, and tiny random LLaMA and T5 models written
// as GGUF files on the fly, so that no model has to be downloaded. Only tests
// import it. It does not import engine/llamacpp/capi, whose own tests use it.
package llamatest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/blip2chat/blip2chat/engine/llamacpp/internal/libfiles"
)

// EnvRequire names the environment variable that turns a test skipped for
// want of the library into a failure (CI and `make test` set it).
const EnvRequire = "BLIP2CHAT_REQUIRE_LLAMA"

// RepoRoot finds the module root (the folder with go.mod) above the working
// directory; tests run in their package folder.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("llamatest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// LibDir returns the llama.cpp library folder the tests load:
// $BLIP2CHAT_LLAMA_LIB, else lib/ at the module root when it holds the
// library. Without either the test is skipped, or fails when
// $BLIP2CHAT_REQUIRE_LLAMA is set. Every test of a process gets the same
// folder, as engine/llamacpp/capi.Load requires.
func LibDir(tb testing.TB) string {
	tb.Helper()
	if d := os.Getenv(libfiles.EnvLib); d != "" {
		return d
	}
	lib := libfiles.For(runtime.GOOS).Llama
	d := filepath.Join(RepoRoot(tb), "lib")
	if _, ok := libfiles.FindHere(d, runtime.GOOS); ok {
		return d
	}
	msg := "llama.cpp library absent: neither $" + libfiles.EnvLib + " nor " + d + " holds " + lib + "; run 'make lib'"
	if os.Getenv(EnvRequire) != "" {
		tb.Fatal(msg + " ($" + EnvRequire + " is set)")
	}
	tb.Skip(msg)
	return ""
}
