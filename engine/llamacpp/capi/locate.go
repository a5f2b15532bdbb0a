package capi

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/blip2chat/blip2chat/engine/llamacpp/internal/libfiles"
)

// Sources a Location can come from, in the order Locate tries them.
const (
	SourceFlag       = "--llama-lib"
	SourceEnv        = "$" + EnvLib
	SourceExecutable = "beside the executable"
	SourceUserData   = "user data folder"
	SourceSystem     = "system loader path"
)

// EnvLib names the environment variable that points at the library folder.
const EnvLib = libfiles.EnvLib

// Location says where the llama.cpp library is and which rule found it.
type Location struct {
	Dir    string   // folder holding the library; "" for the system loader path
	Source string   // one of the Source* constants
	Tried  []string // folders looked at before Dir, in order
}

func (l Location) String() string {
	if l.Dir == "" {
		return l.Source
	}
	return fmt.Sprintf("%s (%s)", l.Dir, l.Source)
}

// LibraryFile is the file name of the llama library on this platform.
var LibraryFile = libfiles.For(runtime.GOOS).Llama

// sysEnv is what Locate reads from the outside world (replaced in tests).
type sysEnv struct {
	goos       string
	getenv     func(string) string
	executable func() (string, error)
	homeDir    func() (string, error)
}

func realEnv() sysEnv {
	return sysEnv{runtime.GOOS, os.Getenv, os.Executable, os.UserHomeDir}
}

// Locate finds the llama.cpp library folder. It tries, in order: dir (the
// --llama-lib flag) if not empty, $BLIP2CHAT_LLAMA_LIB, lib/ beside the
// executable (symlinks resolved), the per-user data folder
// ($XDG_DATA_HOME/blip2chat/lib, ~/.local/share/blip2chat/lib, or on macOS
// ~/Library/Application Support/blip2chat/lib), and finally the system loader
// path, which only dlopen can check. A folder named by the flag or the
// environment variable that lacks the library is an error rather than a reason
// to look elsewhere: silently using another copy would hide the mistake.
func Locate(dir string) (Location, error) {
	return locate(dir, realEnv())
}

func locate(dir string, env sysEnv) (Location, error) {
	want := libfiles.For(env.goos).Llama
	var loc Location
	explicit := func(d, source, undo string) (Location, error) {
		abs, err := filepath.Abs(d)
		if err == nil {
			d = abs
		}
		if hasFile(d, want) {
			loc.Dir, loc.Source = d, source
			return loc, nil
		}
		return Location{}, fmt.Errorf("no llama.cpp library in %s (expected %s%s); run 'make lib' or scripts/fetch-llama-lib.sh, or %s",
			d, want, otherVersionHint(d, want), undo)
	}
	if dir != "" {
		return explicit(dir, SourceFlag, "drop --llama-lib")
	}
	if d := env.getenv(EnvLib); d != "" {
		return explicit(d, SourceEnv, "unset "+EnvLib)
	}
	try := func(d, source string) bool {
		if hasFile(d, want) {
			loc.Dir, loc.Source = d, source
			return true
		}
		loc.Tried = append(loc.Tried, d)
		return false
	}
	if exe, err := env.executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		if try(filepath.Join(filepath.Dir(exe), "lib"), SourceExecutable) {
			return loc, nil
		}
	}
	if d := userDataDir(env); d != "" && try(d, SourceUserData) {
		return loc, nil
	}
	loc.Source = SourceSystem
	return loc, nil
}

// userDataDir is the per-user install folder of the library ("" when there is
// no home folder).
func userDataDir(env sysEnv) string {
	if env.goos != "darwin" {
		if x := env.getenv("XDG_DATA_HOME"); x != "" && filepath.IsAbs(x) {
			return filepath.Join(x, "blip2chat", "lib")
		}
	}
	home, err := env.homeDir()
	if err != nil || home == "" {
		return ""
	}
	if env.goos == "darwin" {
		return filepath.Join(home, "Library", "Application Support", "blip2chat", "lib")
	}
	return filepath.Join(home, ".local", "share", "blip2chat", "lib")
}

func hasFile(dir, name string) bool {
	st, err := os.Stat(filepath.Join(dir, name))
	return err == nil && st.Mode().IsRegular()
}

// otherVersionHint names another llama library in dir, which usually means a
// copy of a different release.
func otherVersionHint(dir, want string) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, e := range ents {
		n := e.Name()
		if n != want && strings.HasPrefix(n, "libllama") && !strings.HasPrefix(n, "libllama-") &&
			(strings.Contains(n, ".so") || strings.HasSuffix(n, ".dylib")) {
			return "; it holds " + n + ", another version?"
		}
	}
	return ""
}
