package gguf

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Writer builds a GGUF v3 file: metadata and tensor descriptions are
// collected first, then WriteTo emits the header and streams each tensor's
// data, in AddTensor order, from a callback.
//
// Invalid input to Add, SetAlignment or AddTensor is remembered and
// reported by WriteTo (AddTensor also returns it), so a sequence of Add
// calls needs no error checks.
type Writer struct {
	kv      []encodedKV
	kvIndex map[string]int
	tensors []TensorInfo
	names   map[string]bool
	align   int
	err     error
}

type encodedKV struct {
	key string
	enc []byte // type tag and value
}

// NewWriter returns an empty Writer with the default alignment.
func NewWriter() *Writer {
	return &Writer{kvIndex: map[string]int{}, names: map[string]bool{}, align: DefaultAlignment}
}

func (w *Writer) setErr(err error) {
	if w.err == nil {
		w.err = err
	}
}

// SetAlignment sets the data alignment, which must be a power of two, by
// storing it as the uint32 key general.alignment.
func (w *Writer) SetAlignment(n int) {
	if n <= 0 || n&(n-1) != 0 || n > 1<<31 {
		w.setErr(fmt.Errorf("gguf: alignment %d is not a power of two", n))
		return
	}
	w.Add(AlignmentKey, uint32(n))
}

// Add sets metadata key to value. The GGUF type is exactly the Go type's:
// uint8..uint64, int8..int64, float32, float64, bool, string, a slice of
// one of these (an ARRAY of that type), or []any whose elements are such
// slices (an ARRAY of ARRAYs). Other types, such as int, are an error. A
// later Add of the same key replaces the value but keeps the key's
// position. The value is encoded immediately, so later changes to a slice
// do not affect the file.
func (w *Writer) Add(key string, value any) {
	if key == "" {
		w.setErr(errors.New("gguf: empty metadata key"))
		return
	}
	enc, err := appendValue(nil, value, 0)
	if err != nil {
		w.setErr(fmt.Errorf("gguf: key %q: %v", key, err))
		return
	}
	if key == AlignmentKey {
		a, ok := value.(uint32)
		if !ok || a == 0 || a&(a-1) != 0 {
			w.setErr(fmt.Errorf("gguf: key %q must be a uint32 power of two, got %T %v", key, value, value))
			return
		}
		w.align = int(a)
	}
	if i, ok := w.kvIndex[key]; ok {
		w.kv[i].enc = enc
		return
	}
	w.kvIndex[key] = len(w.kv)
	w.kv = append(w.kv, encodedKV{key, enc})
}

// AddTensor appends a tensor description. dims are in ggml order (dims[0]
// is the row length, which must be a multiple of the type's block size).
// Names must be unique and at most 63 bytes, the most ggml can load.
func (w *Writer) AddTensor(name string, typ Type, dims []uint64) error {
	err := w.addTensor(name, typ, dims)
	if err != nil {
		w.setErr(err)
	}
	return err
}

func (w *Writer) addTensor(name string, typ Type, dims []uint64) error {
	switch {
	case name == "":
		return errors.New("gguf: empty tensor name")
	case len(name) >= maxNameLen:
		return fmt.Errorf("gguf: tensor %q: name is %d bytes, ggml allows at most %d", name, len(name), maxNameLen-1)
	case w.names[name]:
		return fmt.Errorf("gguf: tensor %q added twice", name)
	}
	if _, err := checkShape(dims, typ); err != nil {
		return fmt.Errorf("gguf: tensor %q: %v", name, err)
	}
	w.names[name] = true
	w.tensors = append(w.tensors, TensorInfo{Name: name, Dims: append([]uint64{}, dims...), Type: typ})
	return nil
}

// Tensors returns the tensor descriptions with the offsets WriteTo will use.
func (w *Writer) Tensors() []TensorInfo {
	out := make([]TensorInfo, len(w.tensors))
	var off uint64
	a := uint64(w.align)
	for i, t := range w.tensors {
		t.Dims = append([]uint64{}, t.Dims...)
		t.Offset = off
		out[i] = t
		off += (t.Size() + a - 1) / a * a
	}
	return out
}

