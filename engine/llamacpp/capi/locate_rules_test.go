package capi

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"

	"github.com/blip2chat/blip2chat/engine/llamacpp/internal/libfiles"
)

// fakeEnv is a system with the given files (full paths in that system's
// syntax), environment, executable and home folder.
func fakeEnv(goos string, files []string, env map[string]string, exe, home string, links map[string]string) sysEnv {
	p := pathOS(goos)
	set := map[string]bool{}
	for _, f := range files {
		set[f] = true
	}
	return sysEnv{
		goos:   goos,
		getenv: func(k string) string { return env[k] },
		executable: func() (string, error) {
			if exe == "" {
				return "", errors.New("unknown")
			}
			return exe, nil
		},
		homeDir: func() (string, error) {
			if home == "" {
				return "", errors.New("no home")
			}
			return home, nil
		},
		evalSymlinks: func(s string) (string, error) {
			if t, ok := links[s]; ok {
				return t, nil
			}
			return s, nil
		},
		isFile: func(s string) bool { return set[s] },
		readDir: func(d string) ([]string, error) {
			var names []string
			for f := range set {
				if p.dir(f) == d {
					names = append(names, f[len(d)+1:])
				}
			}
			if names == nil {
				return nil, os.ErrNotExist
			}
			return names, nil
		},
	}
}

