//go:build !windows

package capi

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/ebitengine/purego"
)

// dlopen opens a shared library by path, or by bare name through the
// system loader path. RTLD_GLOBAL lets the backend modules ggml loads later
// see the same ggml-base.
func dlopen(path string) (uintptr, error) {
	return purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
}

// dlopenLocal opens a library without sharing its symbols (probing a
// backend module for the reason it does not load).
func dlopenLocal(path string) (uintptr, error) {
	return purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
}

func dlsym(handle uintptr, name string) (uintptr, error) { return purego.Dlsym(handle, name) }

// loadedDir finds the folder a library opened by bare name was loaded from
// (Linux: /proc/self/maps; "" where unknown).
func loadedDir(_ uintptr, name string) string {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(maps), "\n") {
		i := strings.IndexByte(line, '/')
		if i < 0 {
			continue
		}
		path := line[i:]
		if filepath.Base(path) == name {
			return filepath.Dir(path)
		}
	}
	return ""
}
