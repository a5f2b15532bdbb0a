package capi

import (
	"path/filepath"

	"golang.org/x/sys/windows"
)

// dlopen opens a DLL. By full path, its own folder is searched for the DLLs
// it imports (ggml.dll, ggml-base.dll beside llama.dll), then the system
// folders; by bare name, the standard search order applies.
func dlopen(path string) (uintptr, error) {
	var flags uintptr
	if filepath.IsAbs(path) {
		flags = windows.LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR | windows.LOAD_LIBRARY_SEARCH_DEFAULT_DIRS
	}
	h, err := windows.LoadLibraryEx(path, 0, flags)
	return uintptr(h), err
}

// dlopenLocal is dlopen: Windows has no global symbol namespace.
func dlopenLocal(path string) (uintptr, error) {
	h, err := windows.LoadLibrary(path)
	return uintptr(h), err
}

func dlsym(handle uintptr, name string) (uintptr, error) {
	return windows.GetProcAddress(windows.Handle(handle), name)
}

// loadedDir is the folder of the loaded module.
func loadedDir(handle uintptr, _ string) string {
	buf := make([]uint16, windows.MAX_LONG_PATH)
	n, err := windows.GetModuleFileName(windows.Handle(handle), &buf[0], uint32(len(buf)))
	if err != nil || n == 0 {
		return ""
	}
	return filepath.Dir(windows.UTF16ToString(buf[:n]))
}