// TestLocateRules checks each system's search rules on a fake file system,
// so the Windows and macOS rules are tested on Linux too.
func TestLocateRules(t *testing.T) {
	winCPU := libfiles.Names("windows", libfiles.CPU).Llama
	winCUDA := libfiles.Names("windows", libfiles.CUDA).Llama
	for _, tc := range []struct {
		name    string
		goos    string
		flag    string
		files   []string
		env     map[string]string
		exe     string
		home    string
		links   map[string]string
		wantDir string
		wantSrc string
		variant string
		tried   []string
		wantErr string
	}{
		{name: "windows: lib beside the executable", goos: "windows",
			exe:     `C:\Program Files\blip2chat\blip2chat.exe`,
			files:   []string{`C:\Program Files\blip2chat\lib\` + winCPU},
			wantDir: `C:\Program Files\blip2chat\lib`, wantSrc: SourceExecutable, variant: libfiles.CPU},
		{name: "windows: %LOCALAPPDATA%", goos: "windows",
			exe:     `C:\Tools\blip2chat.exe`,
			env:     map[string]string{"LOCALAPPDATA": `C:\Users\me\AppData\Local`, "XDG_DATA_HOME": `C:\xdg`},
			home:    `C:\Users\me`,
			files:   []string{`C:\Users\me\AppData\Local\blip2chat\lib\` + winCUDA, `C:\xdg\blip2chat\lib\` + winCPU},
			wantDir: `C:\Users\me\AppData\Local\blip2chat\lib`, wantSrc: SourceUserData, variant: libfiles.CUDA,
			tried: []string{`C:\Tools\lib`}},
		{name: "windows: UNC %LOCALAPPDATA%", goos: "windows",
			env:     map[string]string{"LOCALAPPDATA": `\\server\home\me`},
			files:   []string{`\\server\home\me\blip2chat\lib\` + winCPU},
			wantDir: `\\server\home\me\blip2chat\lib`, wantSrc: SourceUserData, variant: libfiles.CPU},
		{name: "windows: no %LOCALAPPDATA%, the home folder's AppData", goos: "windows",
			env:     map[string]string{"LOCALAPPDATA": `AppData\Local`}, // relative: ignored
			home:    `C:\Users\me`,
			files:   []string{`C:\Users\me\AppData\Local\blip2chat\lib\` + winCPU},
			wantDir: `C:\Users\me\AppData\Local\blip2chat\lib`, wantSrc: SourceUserData, variant: libfiles.CPU},
		{name: "windows: the executable's own folder", goos: "windows",
			exe:     `D:\apps\blip2chat.exe`,
			home:    `C:\Users\me`,
			files:   []string{`D:\apps\` + winCPU},
			wantDir: `D:\apps`, wantSrc: SourcePath, variant: libfiles.CPU,
			tried: []string{`D:\apps\lib`, `C:\Users\me\AppData\Local\blip2chat\lib`}},
		{name: "windows: %PATH%, quoted, with empty elements", goos: "windows",
			home:    `C:\Users\me`,
			env:     map[string]string{"PATH": `C:\Windows\system32;;"C:\odd;name";C:\later`},
			files:   []string{`C:\odd;name\` + winCUDA, `C:\later\` + winCPU},
			wantDir: `C:\odd;name`, wantSrc: SourcePath, variant: libfiles.CUDA,
			tried: []string{`C:\Users\me\AppData\Local\blip2chat\lib`}},
		{name: "windows: a Linux build is not a Windows library", goos: "windows",
			flag:    `C:\lib`,
			files:   []string{`C:\lib\` + libfiles.Names("linux", libfiles.CPU).Llama},
			wantErr: `no llama.cpp library in C:\lib (expected llama.v0.4.0.dll; it holds libllama.v0.4.0.so, another version or another system's build?); run 'make lib' or scripts/fetch-llama-lib.sh, or drop --llama-lib`},
		{name: "windows: nowhere", goos: "windows",
			exe:     `C:\Tools\blip2chat.exe`,
			home:    `C:\Users\me`,
			env:     map[string]string{"PATH": `C:\Windows`},
			wantErr: `no llama.cpp library found (looked in C:\Tools\lib, C:\Users\me\AppData\Local\blip2chat\lib, the executable's folder and %PATH%); run 'make lib' or scripts/fetch-llama-lib.sh, or point --llama-lib or %BLIP2CHAT_LLAMA_LIB% at its folder`},
		{name: "windows: the variable names a folder", goos: "windows",
			env:     map[string]string{EnvLib: `E:\llama\`},
			files:   []string{`E:\llama\` + winCPU},
			wantDir: `E:\llama`, wantSrc: SourceEnv, variant: libfiles.CPU},
		{name: "macOS: Application Support, XDG ignored", goos: "darwin",
			exe:     "/usr/local/bin/blip2chat",
			links:   map[string]string{"/usr/local/bin/blip2chat": "/opt/blip2chat/bin/blip2chat"},
			env:     map[string]string{"XDG_DATA_HOME": "/xdg"},
			home:    "/Users/me",
			files:   []string{"/Users/me/Library/Application Support/blip2chat/lib/libllama.metal.v0.4.0.dylib", "/xdg/blip2chat/lib/libllama.metal.v0.4.0.dylib"},
			wantDir: "/Users/me/Library/Application Support/blip2chat/lib", wantSrc: SourceUserData, variant: libfiles.Metal,
			tried: []string{"/opt/blip2chat/bin/lib"}},
		{name: "macOS: lib beside the real executable", goos: "darwin",
			exe:     "/usr/local/bin/blip2chat",
			links:   map[string]string{"/usr/local/bin/blip2chat": "/opt/blip2chat/bin/blip2chat"},
			files:   []string{"/opt/blip2chat/bin/lib/libllama.metal.v0.4.0.dylib"},
			wantDir: "/opt/blip2chat/bin/lib", wantSrc: SourceExecutable, variant: libfiles.Metal},
		{name: "macOS: the system loader path last", goos: "darwin", home: "/Users/me",
			wantSrc: SourceSystem, variant: libfiles.Metal,
			tried: []string{"/Users/me/Library/Application Support/blip2chat/lib"}},
		{name: "linux: a CUDA build beside the executable", goos: "linux",
			exe:     "/opt/b2c/blip2chat",
			files:   []string{"/opt/b2c/lib/libllama.cuda.v0.4.0.so"},
			wantDir: "/opt/b2c/lib", wantSrc: SourceExecutable, variant: libfiles.CUDA},
		{name: "linux: XDG_DATA_HOME", goos: "linux",
			env:     map[string]string{"XDG_DATA_HOME": "/data"},
			home:    "/home/me",
			files:   []string{"/data/blip2chat/lib/libllama.vulkan.v0.4.0.so", "/home/me/.local/share/blip2chat/lib/libllama.v0.4.0.so"},
			wantDir: "/data/blip2chat/lib", wantSrc: SourceUserData, variant: libfiles.Vulkan},
		{name: "linux: PATH is not searched", goos: "linux",
			env:     map[string]string{"PATH": "/usr/bin"},
			files:   []string{"/usr/bin/libllama.v0.4.0.so"},
			wantSrc: SourceSystem, variant: libfiles.CPU},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loc, err := locate(tc.flag, fakeEnv(tc.goos, tc.files, tc.env, tc.exe, tc.home, tc.links))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v\nwant %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if loc.Dir != tc.wantDir || loc.Source != tc.wantSrc || loc.Files.Variant != tc.variant {
				t.Errorf("got %q (%s, %s), want %q (%s, %s)", loc.Dir, loc.Source, loc.Files.Variant, tc.wantDir, tc.wantSrc, tc.variant)
			}
			if !reflect.DeepEqual(loc.Tried, tc.tried) {
				t.Errorf("tried %q, want %q", loc.Tried, tc.tried)
			}
		})
	}
}

func TestPathOS(t *testing.T) {
	w, l := pathOS("windows"), pathOS("linux")
	for _, tc := range []struct {
		p    pathOS
		elem []string
		want string
	}{
		{w, []string{`C:\Users\me`, "blip2chat", "lib"}, `C:\Users\me\blip2chat\lib`},
		{w, []string{`C:\Users\me\`, "blip2chat"}, `C:\Users\me\blip2chat`},
		{w, []string{`C:/Users/me`, "lib"}, `C:\Users\me\lib`},
		{w, []string{`\\server\share`, "lib"}, `\\server\share\lib`},
		{w, []string{`C:\`, "lib"}, `C:\lib`},
		{w, []string{`E:\llama\`}, `E:\llama`},
		{l, []string{"/home/me/", "lib"}, "/home/me/lib"},
		{l, []string{"/", "lib"}, "/lib"},
	} {
		if got := tc.p.join(tc.elem...); got != tc.want {
			t.Errorf("%s join(%q) = %q, want %q", tc.p, tc.elem, got, tc.want)
		}
	}
	for in, want := range map[string]string{`C:\a\b.exe`: `C:\a`, `C:\b.exe`: `C:\`, `b.exe`: ".", `\\srv\share\x.exe`: `\\srv\share\`, `C:/a/b`: `C:\a`, `C:b`: `C:.`} {
		if got := w.dir(in); got != want {
			t.Errorf("windows dir(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]bool{`C:\x`: true, `c:/x`: true, `\\srv\share`: true, `C:x`: false, `\x`: false, `x\y`: false, "": false} {
		if got := w.isAbs(in); got != want {
			t.Errorf("windows isAbs(%q) = %v", in, got)
		}
	}
	if got, want := w.splitList(`a;"b;c";;d`), []string{"a", "b;c", "d"}; !reflect.DeepEqual(got, want) {
		t.Errorf("windows splitList = %q, want %q", got, want)
	}
	if got, want := l.splitList("/a::/b"), []string{"/a", "/b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("linux splitList = %q, want %q", got, want)
	}
}

// TestPathOSNative holds the hand-written rules for this system equal to
// path/filepath, which the native pathOS uses.
func TestPathOSNative(t *testing.T) {
	ownRules = true
	defer func() { ownRules = false }()
	p := pathOS(runtime.GOOS)
	cases := []string{"/a/b", "/", "/a/b/", "a/b", "a"}
	if runtime.GOOS == "windows" {
		cases = []string{`C:\a\b`, `C:\`, `\\srv\share\x`, `C:\a\b\`, `a\b`, `C:/a/b`, `C:b`}
	}
	for _, c := range cases {
		if got, want := p.dir(c), filepath.Dir(c); got != want {
			t.Errorf("dir(%q) = %q, filepath says %q", c, got, want)
		}
		if got, want := p.isAbs(c), filepath.IsAbs(c); got != want {
			t.Errorf("isAbs(%q) = %v, filepath says %v", c, got, want)
		}
		if got, want := p.join(c, "lib"), filepath.Join(c, "lib"); got != want {
			t.Errorf("join(%q, lib) = %q, filepath says %q", c, got, want)
		}
	}
	list := "x" + string(os.PathListSeparator) + string(os.PathListSeparator) + "y"
	if got, want := p.splitList(list), []string{"x", "y"}; !reflect.DeepEqual(got, want) {
		t.Errorf("splitList(%q) = %q, want %q", list, got, want)
	}
	if runtime.GOOS == "windows" {
		// filepath.SplitList keeps empty elements; ours drops them.
		if got, want := p.splitList(`a;"b;c"`), filepath.SplitList(`a;"b;c"`); !reflect.DeepEqual(got, want) {
			t.Errorf("splitList with quotes = %q, filepath says %q", got, want)
		}
	}
}
