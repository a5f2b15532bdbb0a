// Package gguf reads and writes GGUF files, the model format of ggml and
// llama.cpp: typed key-value metadata followed by tensor descriptions and
// aligned tensor data.
//
// Files are read by memory-mapping them, so opening a multi-gigabyte model
// costs only the parse of its header; tensor bytes are served straight from
// the mapping. Writing streams the tensor data through a callback, so a file
// never has to fit in memory.
//
// The layout follows the GGUF v3 specification (ggml docs/gguf.md) and the
// checks of ggml's gguf.cpp: version 2 files (same layout) are read too.
// All numbers are little-endian.
package gguf

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"slices"

	"github.com/blip2chat/blip2chat/internal/safefile"
)

const (
	magic = "GGUF"
	// Version is the GGUF version the Writer produces.
	Version = 3
	// DefaultAlignment is the data alignment when general.alignment is absent.
	DefaultAlignment = 32
	// AlignmentKey is the metadata key that sets the data alignment (uint32).
	AlignmentKey = "general.alignment"
	// maxNameLen is the spec's limit on tensor names. ggml itself stores
	// names with a NUL in 64 bytes, so the Writer allows only 63.
	maxNameLen = 64
	// maxKeyLen is the GGUF specification's limit on a metadata key.
	maxKeyLen = 1<<16 - 1
)

// KV is one metadata entry. Value holds the Go type matching the GGUF type:
// uint8, int8, uint16, int16, uint32, int32, float32, bool, string, uint64,
// int64, float64; an array is a slice of one of those ([]string, []float32,
// ...) and an array of arrays is []any holding such slices.
type KV struct {
	Key   string
	Value any
}

// File is a parsed GGUF file.
type File struct {
	Version   uint32
	Alignment int          // of the data section and every tensor in it
	KV        []KV         // in file order
	Tensors   []TensorInfo // in file order

	name      string // for errors
	data      []byte // the whole file
	mapped    []byte // non-nil when data is an mmap to release on Close
	fd        *os.File
	opened    os.FileInfo // fd's size and time when mapped (Unchanged)
	dataStart uint64
	kvIndex   map[string]int
	tensorIdx map[string]int
}

// Open memory-maps the GGUF file at path read-only and parses it. The tensor
// bytes returned by Tensor alias the mapping and are valid until Close. The
// file stays open, so that Unchanged can tell whether it changed on disk
// since.
func Open(path string) (f *File, err error) {
	// A FIFO or a device is refused when opened, never waited on.
	fd, err := safefile.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			fd.Close()
		}
	}()
	st, err := fd.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	switch {
	case size == 0:
		return nil, fmt.Errorf("%s: empty file, not GGUF", path)
	case size > math.MaxInt:
		return nil, fmt.Errorf("%s: file of %d bytes is too large to map", path, size)
	}
	data, err := mmap(fd, int(size))
	if err != nil {
		return nil, fmt.Errorf("%s: mmap: %w", path, err)
	}
	f, err = parse(safefile.Name(path), data)
	if err != nil {
		munmap(data)
		return nil, err
	}
	f.mapped, f.fd, f.opened = data, fd, st
	return f, nil
}

// Parse parses a GGUF file held in memory. Tensor bytes alias data.
func Parse(data []byte) (*File, error) {
	return parse("gguf", data)
}

// ParseMetadata returns a File holding kvs and no tensors, as a reader of
// a file written with them sees them: each value encoded and decoded again
// (a float64 written as float32 is rounded, as the file would hold it). A
// converter checks what it is about to write with the same functions a
// loader runs on the file.
func ParseMetadata(kvs []KV) (*File, error) {
	w := NewWriter()
	for _, kv := range kvs {
		w.Add(kv.Key, kv.Value)
	}
	var b bytes.Buffer
	if err := w.WriteTo(&b, nil); err != nil {
		return nil, err
	}
	return parse("metadata", b.Bytes())
}

// Close releases the file's memory mapping. Tensor bytes obtained before
// must not be used afterwards. Close is idempotent.
func (f *File) Close() error {
	m := f.mapped
	f.mapped, f.data = nil, nil
	if f.fd != nil {
		f.fd.Close()
		f.fd = nil
	}
	if m != nil {
		if err := munmap(m); err != nil {
			return fmt.Errorf("%s: munmap: %w", f.name, err)
		}
	}
	return nil
}

// Value returns the value stored under key.
func (f *File) Value(key string) (any, bool) {
	i, ok := f.kvIndex[key]
	if !ok {
		return nil, false
	}
	return f.KV[i].Value, true
}

// String returns a string value.
func (f *File) String(key string) (string, bool) {
	v, _ := f.Value(key)
	s, ok := v.(string)
	return s, ok
}

// Bool returns a bool value.
func (f *File) Bool(key string) (bool, bool) {
	v, _ := f.Value(key)
	b, ok := v.(bool)
	return b, ok
}

// Int returns an integer value of any GGUF integer type, if it fits in int.
func (f *File) Int(key string) (int, bool) {
	v, _ := f.Value(key)
	n, ok := toInt64(v)
	if !ok || n < math.MinInt || n > math.MaxInt {
		return 0, false
	}
	return int(n), true
}

