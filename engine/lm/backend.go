package lm

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/blip2chat/blip2chat/weights/gguf"
)

// OpenOptions configure Open.
type OpenOptions struct {
	LlamaLib string    // folder of the llama.cpp library ("" searches; see engine/llamacpp/capi.Locate)
	Log      io.Writer // backend log text (llama.cpp's messages); nil discards it
	// Progress, if set, receives the fraction of the model loaded (0..1).
	Progress func(frac float64)
	// VocabOnly says only the tokenizer is needed (Tokenize, TokenBytes,
	// IsEOG, Info): a backend may skip the weights, and NewContext and
	// TokenEmbeddings then fail.
	VocabOnly bool
	// GPULayers is how many layers a backend that can offload (llama.cpp
	// with a GPU build and a GPU) puts on the GPU: 0 none, AllLayers all.
	// Info.Device says where the model runs.
	GPULayers int
}

// AllLayers as OpenOptions.GPULayers offloads every layer.
const AllLayers = -1

// Opener loads the model file at path. Backends register one per
// architecture.
type Opener func(path string, o OpenOptions) (Model, error)

var (
	backendsMu sync.RWMutex
	backends   = map[string]Opener{}
)

// RegisterBackend makes Open use open for GGUF files whose
// general.architecture is arch; arch "*" is the fallback for architectures
// no backend claims (llama.cpp runs many). Backends call it from init.
func RegisterBackend(arch string, open Opener) {
	backendsMu.Lock()
	defer backendsMu.Unlock()
	if _, dup := backends[arch]; dup {
		panic("lm: two backends registered for architecture " + arch)
	}
	backends[arch] = open
}

// Backends lists the registered architectures, sorted.
func Backends() []string {
	backendsMu.RLock()
	defer backendsMu.RUnlock()
	var out []string
	for a := range backends {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// Arch reads general.architecture from the GGUF file at path.
func Arch(path string) (string, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	arch, ok := f.String("general.architecture")
	if !ok || arch == "" {
		return "", fmt.Errorf("%s: no general.architecture: not a language model GGUF", path)
	}
	return arch, nil
}

// Open loads the language model in the GGUF file at path with the backend
// registered for its architecture.
func Open(path string, o OpenOptions) (Model, error) {
	arch, err := Arch(path)
	if err != nil {
		return nil, err
	}
	backendsMu.RLock()
	open, ok := backends[arch]
	if !ok {
		open, ok = backends["*"]
	}
	backendsMu.RUnlock()
	if !ok {
		have := strings.Join(Backends(), ", ")
		if have == "" {
			have = "none"
		}
		return nil, fmt.Errorf("%s: no backend runs architecture %q (registered: %s)", path, arch, have)
	}
	return open(path, o)
}
