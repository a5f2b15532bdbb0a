package safetensors

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"unicode/utf8"
)

// WriteTensor is one tensor to write: Data holds its little-endian bytes in
// C order, exactly NumElements(Shape) * DType.Size() of them.
type WriteTensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// F32Tensor encodes v as an F32 tensor.
func F32Tensor(name string, shape []int, v []float32) WriteTensor {
	data := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(x))
	}
	return WriteTensor{Name: name, DType: F32, Shape: shape, Data: data}
}

// Write writes a safetensors file byte-identical to the reference writer's:
// tensors ordered by dtype alignment (largest first) then name, header keys
// in that order after "__metadata__" (present only when metadata is not
// empty; its keys sorted), compact JSON padded with spaces to a multiple of 8
// bytes, data offsets contiguous. Everything is validated before the first
// byte is written.
func Write(w io.Writer, tensors []WriteTensor, metadata map[string]string) error {
	header, order, err := buildHeader(tensors, metadata)
	if err != nil {
		return err
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(header)))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	if _, err := w.Write(header); err != nil {
		return err
	}
	for _, i := range order {
		if _, err := w.Write(tensors[i].Data); err != nil {
			return err
		}
	}
	return nil
}

// WriteFile writes the file atomically: to a temporary name in the same
// folder, synced, then renamed over path. On error the temporary file is
// removed and path is untouched.
// Errors name path, not the temporary file.
func WriteFile(path string, tensors []WriteTensor, metadata map[string]string) (err error) {
	if _, _, err := buildHeader(tensors, metadata); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	// Checked first, so that nothing is written only to fail the rename.
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("%s is a folder; give a file name", path)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		if st, serr := os.Stat(dir); serr != nil || !st.IsDir() {
			return fmt.Errorf("%s: folder %s does not exist", path, dir)
		}
		return fmt.Errorf("%s: cannot create a file in %s: %w", path, dir, pathErr(err))
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err := Write(bw, tensors, metadata); err != nil {
		return fmt.Errorf("%s: %w", path, pathErr(err))
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("%s: %w", path, pathErr(err))
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("%s: %w", path, pathErr(err))
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("%s: %w", path, pathErr(err))
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, pathErr(err))
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("%s: %w", path, pathErr(err))
	}
	// Persist the rename itself; best effort, as not every platform can
	// sync a directory.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// buildHeader validates the tensors and returns the padded header and the
// order in which their data follows it.
func buildHeader(tensors []WriteTensor, metadata map[string]string) ([]byte, []int, error) {
	seen := make(map[string]bool, len(tensors))
	for _, t := range tensors {
		switch {
		case t.Name == "__metadata__":
			return nil, nil, fmt.Errorf("tensor name %q is reserved", t.Name)
		case !utf8.ValidString(t.Name):
			return nil, nil, fmt.Errorf("tensor name %q is not valid UTF-8", t.Name)
		case seen[t.Name]:
			return nil, nil, fmt.Errorf("tensor %q appears twice", t.Name)
		}
		seen[t.Name] = true
		size := t.DType.Size()
		if size == 0 {
			return nil, nil, fmt.Errorf("tensor %q: unknown dtype %q", t.Name, t.DType)
		}
		n, ok := numElements(t.Shape)
		if !ok || n > math.MaxInt/size {
			return nil, nil, fmt.Errorf("tensor %q: invalid shape %v", t.Name, t.Shape)
		}
		if n*size != len(t.Data) {
			return nil, nil, fmt.Errorf("tensor %q: shape %v of %s needs %d bytes, got %d", t.Name, t.Shape, t.DType, n*size, len(t.Data))
		}
	}
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, nil, fmt.Errorf("metadata %q is not valid UTF-8", k)
		}
	}

	order := make([]int, len(tensors))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool {
		ta, tb := tensors[order[a]], tensors[order[b]]
		if ra, rb := dtypeRank[ta.DType], dtypeRank[tb.DType]; ra != rb {
			return ra > rb
		}
		return ta.Name < tb.Name
	})

	h := []byte{'{'}
	if len(metadata) > 0 {
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		h = append(h, `"__metadata__":{`...)
		for i, k := range keys {
			if i > 0 {
				h = append(h, ',')
			}
			h = appendJSONString(h, k)
			h = append(h, ':')
			h = appendJSONString(h, metadata[k])
		}
		h = append(h, '}')
		if len(tensors) > 0 {
			h = append(h, ',')
		}
	}
	var off uint64
	for i, idx := range order {
		t := tensors[idx]
		if i > 0 {
			h = append(h, ',')
		}
		h = appendJSONString(h, t.Name)
		h = append(h, `:{"dtype":`...)
		h = appendJSONString(h, string(t.DType))
		h = append(h, `,"shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				h = append(h, ',')
			}
			h = strconv.AppendInt(h, int64(d), 10)
		}
		h = append(h, `],"data_offsets":[`...)
		h = strconv.AppendUint(h, off, 10)
		h = append(h, ',')
		off += uint64(len(t.Data))
		h = strconv.AppendUint(h, off, 10)
		h = append(h, "]}"...)
	}
	h = append(h, '}')
	// Pad with spaces so the data section starts 8-byte aligned.
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	if len(h) > MaxHeaderSize {
		return nil, nil, fmt.Errorf("header of %d bytes exceeds the %d-byte limit", len(h), MaxHeaderSize)
	}
	return h, order, nil
}

// appendJSONString quotes s as serde_json does: only '"', '\\' and control
// characters are escaped; other UTF-8 is written as is.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b = append(b, '\\', '"')
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// pathErr drops the temporary file's name from an *fs.PathError or
// *os.LinkError, keeping the reason ("no space left on device").
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