// Uint32 returns an integer value of any GGUF integer type, if it fits in
// uint32.
func (f *File) Uint32(key string) (uint32, bool) {
	v, _ := f.Value(key)
	n, ok := toInt64(v)
	if !ok || n < 0 || n > math.MaxUint32 {
		return 0, false
	}
	return uint32(n), true
}

// Float32 returns a float32 value, or a float64 value rounded to float32.
func (f *File) Float32(key string) (float32, bool) {
	v, _ := f.Value(key)
	switch x := v.(type) {
	case float32:
		return x, true
	case float64:
		return float32(x), true
	}
	return 0, false
}

// Strings returns a copy of a string array.
func (f *File) Strings(key string) ([]string, bool) {
	v, _ := f.Value(key)
	s, ok := v.([]string)
	return slices.Clone(s), ok
}

// Float32s returns a copy of a float32 array.
func (f *File) Float32s(key string) ([]float32, bool) {
	v, _ := f.Value(key)
	s, ok := v.([]float32)
	return slices.Clone(s), ok
}

// Int32s returns an integer array of any GGUF integer type as int32s, if
// every element fits.
func (f *File) Int32s(key string) ([]int32, bool) {
	v, _ := f.Value(key)
	if s, ok := v.([]int32); ok {
		return slices.Clone(s), true
	}
	var out []int32
	ok := true
	each := func(n int64) {
		if n < math.MinInt32 || n > math.MaxInt32 {
			ok = false
		}
		out = append(out, int32(n))
	}
	switch s := v.(type) {
	case []uint8:
		out = make([]int32, 0, len(s))
		for _, e := range s {
			each(int64(e))
		}
	case []int8:
		out = make([]int32, 0, len(s))
		for _, e := range s {
			each(int64(e))
		}
	case []uint16:
		out = make([]int32, 0, len(s))
		for _, e := range s {
			each(int64(e))
		}
	case []int16:
		out = make([]int32, 0, len(s))
		for _, e := range s {
			each(int64(e))
		}
	case []uint32:
		out = make([]int32, 0, len(s))
		for _, e := range s {
			each(int64(e))
		}
	case []int64:
		out = make([]int32, 0, len(s))
		for _, e := range s {
			each(e)
		}
	case []uint64:
		out = make([]int32, 0, len(s))
		for _, e := range s {
			if e > math.MaxInt32 {
				ok = false
			}
			out = append(out, int32(e))
		}
	default:
		return nil, false
	}
	if !ok {
		return nil, false
	}
	return out, true
}

func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case uint8:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case int16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	}
	return 0, false
}

// Tensor returns the named tensor's description and bytes. The bytes alias
// the file (the mapping, for Open) and must not be modified.
func (f *File) Tensor(name string) (TensorInfo, []byte, bool) {
	i, ok := f.tensorIdx[name]
	if !ok || f.data == nil {
		return TensorInfo{}, nil, false
	}
	t := f.Tensors[i]
	start := f.dataStart + t.Offset
	end := start + t.Size()
	return t, f.data[start:end:end], true
}

// Minimum encoded sizes, used to check the header's counts against the file
// size before allocating anything: a KV is a key (8-byte length and at
// least one byte), a 4-byte type and at least a 1-byte value; a tensor info
// is a name (8+1), n_dims (4), type (4) and offset (8).
const (
	minKVBytes     = 8 + 1 + 4 + 1
	minTensorBytes = 8 + 1 + 4 + 4 + 8
)

