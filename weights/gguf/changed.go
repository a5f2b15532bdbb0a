package gguf

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// ErrChanged is what errors.Is finds in the error of a model file that
// changed on disk while it was mapped (truncated, or rewritten in place):
// its mapping then reads other bytes, or none (a read past the new end is a
// memory fault, SIGBUS).
var ErrChanged = errors.New("the model file changed on disk; reload the model")

// changedError names the file and what changed.
type changedError struct{ name, what string }

func (e *changedError) Error() string {
	return fmt.Sprintf("%s changed on disk since it was loaded (%s); reload the model", e.name, e.what)
}

func (e *changedError) Unwrap() error { return ErrChanged }

// Unchanged reports, with an error wrapping ErrChanged, whether the file
// changed on disk since Open mapped it: another size or modification
// time. Callers check before each use of the mapping (an answer, an image),
// and the loaders of blip2chat's engines also Guard their reads; a file
// replaced by a rename is another file, which leaves this one's mapping
// intact. Parsed (unmapped) files, and a nil File, never change.
func (f *File) Unchanged() error {
	if f == nil || f.fd == nil {
		return nil
	}
	size, mtime, err := fileState(f.fd)
	switch {
	case err != nil:
		return &changedError{f.name, "it cannot be checked: " + err.Error()}
	case size != f.opened.Size():
		return &changedError{f.name, fmt.Sprintf("now %d bytes, was %d", size, f.opened.Size())}
	case mtime != f.opened.ModTime().UnixNano():
		return &changedError{f.name, "modified in place"}
	}
	return nil
}

// PanicOnFault makes a memory fault in the calling goroutine a panic,
// which Guard recovers, and returns the previous setting for Guard to
// restore. See Guard.
func PanicOnFault() bool { return debug.SetPanicOnFault(true) }

// Guard turns a memory fault while reading the mapping (the file was
// truncated under it: SIGBUS, otherwise fatal) into an error in *err
// wrapping ErrChanged, for the calling goroutine and the kernel threads,
// which pass their faults on (engine/kernels.Pool). Defer it, with the
// setting PanicOnFault returns, in a function with a named error result:
//
//	defer f.Guard(&err, gguf.PanicOnFault())
//
// (a deferred method call allocates nothing, unlike a returned closure).
// Other panics go on.
func (f *File) Guard(err *error, restore bool) {
	debug.SetPanicOnFault(restore)
	r := recover()
	if r == nil {
		return
	}
	if _, fault := r.(interface{ Addr() uintptr }); !fault {
		panic(r)
	}
	if e := f.Unchanged(); e != nil {
		*err = e
		return
	}
	name := "the model file"
	if f != nil {
		name = f.name
	}
	*err = &changedError{name, "a read of its mapping faulted"}
}
