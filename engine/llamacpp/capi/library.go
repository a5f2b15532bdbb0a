// Package capi binds the prebuilt llama.cpp v0.4.0 shared library (from
// the npm package @node-llama-cpp 3.21.1, see scripts/fetch-llama-lib.sh)
// through purego, without cgo.
//
// Load finds and opens the library once per process; the returned Library
// loads models, which make contexts and samplers. Every input the library
// would abort the process on (batches larger than the context allows, token
// ids out of range, embedding rows of the wrong width, ...) is checked in Go
// first and returned as an error.
package capi

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/blip2chat/blip2chat/engine/llamacpp/internal/libfiles"
)

// Version is the llama.cpp release this package binds to, and Package the npm
// package it comes from.
const (
	Version = libfiles.Release
	Package = "@node-llama-cpp " + libfiles.NPMVersion
)

// Options controls Load.
type Options struct {
	Dir string    // library folder (the --llama-lib flag); "" searches, see Locate
	Log io.Writer // receives llama.cpp's log text; nil discards it
}

// Library is the loaded llama.cpp library. There is at most one per process.
type Library struct {
	req      Location // what Locate found, for later Load calls to compare
	loc      Location // where the library really is
	check    Check    // what verifying the folder found
	version  string   // llama_version()
	fallback string   // why a GPU build runs on the CPU ("" if it has a GPU, or is the CPU build)
	c        api
	log      logSink
}

var (
	loadMu   sync.Mutex
	loadDone bool
	loadLib  *Library
	loadErr  error
)

// Load locates, verifies, opens and initializes llama.cpp. A shared library
// cannot be unloaded, so only the first call that gets as far as opening a
// library does so; later calls return its result (error included), or an
// error if they ask for a different folder. Errors from Locate (a wrong
// --llama-lib folder) and from verify (a damaged library, see verify) happen
// before anything is opened and are not remembered.
func Load(o Options) (*Library, error) {
	loc, err := Locate(o.Dir)
	if err != nil {
		return nil, err
	}
	var check Check
	if loc.Dir != "" {
		if check, err = verifyHere(loc.Dir); err != nil {
			return nil, err
		}
	}
	loadMu.Lock()
	defer loadMu.Unlock()
	if !loadDone {
		loadDone = true
		loadLib, loadErr = open(loc, check, o.Log)
		return loadLib, loadErr
	}
	if loadErr != nil {
		return nil, loadErr
	}
	if !sameDir(loc.Dir, loadLib.req.Dir) {
		return nil, fmt.Errorf("llama.cpp is already loaded from %s; one process cannot also load %s", loadLib.loc, loc)
	}
	if o.Log != nil {
		loadLib.SetLog(o.Log)
	}
	return loadLib, nil
}

