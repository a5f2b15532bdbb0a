package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/blip2chat/blip2chat/internal/safefile"
)

// MaxHeaderSize is the largest JSON header accepted, as in the reference
// implementation (100 MB); real headers are well under 1 MB.
const MaxHeaderSize = 100_000_000

// File is one safetensors file, memory-mapped read-only by Open or wrapping
// the bytes given to Parse.
type File struct {
	name     string
	data     []byte // whole file; nil after Close
	unmap    func([]byte) error
	dataOff  int // start of the data section
	tensors  map[string]Tensor
	names    []string
	metadata map[string]string
}

// Open memory-maps and validates the safetensors file at path. Only the
// header is read; tensor data is paged in when used. Errors start with path.
func Open(path string) (*File, error) {
	data, unmap, err := mapFile(path)
	if err != nil {
		return nil, err
	}
	f, err := parse(path, data)
	if err != nil {
		// Decide before unmapping: the check reads the first bytes.
		if looksLikePickle(data, int64(len(data))) || hasPickleExt(path) {
			err = pickleError(path, "is a PyTorch pickle/zip file, not safetensors")
		}
		if unmap != nil {
			unmap(data)
		}
		return nil, err
	}
	f.unmap = unmap
	if unmap != nil {
		for name, t := range f.tensors {
			t.mapped = true
			f.tensors[name] = t
		}
	}
	return f, nil
}

// Parse validates an in-memory safetensors file. The returned File's tensors
// alias data. Errors start with "safetensors:".
func Parse(data []byte) (*File, error) {
	return parse("safetensors", data)
}

// Names lists the tensor names, sorted.
func (f *File) Names() []string { return slices.Clone(f.names) }

// Tensor returns the named tensor; false if absent or the file is closed.
func (f *File) Tensor(name string) (Tensor, bool) {
	if f.data == nil {
		return Tensor{}, false
	}
	t, ok := f.tensors[name]
	if ok {
		t.Shape = slices.Clone(t.Shape)
	}
	return t, ok
}

// Metadata returns a copy of the header's "__metadata__" map (nil if none).
func (f *File) Metadata() map[string]string {
	if f.metadata == nil {
		return nil
	}
	m := make(map[string]string, len(f.metadata))
	for k, v := range f.metadata {
		m[k] = v
	}
	return m
}

// Close unmaps the file. Tensor data obtained earlier must not be used after.
// Closing twice is harmless.
func (f *File) Close() error {
	data := f.data
	f.data = nil
	if data == nil || f.unmap == nil {
		return nil
	}
	if err := f.unmap(data); err != nil {
		return fmt.Errorf("%s: %w", f.name, err)
	}
	return nil
}

// errorf formats "<file>: <reason>" and "<file>: tensor "x": <reason>".
func (p *headerParser) errorf(tensor string, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if tensor != "" {
		return fmt.Errorf("%s: tensor %q: %s", p.name, tensor, msg)
	}
	return fmt.Errorf("%s: %s", p.name, msg)
}

type headerParser struct {
	name string
	dec  *json.Decoder
}

// entry is one tensor as declared in the header.
type entry struct {
	name       string
	dtype      DType
	shape      []int
	begin, end uint64
}