func parse(name string, data []byte) (*File, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...))
	}
	d := &decoder{b: data}
	if len(data) < 4 {
		return nil, fail("not a GGUF file: only %d bytes", len(data))
	}
	if m := string(data[:4]); m != magic {
		return nil, fail("not a GGUF file: magic %q, want %q", m, magic)
	}
	d.off = 4
	version, err := d.u32("version")
	if err != nil {
		return nil, fail("header: %v", err)
	}
	switch {
	case version == 2 || version == 3:
	case version == 1:
		return nil, fail("GGUF version 1 is not supported (obsolete since 2023); convert the model again with a current llama.cpp")
	case version != 0 && version&0xffff == 0:
		return nil, fail("GGUF version %#x looks byte-swapped: big-endian GGUF files are not supported", version)
	default:
		return nil, fail("unsupported GGUF version %d (want 2 or 3)", version)
	}
	nTensors, err := d.u64("tensor count")
	if err != nil {
		return nil, fail("header: %v", err)
	}
	nKV, err := d.u64("metadata count")
	if err != nil {
		return nil, fail("header: %v", err)
	}
	left := uint64(d.left())
	if nKV > left/minKVBytes || nTensors > left/minTensorBytes || nKV*minKVBytes+nTensors*minTensorBytes > left {
		return nil, fail("header claims %d metadata entries and %d tensors, more than the remaining %d bytes can hold", nKV, nTensors, left)
	}

	f := &File{
		Version:   version,
		Alignment: DefaultAlignment,
		KV:        make([]KV, 0, nKV),
		Tensors:   make([]TensorInfo, 0, nTensors),
		name:      name,
		data:      data,
		kvIndex:   make(map[string]int, nKV),
		tensorIdx: make(map[string]int, nTensors),
	}

	for i := range int(nKV) {
		key, err := d.str(fmt.Sprintf("metadata key %d", i))
		if err != nil {
			return nil, fail("%v", err)
		}
		if key == "" {
			return nil, fail("metadata key %d is empty", i)
		}
		if len(key) > maxKeyLen {
			return nil, fail("metadata key %d is %d bytes long, at most %d allowed (damaged file?)", i, len(key), maxKeyLen)
		}
		if _, dup := f.kvIndex[key]; dup {
			return nil, fail("key %s: appears twice", quoteClipped(key))
		}
		t, err := d.u32("value type")
		if err != nil {
			return nil, fail("key %s: %v", quoteClipped(key), err)
		}
		v, err := d.value(valueType(t), 0)
		if err != nil {
			return nil, fail("key %s: %v", quoteClipped(key), err)
		}
		f.kvIndex[key] = len(f.KV)
		f.KV = append(f.KV, KV{key, v})
	}

	if v, ok := f.Value(AlignmentKey); ok {
		a, ok := v.(uint32)
		if !ok {
			return nil, fail("key %q: must be uint32, is %T", AlignmentKey, v)
		}
		if a == 0 || a&(a-1) != 0 {
			return nil, fail("key %q: alignment %d is not a power of two", AlignmentKey, a)
		}
		f.Alignment = int(a)
	}
	align := uint64(f.Alignment)

	for i := range int(nTensors) {
		tname, err := d.str(fmt.Sprintf("tensor %d name", i))
		if err != nil {
			return nil, fail("%v", err)
		}
		if tname == "" {
			return nil, fail("tensor %d has an empty name", i)
		}
		tfail := func(format string, args ...any) error {
			return fail("tensor %q: %s", tname, fmt.Sprintf(format, args...))
		}
		if len(tname) > maxNameLen {
			return nil, tfail("name is %d bytes, at most %d allowed", len(tname), maxNameLen)
		}
		if _, dup := f.tensorIdx[tname]; dup {
			return nil, tfail("appears twice")
		}
		nDims, err := d.u32("dimension count")
		if err != nil {
			return nil, tfail("%v", err)
		}
		if nDims > maxDims {
			return nil, tfail("%d dimensions, at most %d allowed", nDims, maxDims)
		}
		dims := make([]uint64, nDims)
		for j := range dims {
			if dims[j], err = d.u64("dimension"); err != nil {
				return nil, tfail("%v", err)
			}
		}
		typ, err := d.u32("type")
		if err != nil {
			return nil, tfail("%v", err)
		}
		if _, err := checkShape(dims, Type(typ)); err != nil {
			return nil, tfail("%v", err)
		}
		off, err := d.u64("data offset")
		if err != nil {
			return nil, tfail("%v", err)
		}
		if off%align != 0 {
			return nil, tfail("data offset %d is not a multiple of the alignment %d", off, align)
		}
		f.tensorIdx[tname] = len(f.Tensors)
		f.Tensors = append(f.Tensors, TensorInfo{Name: tname, Dims: dims, Type: Type(typ), Offset: off})
	}

	// The data section starts at the first aligned offset after the tensor
	// infos; every tensor must lie inside the file, and no two may overlap.
	f.dataStart = (uint64(d.off) + align - 1) / align * align
	if nTensors == 0 {
		return f, nil
	}
	size := uint64(len(data))
	if f.dataStart > size {
		return nil, fail("data section would start at offset %d, past the end of the %d-byte file", f.dataStart, size)
	}
	avail := size - f.dataStart
	order := make([]int, len(f.Tensors))
	for i, t := range f.Tensors {
		order[i] = i
		if n := t.Size(); t.Offset > avail || n > avail-t.Offset {
			return nil, fail("tensor %q: %d bytes at data offset %d run past the end of the file (%d data bytes; truncated?)", t.Name, n, t.Offset, avail)
		}
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmpU64(f.Tensors[a].Offset, f.Tensors[b].Offset)
	})
	var end uint64 // furthest end of the tensors so far
	last := -1     // the tensor reaching it
	for _, i := range order {
		t := f.Tensors[i]
		n := t.Size()
		if n == 0 {
			continue
		}
		if t.Offset < end {
			p := f.Tensors[last]
			return nil, fail("tensor %q (data offset %d, %d bytes) overlaps tensor %q at data offset %d", p.Name, p.Offset, p.Size(), t.Name, t.Offset)
		}
		end, last = t.Offset+n, i
	}
	return f, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// quoteClipped quotes a key for an error message, cut to its first 64
// bytes: a damaged file's key may be any bytes, of any length.
func quoteClipped(key string) string {
	const n = 64
	if len(key) <= n {
		return fmt.Sprintf("%q", key)
	}
	return fmt.Sprintf("%q... (%d bytes)", key[:n], len(key))
}
