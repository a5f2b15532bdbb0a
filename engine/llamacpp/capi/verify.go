package capi

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/blip2chat/blip2chat/engine/llamacpp/internal/libfiles"
)

// Check is what verifying a library folder found, for `blip2chat doctor`.
type Check struct {
	Stamped bool   // the folder has the fetch script's stamp (false: a library built or copied by hand, not checked)
	Spec    string // the npm package the stamp names
	Variant string // libfiles.CPU, CUDA, Vulkan or Metal ("" when unknown)
	Files   int    // files checked (size and sha256)
	Hashed  int    // of which hashed now (the others matched the checksum cache)
	Took    time.Duration
}

// verify checks the library folder against the stamp the fetch script wrote
// when it unpacked it, before anything in it is loaded: a truncated library
// makes the loader fault (SIGBUS) inside dlopen, beyond any error handling.
// Every listed file must be a regular file of the recorded size (always
// checked) and sha256 (hashed once per file and process, and across
// processes remembered in the user cache folder by path, size and
// modification time), and the folder must hold no backend module the stamp
// does not list (ggml would load it unchecked). A folder without a stamp
// holds a library built or copied by hand, which is used as it is.
func verify(dir, goos, goarch string) (Check, error) {
	start := time.Now()
	fix := fmt.Sprintf("reinstall it with 'make lib' (or scripts/fetch-llama-lib.sh %s)", dir)
	st, err := libfiles.ReadStamp(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Check{}, nil
	case errors.Is(err, libfiles.ErrOldStamp):
		return Check{}, fmt.Errorf("the llama.cpp library in %s cannot be checked: %v; %s", dir, libfiles.ErrOldStamp, fix)
	case err != nil:
		return Check{}, fmt.Errorf("the llama.cpp library in %s cannot be checked: %v; %s", dir, oneLine(err), fix)
	}
	c := Check{Stamped: true, Spec: st.Spec}
	if pkg, ok := st.Package(); ok {
		c.Variant = pkg.Variant
		if pkg.GOOS != goos || pkg.GOARCH != goarch {
			return c, fmt.Errorf("%s holds the llama.cpp library for %s (%s), and this blip2chat runs on %s/%s; run 'make lib' for this system's build",
				dir, pkg.Platform, st.Spec, goos, goarch)
		}
		if !st.Has(pkg.Files().Llama) {
			return c, fmt.Errorf("the stamp in %s does not list %s; %s", dir, pkg.Files().Llama, fix)
		}
	}

	// Sizes first: cheap, and they catch the usual damage (a cut copy).
	infos := make([]os.FileInfo, len(st.Files))
	for i, f := range st.Files {
		path := filepath.Join(dir, f.Name)
		fi, err := os.Stat(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return c, fmt.Errorf("llama.cpp library file %s is missing; %s", path, fix)
		case err != nil:
			return c, fmt.Errorf("llama.cpp library file %s: %v; %s", path, oneLine(err), fix)
		case !fi.Mode().IsRegular():
			return c, fmt.Errorf("llama.cpp library file %s is not a regular file; %s", path, fix)
		case fi.Size() != f.Size:
			return c, fmt.Errorf("llama.cpp library file %s is %d bytes, not the %d installed (cut short or replaced); %s",
				path, fi.Size(), f.Size, fix)
		}
		infos[i] = fi
	}
	if names, err := os.ReadDir(dir); err == nil {
		for _, e := range names {
			if libfiles.IsBackendModule(goos, e.Name()) && !st.Has(e.Name()) {
				return c, fmt.Errorf("%s is not part of the installed llama.cpp library (its stamp does not list it) and would be loaded unchecked; remove it, or %s",
					filepath.Join(dir, e.Name()), fix)
			}
		}
	}

	cache := loadSumCache()
	for i, f := range st.Files {
		path := filepath.Join(dir, f.Name)
		key := sumKey{path, infos[i].Size(), infos[i].ModTime().UnixNano()}
		sum, ok := cache.get(key)
		if !ok {
			var err error
			if sum, err = hashFile(path); err != nil {
				return c, fmt.Errorf("llama.cpp library file %s: %v; %s", path, oneLine(err), fix)
			}
			c.Hashed++
		}
		if sum != f.SHA256 {
			return c, fmt.Errorf("llama.cpp library file %s does not match the sha256 recorded when it was installed (damaged or replaced); %s", path, fix)
		}
		cache.put(key, sum)
		c.Files++
	}
	if c.Hashed > 0 {
		cache.save()
	}
	c.Took = time.Since(start)
	return c, nil
}

