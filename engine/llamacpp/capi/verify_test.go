package capi

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/engine/llamacpp/internal/libfiles"
	"github.com/blip2chat/blip2chat/engine/llamacpp/llamatest"
)

// fakeLib writes a library folder of the linux-x64 package with made-up
// contents and a matching stamp, and points the checksum cache at a fresh
// file; it returns the folder.
func fakeLib(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	orig := sumCacheFile
	cache := filepath.Join(t.TempDir(), "sums")
	sumCacheFile = func() string { return cache }
	t.Cleanup(func() { sumCacheFile = orig })
	pkg, _ := libfiles.PackageBySpec("@node-llama-cpp/linux-x64@3.21.1")
	f := pkg.Files()
	st := &libfiles.Stamp{Spec: pkg.Spec(), Integrity: "sha512-xyz"}
	for i, name := range []string{f.Base, f.GGML, f.Llama, "libggml-cpu-x64.so"} {
		data := []byte(strings.Repeat(name, 100+i))
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		st.Files = append(st.Files, libfiles.StampFile{Name: name, Size: int64(len(data)), SHA256: sha256.Sum256(data)})
	}
	if err := os.WriteFile(filepath.Join(dir, libfiles.StampName), st.Format(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func resetProcSums() {
	sumMu.Lock()
	procSum = map[sumKey][32]byte{}
	sumMu.Unlock()
}

func TestVerify(t *testing.T) {
	llama := "libllama.v0.4.0.so"
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		goarch string
		want   string // "" = accepted
	}{
		{name: "intact"},
		{name: "cut short", damage: func(t *testing.T, dir string) {
			os.Truncate(filepath.Join(dir, llama), 100)
		}, want: "llama.cpp library file DIR/libllama.v0.4.0.so is 100 bytes, not the 1836 installed (cut short or replaced); reinstall it with 'make lib' (or scripts/fetch-llama-lib.sh DIR)"},
		{name: "same size, other bytes", damage: func(t *testing.T, dir string) {
			p := filepath.Join(dir, "libggml-base.so")
			data, _ := os.ReadFile(p)
			data[7] ^= 1
			os.WriteFile(p, data, 0o644)
		}, want: "llama.cpp library file DIR/libggml-base.so does not match the sha256 recorded when it was installed (damaged or replaced); reinstall it with 'make lib' (or scripts/fetch-llama-lib.sh DIR)"},
		{name: "missing", damage: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "libggml-cpu-x64.so"))
		}, want: "llama.cpp library file DIR/libggml-cpu-x64.so is missing; reinstall it with 'make lib' (or scripts/fetch-llama-lib.sh DIR)"},
		{name: "a folder in place of a file", damage: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, llama))
			os.Mkdir(filepath.Join(dir, llama), 0o755)
		}, want: "llama.cpp library file DIR/libllama.v0.4.0.so is not a regular file"},
		{name: "a stray backend module", damage: func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "libggml-cpu-evil.so"), []byte("x"), 0o644)
		}, want: "DIR/libggml-cpu-evil.so is not part of the installed llama.cpp library (its stamp does not list it) and would be loaded unchecked"},
		{name: "other files are fine", damage: func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "README"), []byte("x"), 0o644)
		}},
		{name: "old stamp", damage: func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, libfiles.StampName), []byte("@node-llama-cpp/linux-x64@3.21.1\nsha512-x\nlibllama.v0.4.0.so\n"), 0o644)
		}, want: "the llama.cpp library in DIR cannot be checked: the stamp lists no sizes and checksums (written by an older scripts/fetch-llama-lib.sh); reinstall it with 'make lib'"},
		{name: "garbage stamp", damage: func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, libfiles.StampName), []byte("\x00\x01"), 0o644)
		}, want: "the llama.cpp library in DIR cannot be checked: DIR/.blip2chat-llama-lib: stamp too short"},
		{name: "another system's build", goarch: "arm64",
			want: "DIR holds the llama.cpp library for linux-x64 (@node-llama-cpp/linux-x64@3.21.1), and this blip2chat runs on linux/arm64; run 'make lib' for this system's build"},
		{name: "no stamp: built by hand, not checked", damage: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, libfiles.StampName))
			os.Truncate(filepath.Join(dir, llama), 1)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resetProcSums()
			dir := fakeLib(t)
			if tc.damage != nil {
				tc.damage(t, dir)
			}
			goarch := "amd64"
			if tc.goarch != "" {
				goarch = tc.goarch
			}
			c, err := verify(dir, "linux", goarch)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tc.name == "intact" && (!c.Stamped || c.Files != 4 || c.Hashed != 4 || c.Variant != libfiles.CPU) {
					t.Errorf("check %+v, want 4 files hashed, CPU build", c)
				}
				return
			}
			want := strings.ReplaceAll(strings.ReplaceAll(tc.want, "DIR/", dir+string(filepath.Separator)), "DIR", dir)
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("err = %v\nwant %s", err, want)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Errorf("not one line: %q", err)
			}
		})
	}
}

