//go:build unix

package capi

import "github.com/ebitengine/purego"

// dlopen loads a shared library. RTLD_GLOBAL lets the CPU backend modules
// that ggml loads later see the same ggml-base.
func dlopen(path string) (uintptr, error) {
	return purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
}

func dlsym(handle uintptr, name string) (uintptr, error) { return purego.Dlsym(handle, name) }