func sameDir(a, b string) bool {
	if a == b {
		return true
	}
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// Location reports where the library was found and by which rule.
func (l *Library) Location() Location { return l.loc }

// Version reports llama_version() of the loaded library, e.g. "0.4.0-dev".
func (l *Library) Version() string { return l.version }

// SetLog sends llama.cpp's log text to w from now on (nil discards it).
func (l *Library) SetLog(w io.Writer) { l.log.setWriter(w) }

// open does the one-time work of Load.
func open(loc Location, check Check, logw io.Writer) (*Library, error) {
	files := loc.Files
	l := &Library{req: loc, loc: loc, check: check}
	l.log.setWriter(logw)
	where := loc.Dir
	if where == "" {
		where = "the system loader path"
	}
	fix := "run 'make lib' or scripts/fetch-llama-lib.sh"

	// Symbols are looked up in llama, then ggml, then ggml-base: on Windows
	// a DLL exports only its own functions.
	var handles []uintptr
	if loc.Dir != "" {
		// ggml first so libllama binds to these copies, not to others the
		// loader might find.
		for _, name := range []string{files.Base, files.GGML, files.Llama} {
			h, err := dlopen(filepath.Join(loc.Dir, name))
			if err != nil {
				return nil, fmt.Errorf("cannot load the llama.cpp library in %s: %v; %s", loc.Dir, oneLine(err), fix)
			}
			handles = append([]uintptr{h}, handles...)
		}
	} else {
		var firstErr error
		for _, name := range []string{files.Llama, plainName(files.Llama)} {
			h, err := dlopen(name)
			if err == nil {
				handles = []uintptr{h}
				// The backends (libggml-cpu-*) sit beside the library;
				// ggml only looks beside the executable by itself.
				if d := loadedDir(h, name); d != "" {
					l.loc.Dir, where = d, d+" (system loader path)"
				}
				break
			}
			if firstErr == nil {
				firstErr = err
			}
		}
		if handles == nil {
			tried := strings.Join(loc.Tried, ", ")
			if tried == "" {
				tried = "nowhere else"
			}
			return nil, fmt.Errorf("no llama.cpp library found (looked in %s, then the system loader path: %s); %s, or point --llama-lib or $%s at its folder",
				tried, oneLine(firstErr), fix, EnvLib)
		}
	}

	// The version comes first, so a library of another release is reported
	// as such rather than as a missing symbol.
	var version func() string
	if sym, err := lookup(handles, "llama_version"); err == nil {
		purego.RegisterFunc(&version, sym)
		l.version = version()
	}
	if err := checkVersion(l.version); err != nil {
		return nil, fmt.Errorf("llama.cpp library at %s is version %s; blip2chat needs v%s (from %s): run 'make lib'", where, err, Version, Package)
	}
	if err := bind(&l.c, handles); err != nil {
		return nil, fmt.Errorf("llama.cpp library at %s: %v; it is not the v%s build from %s: run 'make lib'", where, err, Version, Package)
	}

	// Logging is routed before anything else runs, so even the backend
	// loader's messages go to the log rather than to stderr.
	activeSink.Store(&l.log)
	l.c.llama_log_set(logCallback(), 0)
	if l.loc.Dir != "" {
		l.c.ggml_backend_load_all_from_path(l.loc.Dir)
	} else {
		l.c.ggml_backend_load_all()
	}
	if l.c.ggml_backend_dev_count() == 0 {
		return nil, fmt.Errorf("llama.cpp library at %s loaded no compute backend (its ggml-cpu backend modules are missing?); %s", where, fix)
	}
	l.fallback = l.gpuFallback(files)
	l.c.llama_backend_init()
	return l, nil
}

// checkVersion accepts "0.4.0" and its builds such as "0.4.0-dev"; otherwise
// the error text is the version found.
func checkVersion(v string) error {
	if v == "" {
		return errors.New("unknown (it has no llama_version, so older than v0.4.0)")
	}
	base, _, _ := strings.Cut(v, "-")
	if base != Version {
		return errors.New(v)
	}
	return nil
}

// lookup finds a symbol in the first of handles that has it.
func lookup(handles []uintptr, name string) (uintptr, error) {
	var first error
	for _, h := range handles {
		sym, err := dlsym(h, name)
		if err == nil && sym != 0 {
			return sym, nil
		}
		if first == nil {
			first = err
		}
	}
	if first == nil {
		first = errors.New("not found")
	}
	return 0, first
}

// bind resolves every field of c (named after its C symbol) in handles.
func bind(c *api, handles []uintptr) error {
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := range t.NumField() {
		name := t.Field(i).Name
		sym, err := lookup(handles, name)
		if err != nil {
			if optional[name] {
				continue
			}
			return fmt.Errorf("missing symbol %s", name)
		}
		// The fields are unexported; NewAt gives a settable pointer to each.
		f := v.Field(i)
		purego.RegisterFunc(reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Interface(), sym)
	}
	return nil
}

// plainName is the unversioned file name a system-wide install uses.
func plainName(versioned string) string {
	if i := strings.Index(versioned, "."); i > 0 {
		ext := filepath.Ext(versioned)
		if ext != ".dylib" && ext != ".dll" {
			ext = ".so"
		}
		return versioned[:i] + ext
	}
	return versioned
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
