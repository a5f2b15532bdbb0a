package modeltest

import (
	"testing"

	"github.com/blip2chat/blip2chat/engine/llamacpp/llamatest"
)

// LibDir is llamatest.LibDir: the llama.cpp library folder the tests load.
func LibDir(tb testing.TB) string {
	tb.Helper()
	return llamatest.LibDir(tb)
}

// TinyLlama is a small LLaMA with random weights (see llamatest.Llama).
type TinyLlama = llamatest.Llama

// DefaultTinyLlama is llamatest.DefaultLlama.
func DefaultTinyLlama() TinyLlama { return llamatest.DefaultLlama() }
