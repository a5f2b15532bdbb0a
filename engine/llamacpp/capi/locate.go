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
	SourcePath       = "%PATH%" // Windows: the executable's folder and the folders on %PATH%
	SourceSystem     = "system loader path"
)

// EnvLib names the environment variable that points at the library folder.
const EnvLib = libfiles.EnvLib

// StampFile is the file scripts/fetch-llama-lib.sh writes into the library
// folder, with every file's size and sha256 (see Load).
const StampFile = libfiles.StampName

// Location says where the llama.cpp library is and which rule found it.
type Location struct {
	Dir    string         // folder holding the library; "" for the system loader path
	Source string         // one of the Source* constants
	Tried  []string       // folders looked at before Dir, in order
	Files  libfiles.Files // the build found there (for the system loader path: the default build's names)
}

func (l Location) String() string {
	if l.Dir == "" {
		return l.Source
	}
	return fmt.Sprintf("%s (%s)", l.Dir, l.Source)
}

// LibraryFile is the file name of the default build's llama library on this
// platform (GPU builds have their own, see Location.Files).
var LibraryFile = libfiles.For(runtime.GOOS).Llama

// sysEnv is what Locate reads from the outside world (replaced in tests,
// which also try other systems' rules).
type sysEnv struct {
	goos         string
	getenv       func(string) string
	executable   func() (string, error)
	homeDir      func() (string, error)
	evalSymlinks func(string) (string, error)
	isFile       func(string) bool
	readDir      func(string) ([]string, error)
}

func realEnv() sysEnv {
	return sysEnv{
		goos:         runtime.GOOS,
		getenv:       os.Getenv,
		executable:   os.Executable,
		homeDir:      os.UserHomeDir,
		evalSymlinks: filepath.EvalSymlinks,
		isFile: func(p string) bool {
			st, err := os.Stat(p)
			return err == nil && st.Mode().IsRegular()
		},
		readDir: func(d string) ([]string, error) {
			ents, err := os.ReadDir(d)
			names := make([]string, len(ents))
			for i, e := range ents {
				names[i] = e.Name()
			}
			return names, err
		},
	}
}

// Locate finds the llama.cpp library folder. It tries, in order: dir (the
// --llama-lib flag) if not empty, $BLIP2CHAT_LLAMA_LIB, lib/ beside the
// executable (symlinks resolved), the per-user data folder (see
// UserDataDir), and finally the system's own search: on Windows the
// executable's folder and each folder on %PATH% (as LoadLibrary would, but
// never the working folder); elsewhere the system loader path, which only
// dlopen can check. A folder named by the flag or the environment variable
// that lacks the library is an error rather than a reason to look
// elsewhere: silently using another copy would hide the mistake.
func Locate(dir string) (Location, error) {
	return locate(dir, realEnv())
}

func locate(dir string, env sysEnv) (Location, error) {
	p := pathOS(env.goos)
	want := libfiles.For(env.goos).Llama
	find := func(d string) (libfiles.Files, bool) {
		return libfiles.Find(d, env.goos, env.isFile, p.join)
	}
	var loc Location
	explicit := func(d, source, undo string) (Location, error) {
		if p.native() {
			if abs, err := filepath.Abs(d); err == nil {
				d = abs
			}
		} else {
			d = p.join(d)
		}
		if f, ok := find(d); ok {
			loc.Dir, loc.Source, loc.Files = d, source, f
			return loc, nil
		}
		return Location{}, fmt.Errorf("no llama.cpp library in %s (expected %s%s); run 'make lib' or scripts/fetch-llama-lib.sh, or %s",
			d, want, otherVersionHint(env, d, want), undo)
	}
	if dir != "" {
		return explicit(dir, SourceFlag, "drop --llama-lib")
	}
	if d := env.getenv(EnvLib); d != "" {
		return explicit(d, SourceEnv, "unset "+EnvLib)
	}
	try := func(d, source string) bool {
		if f, ok := find(d); ok {
			loc.Dir, loc.Source, loc.Files = d, source, f
			return true
		}
		loc.Tried = append(loc.Tried, d)
		return false
	}
	exeDir := ""
	if exe, err := env.executable(); err == nil {
		if real, err := env.evalSymlinks(exe); err == nil {
			exe = real
		}
		exeDir = p.dir(exe)
		if try(p.join(exeDir, "lib"), SourceExecutable) {
			return loc, nil
		}
	}
	if d := userDataDir(env); d != "" && try(d, SourceUserData) {
		return loc, nil
	}
	if p.windows() {
		dirs := p.splitList(env.getenv("PATH"))
		if exeDir != "" {
			dirs = append([]string{exeDir}, dirs...)
		}
		for _, d := range dirs {
			if f, ok := find(d); ok {
				loc.Dir, loc.Source, loc.Files = d, SourcePath, f
				return loc, nil
			}
		}
		loc.Tried = append(loc.Tried, "the executable's folder and %PATH%")
		return Location{}, fmt.Errorf("no llama.cpp library found (looked in %s); run 'make lib' or scripts/fetch-llama-lib.sh, or point --llama-lib or %%%s%% at its folder",
			strings.Join(loc.Tried, ", "), EnvLib)
	}
	loc.Source, loc.Files = SourceSystem, libfiles.For(env.goos)
	return loc, nil
}

// UserDataDir is the per-user folder `make install` puts the library in:
// %LOCALAPPDATA%\blip2chat\lib on Windows, ~/Library/Application
// Support/blip2chat/lib on macOS, $XDG_DATA_HOME/blip2chat/lib (by default
// ~/.local/share/blip2chat/lib) elsewhere; "" when there is no home folder.
func UserDataDir() string { return userDataDir(realEnv()) }

func userDataDir(env sysEnv) string {
	p := pathOS(env.goos)
	switch env.goos {
	case "windows":
		if x := env.getenv("LOCALAPPDATA"); x != "" && p.isAbs(x) {
			return p.join(x, "blip2chat", "lib")
		}
	case "darwin":
	default:
		if x := env.getenv("XDG_DATA_HOME"); x != "" && p.isAbs(x) {
			return p.join(x, "blip2chat", "lib")
		}
	}
	home, err := env.homeDir()
	if err != nil || home == "" {
		return ""
	}
	switch env.goos {
	case "windows":
		return p.join(home, "AppData", "Local", "blip2chat", "lib")
	case "darwin":
		return p.join(home, "Library", "Application Support", "blip2chat", "lib")
	}
	return p.join(home, ".local", "share", "blip2chat", "lib")
}

// otherVersionHint names another llama library in dir, which usually means a
// copy of a different release or a build for another system.
func otherVersionHint(env sysEnv, dir, want string) string {
	names, err := env.readDir(dir)
	if err != nil {
		return ""
	}
	for _, n := range names {
		lower := strings.ToLower(n)
		isLlama := (strings.HasPrefix(lower, "libllama") || strings.HasPrefix(lower, "llama")) &&
			!strings.Contains(lower, "llama-") && !strings.HasSuffix(lower, ".lib")
		isLib := strings.Contains(lower, ".so") || strings.HasSuffix(lower, ".dylib") || strings.HasSuffix(lower, ".dll")
		if n != want && isLlama && isLib {
			return "; it holds " + n + ", another version or another system's build?"
		}
	}
	return ""
}
