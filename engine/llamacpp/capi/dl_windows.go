//go:build windows

package capi

import "golang.org/x/sys/windows"

// dlopen loads a DLL; a DLL loaded first (ggml-base) is the one the later
// ones bind to by name.
func dlopen(path string) (uintptr, error) {
	h, err := windows.LoadLibrary(path)
	return uintptr(h), err
}

func dlsym(handle uintptr, name string) (uintptr, error) {
	return windows.GetProcAddress(windows.Handle(handle), name)
}