// TestVerifyCache: a file is hashed once per process, and once across
// processes while its path, size and modification time stay; a changed
// file is hashed again.
func TestVerifyCache(t *testing.T) {
	resetProcSums()
	dir := fakeLib(t)
	cacheFile := sumCacheFile()
	run := func(wantHashed int) {
		t.Helper()
		c, err := verify(dir, "linux", "amd64")
		if err != nil {
			t.Fatal(err)
		}
		if c.Hashed != wantHashed {
			t.Errorf("hashed %d files, want %d", c.Hashed, wantHashed)
		}
	}
	run(4)
	run(0) // this process remembers
	resetProcSums()
	run(0) // the cache file remembers
	if data, err := os.ReadFile(cacheFile); err != nil || strings.Count(string(data), "\n") != 4 {
		t.Errorf("cache file: %v\n%s", err, data)
	}

	// A modified file with a new time is hashed again, and refused.
	resetProcSums()
	p := filepath.Join(dir, "libggml-base.so")
	data, _ := os.ReadFile(p)
	data[0] ^= 1
	os.WriteFile(p, data, 0o644)
	later := time.Now().Add(time.Minute)
	os.Chtimes(p, later, later)
	if _, err := verify(dir, "linux", "amd64"); err == nil || !strings.Contains(err.Error(), "does not match the sha256") {
		t.Errorf("modified file: %v", err)
	}

	// A damaged cache file costs only time.
	resetProcSums()
	data[0] ^= 1
	os.WriteFile(p, data, 0o644)
	os.WriteFile(cacheFile, []byte("zz 1 2 /x\n\x00garbage"), 0o644)
	run(4)
}

// TestLoadRefusesDamagedLibrary is C6: a library file cut short made dlopen
// fault (SIGBUS). Load now refuses it with one line naming the file, before
// anything is opened, and the refusal is not remembered.
func TestLoadRefusesDamagedLibrary(t *testing.T) {
	src, err := filepath.Abs(llamatest.LibDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := libfiles.ReadStamp(src); err != nil {
		t.Skipf("%s has no stamp (not made by scripts/fetch-llama-lib.sh): %v", src, err)
	}
	dir := damagedCopy(t, src, 1<<20)
	name := libfiles.For(runtime.GOOS).Llama
	_, err = Load(Options{Dir: dir})
	want := "llama.cpp library file " + filepath.Join(dir, name) + " is 1048576 bytes, not the "
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "'make lib'") {
		t.Fatalf("Load of a cut library: %v\nwant %s...", err, want)
	}
	// The good library still loads in this process.
	if _, err := Load(Options{Dir: src}); err != nil {
		t.Fatal(err)
	}
}

// damagedCopy makes a copy of the library folder src whose llama library is
// cut to n bytes (the other files are symbolic links to src's, copies on
// Windows, where links need privileges).
func damagedCopy(t *testing.T, src string, n int64) string {
	t.Helper()
	dir := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	llama := libfiles.For(runtime.GOOS).Llama
	for _, e := range ents {
		from, to := filepath.Join(src, e.Name()), filepath.Join(dir, e.Name())
		if e.Name() == llama || e.Name() == libfiles.StampName || runtime.GOOS == "windows" || os.Symlink(from, to) != nil {
			data, err := os.ReadFile(from)
			if err != nil {
				t.Fatal(err)
			}
			if e.Name() == llama {
				data = data[:n]
			}
			if err := os.WriteFile(to, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}
