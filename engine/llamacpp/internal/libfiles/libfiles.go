// Package libfiles names the llama.cpp library's files and the environment
// variable that points at their folder. It is shared by engine/llamacpp/capi and
// its test helpers (engine/llamacpp/llamatest), which cannot import
// engine/llamacpp/capi since its own tests use them.
package libfiles

// EnvLib names the environment variable that points at the library folder.
const EnvLib = "BLIP2CHAT_LLAMA_LIB"

// Files are the file names of one platform's library: ggml-base, ggml and
// llama, loaded in that order.
type Files struct{ Base, GGML, Llama string }

// For returns the names node-llama-cpp 3.21.1 uses for its prebuilt
// libraries on goos: versioned names, so that a copy of another release is
// not found by accident.
func For(goos string) Files {
	switch goos {
	case "darwin":
		return Files{"libggml-base.dylib", "libggml.metal.v0.4.0.dylib", "libllama.metal.v0.4.0.dylib"}
	case "windows":
		return Files{"ggml-base.dll", "ggml.dll", "llama.dll"}
	}
	return Files{"libggml-base.so", "libggml.v0.4.0.so", "libllama.v0.4.0.so"}
}