func parse(name string, data []byte) (*File, error) {
	p := &headerParser{name: name}
	if len(data) < 8 {
		return nil, p.errorf("", "file is %d bytes, too short for a safetensors header", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > MaxHeaderSize {
		return nil, p.errorf("", "header length %d exceeds the %d-byte limit (not a safetensors file?)", n, MaxHeaderSize)
	}
	if n > uint64(len(data)-8) {
		return nil, p.errorf("", "header length %d runs past the end of the file (%d bytes; truncated?)", n, len(data))
	}
	header := data[8 : 8+n]
	if !utf8.Valid(header) {
		return nil, p.errorf("", "header is not valid UTF-8")
	}
	p.dec = json.NewDecoder(bytes.NewReader(header))
	p.dec.UseNumber()
	entries, meta, err := p.header()
	if err != nil {
		return nil, err
	}
	f := &File{
		name:     name,
		data:     data,
		dataOff:  8 + int(n),
		tensors:  make(map[string]Tensor, len(entries)),
		names:    make([]string, 0, len(entries)),
		metadata: meta,
	}
	if err := p.validate(entries, uint64(len(data)-f.dataOff)); err != nil {
		return nil, err
	}
	section := data[f.dataOff:]
	for _, e := range entries {
		// Full slice expression: a tensor can never see its neighbour's bytes.
		f.tensors[e.name] = Tensor{Name: e.name, DType: e.dtype, Shape: e.shape, Data: section[e.begin:e.end:e.end]}
		f.names = append(f.names, e.name)
	}
	sort.Strings(f.names)
	return f, nil
}

// token wraps JSON syntax errors (and a header cut short) in a file error.
func (p *headerParser) token(tensor string) (json.Token, error) {
	t, err := p.dec.Token()
	if err == io.EOF {
		return nil, p.errorf(tensor, "header JSON ends early")
	}
	if err != nil {
		return nil, p.errorf(tensor, "invalid header JSON: %v", err)
	}
	return t, nil
}

func (p *headerParser) header() ([]entry, map[string]string, error) {
	t, err := p.dec.Token()
	if err != nil || t != json.Delim('{') {
		return nil, nil, p.errorf("", "header is not a JSON object")
	}
	var (
		entries  []entry
		seen     = map[string]bool{}
		meta     map[string]string
		haveMeta bool
	)
	for p.dec.More() {
		t, err := p.token("")
		if err != nil {
			return nil, nil, err
		}
		key, _ := t.(string)
		if key == "__metadata__" {
			if haveMeta {
				return nil, nil, p.errorf("", "__metadata__ appears twice")
			}
			haveMeta = true
			if meta, err = p.metadata(); err != nil {
				return nil, nil, err
			}
			continue
		}
		if seen[key] {
			return nil, nil, p.errorf(key, "appears twice in the header")
		}
		seen[key] = true
		e, err := p.entry(key)
		if err != nil {
			return nil, nil, err
		}
		entries = append(entries, e)
	}
	if _, err := p.token(""); err != nil { // the closing '}'
		return nil, nil, err
	}
	if t, err := p.dec.Token(); err != io.EOF {
		if err != nil {
			return nil, nil, p.errorf("", "invalid data after the header object: %v", err)
		}
		return nil, nil, p.errorf("", "unexpected %v after the header object", t)
	}
	return entries, meta, nil
}

func (p *headerParser) metadata() (map[string]string, error) {
	const what = "__metadata__ must be an object of strings"
	t, err := p.token("")
	if err != nil {
		return nil, err
	}
	if t == nil { // null, which the reference accepts as "no metadata"
		return nil, nil
	}
	if t != json.Delim('{') {
		return nil, p.errorf("", "%s", what)
	}
	m := map[string]string{}
	for p.dec.More() {
		kt, err := p.token("")
		if err != nil {
			return nil, err
		}
		k := kt.(string)
		vt, err := p.token("")
		if err != nil {
			return nil, err
		}
		v, ok := vt.(string)
		if !ok {
			return nil, p.errorf("", "%s: value of %q is not a string", what, k)
		}
		if _, dup := m[k]; dup {
			return nil, p.errorf("", "__metadata__ key %q appears twice", k)
		}
		m[k] = v
	}
	if _, err := p.token(""); err != nil {
		return nil, err
	}
	return m, nil
}

func (p *headerParser) entry(name string) (entry, error) {
	e := entry{name: name}
	t, err := p.token(name)
	if err != nil {
		return e, err
	}
	if t != json.Delim('{') {
		return e, p.errorf(name, "entry is not a JSON object")
	}
	var haveDType, haveShape, haveOffsets bool
	for p.dec.More() {
		kt, err := p.token(name)
		if err != nil {
			return e, err
		}
		switch key := kt.(string); key {
		case "dtype":
			if haveDType {
				return e, p.errorf(name, "dtype appears twice")
			}
			haveDType = true
			t, err := p.token(name)
			if err != nil {
				return e, err
			}
			s, ok := t.(string)
			if !ok {
				return e, p.errorf(name, "dtype is not a string")
			}
			e.dtype = DType(s)
			if e.dtype.Size() == 0 {
				return e, p.errorf(name, "unknown dtype %q", s)
			}
		case "shape":
			if haveShape {
				return e, p.errorf(name, "shape appears twice")
			}
			haveShape = true
			dims, err := p.uints(name, "shape")
			if err != nil {
				return e, err
			}
			e.shape = make([]int, len(dims))
			for i, d := range dims {
				if d > math.MaxInt {
					return e, p.errorf(name, "shape dimension %d too large", d)
				}
				e.shape[i] = int(d)
			}
		case "data_offsets":
			if haveOffsets {
				return e, p.errorf(name, "data_offsets appears twice")
			}
			haveOffsets = true
			offs, err := p.uints(name, "data_offsets")
			if err != nil {
				return e, err
			}
			if len(offs) != 2 {
				return e, p.errorf(name, "data_offsets has %d numbers, want [begin, end]", len(offs))
			}
			e.begin, e.end = offs[0], offs[1]
		default:
			// Unknown fields are ignored, as by the reference reader.
			var skip json.RawMessage
			if err := p.dec.Decode(&skip); err != nil {
				return e, p.errorf(name, "invalid header JSON: %v", err)
			}
		}
	}
	if _, err := p.token(name); err != nil {
		return e, err
	}
	switch {
	case !haveDType:
		return e, p.errorf(name, "missing dtype")
	case !haveShape:
		return e, p.errorf(name, "missing shape")
	case !haveOffsets:
		return e, p.errorf(name, "missing data_offsets")
	}
	return e, nil
}

// uints reads a JSON array of non-negative integers.
func (p *headerParser) uints(name, field string) ([]uint64, error) {
	t, err := p.token(name)
	if err != nil {
		return nil, err
	}
	if t != json.Delim('[') {
		return nil, p.errorf(name, "%s is not an array", field)
	}
	var out []uint64
	for p.dec.More() {
		t, err := p.token(name)
		if err != nil {
			return nil, err
		}
		num, ok := t.(json.Number)
		if !ok {
			return nil, p.errorf(name, "%s holds %v, not a number", field, t)
		}
		s := string(num)
		if strings.HasPrefix(s, "-") {
			return nil, p.errorf(name, "%s holds negative %s", field, s)
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, p.errorf(name, "%s holds %s, not a non-negative 64-bit integer", field, s)
		}
		out = append(out, v)
	}
	if _, err := p.token(name); err != nil {
		return nil, err
	}
	return out, nil
}

// validate checks every entry against the data section (of size n) and
// against each other. Gaps between tensors are tolerated; overlaps are not.
func (p *headerParser) validate(entries []entry, n uint64) error {
	for _, e := range entries {
		if e.begin > e.end {
			return p.errorf(e.name, "data_offsets [%d, %d] out of order", e.begin, e.end)
		}
		if e.end > n {
			return p.errorf(e.name, "data_offsets [%d, %d] outside the data section of %d bytes (truncated file?)", e.begin, e.end, n)
		}
		count, ok := numElements(e.shape)
		size := uint64(e.dtype.Size())
		if !ok || uint64(count) > math.MaxUint64/size {
			return p.errorf(e.name, "shape %v overflows", e.shape)
		}
		if want := uint64(count) * size; want != e.end-e.begin {
			return p.errorf(e.name, "shape %v of %s needs %d bytes but data_offsets [%d, %d] span %d",
				e.shape, e.dtype, want, e.begin, e.end, e.end-e.begin)
		}
	}
	order := make([]int, 0, len(entries))
	for i, e := range entries {
		if e.end > e.begin { // empty tensors cannot overlap anything
			order = append(order, i)
		}
	}
	sort.Slice(order, func(a, b int) bool { return entries[order[a]].begin < entries[order[b]].begin })
	for k := 1; k < len(order); k++ {
		prev, cur := entries[order[k-1]], entries[order[k]]
		if cur.begin < prev.end {
			return p.errorf(cur.name, "data_offsets [%d, %d] overlap tensor %q at [%d, %d]",
				cur.begin, cur.end, prev.name, prev.begin, prev.end)
		}
	}
	return nil
}

// readFile is the fallback when mapping is impossible (empty files, or
// platforms without mmap).
func readFile(path string) ([]byte, error) {
	return safefile.ReadFile(path, 0)
}
