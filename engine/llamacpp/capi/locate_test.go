package capi

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/engine/llamacpp/internal/libfiles"
)

// TestLocateOrder runs the search on this machine's file system with the
// Linux and macOS rules (TestLocateRules covers every system's rules).
func TestLocateOrder(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix rules on a Unix file system; TestLocateRules and TestLocateHere cover Windows")
	}
	root := t.TempDir()
	// mk makes a folder, with the library file in it when full.
	mk := func(rel string, full bool) string {
		d := filepath.Join(root, rel)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if full {
			if err := os.WriteFile(filepath.Join(d, libfiles.For("linux").Llama), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	flagDir := mk("flag", true)
	envDir := mk("env", true)
	emptyDir := mk("empty", false)
	otherDir := mk("other", false)
	os.WriteFile(filepath.Join(otherDir, "libllama.v0.3.9.so"), nil, 0o644)

	// An executable reached through a symlink: lib/ is looked for beside the
	// real file.
	realBin := mk("install/bin", false)
	exeLib := mk("install/bin/lib", true)
	os.WriteFile(filepath.Join(realBin, "blip2chat"), nil, 0o755)
	linkDir := mk("links", false)
	if err := os.Symlink(filepath.Join(realBin, "blip2chat"), filepath.Join(linkDir, "blip2chat")); err != nil {
		t.Fatal(err)
	}
	bareBin := mk("bare/bin", false) // an executable with no lib/ beside it

	xdg := mk("xdg", false)
	xdgLib := mk("xdg/blip2chat/lib", true)
	home := mk("home", false)
	homeLib := mk("home/.local/share/blip2chat/lib", true)
	macHome := mk("machome", false)
	macLib := mk("machome/Library/Application Support/blip2chat/lib", true)
	emptyHome := mk("emptyhome", false)

	for _, tc := range []struct {
		name    string
		flag    string
		goos    string
		env     map[string]string
		exe     string
		home    string
		wantDir string
		wantSrc string
		tried   []string
		wantErr string
	}{
		{name: "flag wins", flag: flagDir, env: map[string]string{EnvLib: envDir}, exe: filepath.Join(linkDir, "blip2chat"), home: home,
			wantDir: flagDir, wantSrc: SourceFlag},
		{name: "flag without library is an error", flag: emptyDir, env: map[string]string{EnvLib: envDir}, home: home,
			wantErr: "no llama.cpp library in " + emptyDir + " (expected libllama.v0.4.0.so); run 'make lib' or scripts/fetch-llama-lib.sh, or drop --llama-lib"},
		{name: "flag with another version", flag: otherDir, home: home,
			wantErr: "(expected libllama.v0.4.0.so; it holds libllama.v0.3.9.so, another version or another system's build?)"},
		{name: "env", env: map[string]string{EnvLib: envDir}, exe: filepath.Join(linkDir, "blip2chat"), home: home,
			wantDir: envDir, wantSrc: SourceEnv},
		{name: "env without library is an error", env: map[string]string{EnvLib: emptyDir}, home: home,
			wantErr: "or unset " + EnvLib},
		{name: "beside the executable, through a symlink", exe: filepath.Join(linkDir, "blip2chat"), home: home,
			wantDir: exeLib, wantSrc: SourceExecutable},
		{name: "XDG_DATA_HOME", exe: filepath.Join(bareBin, "blip2chat"), env: map[string]string{"XDG_DATA_HOME": xdg}, home: home,
			wantDir: xdgLib, wantSrc: SourceUserData, tried: []string{filepath.Join(bareBin, "lib")}},
		{name: "relative XDG_DATA_HOME is ignored", exe: filepath.Join(bareBin, "blip2chat"), env: map[string]string{"XDG_DATA_HOME": "rel"}, home: home,
			wantDir: homeLib, wantSrc: SourceUserData, tried: []string{filepath.Join(bareBin, "lib")}},
		{name: "~/.local/share", exe: filepath.Join(bareBin, "blip2chat"), home: home,
			wantDir: homeLib, wantSrc: SourceUserData, tried: []string{filepath.Join(bareBin, "lib")}},
		{name: "macOS Application Support", goos: "darwin", exe: filepath.Join(bareBin, "blip2chat"), home: macHome,
			wantDir: macLib, wantSrc: SourceUserData, tried: []string{filepath.Join(bareBin, "lib")}},
		{name: "system loader path last", exe: filepath.Join(bareBin, "blip2chat"), home: emptyHome,
			wantDir: "", wantSrc: SourceSystem,
			tried: []string{filepath.Join(bareBin, "lib"), filepath.Join(emptyHome, ".local/share/blip2chat/lib")}},
		{name: "no executable path, no home", wantDir: "", wantSrc: SourceSystem},
	} {
		t.Run(tc.name, func(t *testing.T) {
			goos := tc.goos
			if goos == "" {
				goos = "linux"
			}
			if goos == "darwin" {
				// The mac file name differs; give that folder the mac library.
				os.WriteFile(filepath.Join(macLib, libfiles.For("darwin").Llama), nil, 0o644)
			}
			env := realEnv()
			env.goos = goos
			env.getenv = func(k string) string { return tc.env[k] }
			env.executable = func() (string, error) {
				if tc.exe == "" {
					return "", errors.New("unknown")
				}
				return tc.exe, nil
			}
			env.homeDir = func() (string, error) {
				if tc.home == "" {
					return "", errors.New("no home")
				}
				return tc.home, nil
			}
			loc, err := locate(tc.flag, env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error is not one line: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if loc.Dir != tc.wantDir || loc.Source != tc.wantSrc {
				t.Errorf("got %q (%s), want %q (%s)", loc.Dir, loc.Source, tc.wantDir, tc.wantSrc)
			}
			if !reflect.DeepEqual(loc.Tried, tc.tried) {
				t.Errorf("tried %q, want %q", loc.Tried, tc.tried)
			}
		})
	}
}

func TestCheckVersion(t *testing.T) {
	for _, tc := range []struct {
		v    string
		ok   bool
		text string
	}{
		{"0.4.0", true, ""},
		{"0.4.0-dev", true, ""},
		{"0.4.1", false, "0.4.1"},
		{"0.3.0-dev", false, "0.3.0-dev"},
		{"0.4", false, "0.4"},
		{"", false, "unknown"},
	} {
		err := checkVersion(tc.v)
		if (err == nil) != tc.ok {
			t.Errorf("checkVersion(%q) = %v, want ok=%v", tc.v, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), tc.text) {
			t.Errorf("checkVersion(%q) = %q, want it to name %q", tc.v, err, tc.text)
		}
	}
}

func TestPlainName(t *testing.T) {
	for in, want := range map[string]string{
		"libllama.v0.4.0.so":          "libllama.so",
		"libllama.metal.v0.4.0.dylib": "libllama.dylib",
	} {
		if got := plainName(in); got != want {
			t.Errorf("plainName(%q) = %q, want %q", in, got, want)
		}
	}
}