// WriteTo writes the file to out: the header, then for each tensor in order
// the bytes that data writes to its io.Writer, each padded with zeros to the
// alignment. data must write exactly info.Size() bytes; it may write in any
// number of pieces, so a tensor never needs to be held in memory at once.
// data may be nil when there are no tensors.
func (w *Writer) WriteTo(out io.Writer, data func(i int, info TensorInfo, out io.Writer) error) error {
	if w.err != nil {
		return w.err
	}
	if len(w.tensors) > 0 && data == nil {
		return errors.New("gguf: no data callback for the tensors")
	}
	infos := w.Tensors()
	bw := &countWriter{w: bufio.NewWriterSize(out, 256<<10)}

	// Header: the whole metadata and tensor table is small, build it in memory.
	h := []byte(magic)
	h = le.AppendUint32(h, Version)
	h = le.AppendUint64(h, uint64(len(infos)))
	h = le.AppendUint64(h, uint64(len(w.kv)))
	for _, kv := range w.kv {
		h = le.AppendUint64(h, uint64(len(kv.key)))
		h = append(h, kv.key...)
		h = append(h, kv.enc...)
	}
	for _, t := range infos {
		h = le.AppendUint64(h, uint64(len(t.Name)))
		h = append(h, t.Name...)
		h = le.AppendUint32(h, uint32(len(t.Dims)))
		for _, d := range t.Dims {
			h = le.AppendUint64(h, d)
		}
		h = le.AppendUint32(h, uint32(t.Type))
		h = le.AppendUint64(h, t.Offset)
	}
	if _, err := bw.Write(h); err != nil {
		return err
	}
	if len(infos) > 0 {
		if err := bw.pad(w.align); err != nil {
			return err
		}
	}
	for i, t := range infos {
		tw := &tensorWriter{w: bw, name: t.Name, left: t.Size()}
		if err := data(i, t, tw); err != nil {
			return fmt.Errorf("gguf: tensor %q: %w", t.Name, err)
		}
		if tw.err != nil {
			return tw.err
		}
		if tw.left != 0 {
			return fmt.Errorf("gguf: tensor %q: data wrote %d bytes, want %d", t.Name, t.Size()-tw.left, t.Size())
		}
		if err := bw.pad(w.align); err != nil {
			return err
		}
	}
	return bw.w.Flush()
}

// countWriter tracks the file offset for padding.
type countWriter struct {
	w *bufio.Writer
	n uint64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += uint64(n)
	return n, err
}

var zeros [256]byte

func (c *countWriter) pad(align int) error {
	a := uint64(align)
	for k := (a - c.n%a) % a; k > 0; {
		m := min(k, uint64(len(zeros)))
		if _, err := c.Write(zeros[:m]); err != nil {
			return err
		}
		k -= m
	}
	return nil
}

// tensorWriter refuses bytes beyond the tensor's size, so a callback that
// writes too much fails at once instead of corrupting the layout.
type tensorWriter struct {
	w    *countWriter
	name string
	left uint64
	err  error
}

func (t *tensorWriter) Write(p []byte) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	if uint64(len(p)) > t.left {
		t.err = fmt.Errorf("gguf: tensor %q: data wrote more than its %d remaining bytes", t.name, t.left)
		return 0, t.err
	}
	n, err := t.w.Write(p)
	t.left -= uint64(n)
	if err != nil {
		t.err = err
	}
	return n, err
}

// WriteFile writes w to path atomically: to a temporary file in the same
// folder, synced to disk, then renamed over path. On any error the
// temporary file is removed and path is left untouched.
func WriteFile(path string, w *Writer, data func(i int, info TensorInfo, out io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = w.WriteTo(f, data); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	// Make the rename itself durable; failure here does not undo the write.
	if dir, derr := os.Open(filepath.Dir(path)); derr == nil {
		dir.Sync()
		dir.Close()
	}
	return nil
}