func hashFile(path string) ([32]byte, error) {
	var sum [32]byte
	f, err := os.Open(path)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// The checksum cache. Hashing the CUDA build's 180 MB takes about a third of
// a second, on every start; a file's path, size and modification time
// standing for its checksum brings that to a few stat calls. It lives in
// memory for the process and in the user cache folder between processes
// (best effort: a cache that cannot be read or written only costs time).
type sumKey struct {
	path  string
	size  int64
	mtime int64
}

type sumCache struct {
	path    string
	entries map[sumKey][32]byte
	dirty   bool
}

var (
	sumMu   sync.Mutex
	procSum = map[sumKey][32]byte{} // this process's checksums
)

// sumCacheFile is the cache file ("" disables it); tests replace it.
var sumCacheFile = func() string {
	if os.Getenv("BLIP2CHAT_NO_SUM_CACHE") != "" {
		return ""
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "blip2chat", "llama-lib-sha256")
}

// maxSumEntries bounds the cache file: a few library folders' worth.
const maxSumEntries = 512

func loadSumCache() *sumCache {
	c := &sumCache{path: sumCacheFile(), entries: map[sumKey][32]byte{}}
	if c.path == "" {
		return c
	}
	f, err := os.Open(c.path)
	if err != nil {
		return c
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return c
	}
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for sc.Scan() && len(c.entries) < maxSumEntries {
		// "SHA256 SIZE MTIME PATH"
		fields := strings.SplitN(sc.Text(), " ", 4)
		if len(fields) != 4 || len(fields[0]) != 64 {
			continue
		}
		var sum [32]byte
		if _, err := hex.Decode(sum[:], []byte(fields[0])); err != nil {
			continue
		}
		size, err1 := strconv.ParseInt(fields[1], 10, 64)
		mtime, err2 := strconv.ParseInt(fields[2], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		c.entries[sumKey{fields[3], size, mtime}] = sum
	}
	return c
}

func (c *sumCache) get(k sumKey) ([32]byte, bool) {
	sumMu.Lock()
	s, ok := procSum[k]
	sumMu.Unlock()
	if ok {
		return s, true
	}
	s, ok = c.entries[k]
	return s, ok
}

func (c *sumCache) put(k sumKey, s [32]byte) {
	sumMu.Lock()
	procSum[k] = s
	sumMu.Unlock()
	if old, ok := c.entries[k]; !ok || old != s {
		// Entries of the same path with another size or time are stale.
		for o := range c.entries {
			if o.path == k.path {
				delete(c.entries, o)
			}
		}
		c.entries[k] = s
		c.dirty = true
	}
}

// save writes the cache next to its final name and renames it in place, so
// a concurrent reader sees the old or the new file, never half of one.
func (c *sumCache) save() {
	if c.path == "" || !c.dirty {
		return
	}
	var b bytes.Buffer
	n := 0
	for k, s := range c.entries {
		if n == maxSumEntries {
			break
		}
		if strings.ContainsAny(k.path, "\n\r") {
			continue
		}
		fmt.Fprintf(&b, "%x %d %d %s\n", s, k.size, k.mtime, k.path)
		n++
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), ".llama-lib-sha256-*")
	if err != nil {
		return
	}
	_, err = tmp.Write(b.Bytes())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil || os.Rename(tmp.Name(), c.path) != nil {
		os.Remove(tmp.Name())
	}
}

// verifyHere is verify for this program's system.
func verifyHere(dir string) (Check, error) { return verify(dir, runtime.GOOS, runtime.GOARCH) }
