// Package libfiles names the llama.cpp library's files on each platform, the
// npm packages they come from, and reads the stamp scripts/fetch-llama-lib.sh
// writes beside them. It is shared by engine/llamacpp/capi and its test
// helpers (engine/llamacpp/llamatest), which cannot import
// engine/llamacpp/capi since its own tests use them.
package libfiles

import (
	"os"
	"path/filepath"
	"strings"
)

// EnvLib names the environment variable that points at the library folder.
const EnvLib = "BLIP2CHAT_LLAMA_LIB"

// Release is the llama.cpp release in the file names, and NPMVersion the
// version of the @node-llama-cpp packages that ship it.
const (
	Release    = "0.4.0"
	NPMVersion = "3.21.1"
)

// The builds of the library. A GPU build holds the CPU backends too and
// falls back to them when its GPU backend cannot start.
const (
	CPU    = "cpu"
	CUDA   = "cuda"
	Vulkan = "vulkan"
	Metal  = "metal"
)

// Files are the file names of one build: ggml-base, ggml and llama, loaded
// in that order, and the GPU backend module ggml loads by itself ("" for
// the CPU build).
type Files struct {
	Variant           string // CPU, CUDA, Vulkan or Metal
	Base, GGML, Llama string
	Backend           string // e.g. libggml-cuda.so, ggml-cuda.dll
}

// Names returns the file names node-llama-cpp 3.21.1 gives the variant's
// libraries on goos. They carry the release (and the GPU API), so that a
// copy of another release is not found by accident. ggml names its backend
// modules .so on every system but Windows, macOS included.
func Names(goos, variant string) Files {
	prefix, ext, modExt := "lib", ".so", ".so"
	switch goos {
	case "windows":
		prefix, ext, modExt = "", ".dll", ".dll"
	case "darwin":
		ext = ".dylib"
	}
	infix, backend := "", ""
	if variant != CPU {
		infix = "." + variant
		backend = prefix + "ggml-" + variant + modExt
	}
	return Files{
		Variant: variant,
		Base:    prefix + "ggml-base" + ext,
		GGML:    prefix + "ggml" + infix + ".v" + Release + ext,
		Llama:   prefix + "llama" + infix + ".v" + Release + ext,
		Backend: backend,
	}
}

// Variants lists the builds a folder may hold on goos, the default first.
func Variants(goos string) []string {
	if goos == "darwin" {
		return []string{Metal, CPU}
	}
	return []string{CPU, CUDA, Vulkan}
}

// For returns the names of goos's default build (Metal on macOS, else CPU).
func For(goos string) Files { return Names(goos, Variants(goos)[0]) }

// Find reports the build whose llama library dir holds, trying goos's
// variants in order; isFile says whether a path is a regular file.
func Find(dir, goos string, isFile func(string) bool, join func(...string) string) (Files, bool) {
	for _, v := range Variants(goos) {
		if f := Names(goos, v); isFile(join(dir, f.Llama)) {
			return f, true
		}
	}
	return Files{}, false
}

// FindHere is Find on this machine's file system for goos.
func FindHere(dir, goos string) (Files, bool) {
	return Find(dir, goos, func(p string) bool {
		st, err := os.Stat(p)
		return err == nil && st.Mode().IsRegular()
	}, filepath.Join)
}

// Package is one prebuilt @node-llama-cpp package.
type Package struct {
	Platform string // npm name without the scope, e.g. "linux-x64-cuda"
	GOOS     string
	GOARCH   string
	Variant  string
}

// Packages are the builds scripts/fetch-llama-lib.sh can fetch (the script
// holds their pinned integrity hashes).
var Packages = []Package{
	{"linux-x64", "linux", "amd64", CPU},
	{"linux-x64-cuda", "linux", "amd64", CUDA},
	{"linux-x64-vulkan", "linux", "amd64", Vulkan},
	{"linux-arm64", "linux", "arm64", CPU},
	{"mac-arm64-metal", "darwin", "arm64", Metal},
	{"win-x64", "windows", "amd64", CPU},
	{"win-x64-cuda", "windows", "amd64", CUDA},
	{"win-x64-vulkan", "windows", "amd64", Vulkan},
}

// Spec is the npm spec of the package, e.g. "@node-llama-cpp/linux-x64@3.21.1".
func (p Package) Spec() string { return "@node-llama-cpp/" + p.Platform + "@" + NPMVersion }

// Files are the package's library names.
func (p Package) Files() Files { return Names(p.GOOS, p.Variant) }

// PackageBySpec finds the package an npm spec names.
func PackageBySpec(spec string) (Package, bool) {
	for _, p := range Packages {
		if p.Spec() == spec {
			return p, true
		}
	}
	return Package{}, false
}

// IsBackendModule reports whether ggml's backend loader would load the file
// name on goos ([lib]ggml-NAME[-VARIANT].so|.dll, ggml-base excluded): a
// stray one in the library folder would be loaded unchecked.
func IsBackendModule(goos, name string) bool {
	prefix, ext := "libggml-", ".so"
	if goos == "windows" {
		prefix, ext = "ggml-", ".dll"
		name = strings.ToLower(name)
	}
	return strings.HasPrefix(name, prefix) && strings.HasSuffix(name, ext) &&
		!strings.HasPrefix(name, prefix+"base")
}
