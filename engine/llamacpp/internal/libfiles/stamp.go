package libfiles

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// StampName is the file scripts/fetch-llama-lib.sh writes into the library
// folder it fills. Its format:
//
//	@node-llama-cpp/linux-x64@3.21.1        the npm spec
//	sha512-...                              the tarball's pinned integrity
//	919744 5f3c...e1 libggml-base.so        size, sha256 (hex) and name of
//	...                                     every unpacked file, one a line
const StampName = ".blip2chat-llama-lib"

// maxStamp bounds the stamp file read: a few dozen lines.
const maxStamp = 64 << 10

// Stamp is what the fetch script recorded when it unpacked the library.
type Stamp struct {
	Spec      string // npm spec of the package
	Integrity string
	Files     []StampFile
}

// StampFile is one unpacked file.
type StampFile struct {
	Name   string
	Size   int64
	SHA256 [32]byte
}

// ErrOldStamp marks a stamp written before the script recorded sizes and
// checksums.
var ErrOldStamp = errors.New("the stamp lists no sizes and checksums (written by an older scripts/fetch-llama-lib.sh)")

// ReadStamp reads dir's stamp; an error wrapping fs.ErrNotExist means there
// is none (a library not installed by the script).
func ReadStamp(dir string) (*Stamp, error) {
	path := filepath.Join(dir, StampName)
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() || st.Size() > maxStamp {
		return nil, fmt.Errorf("%s: not a stamp file (%d bytes)", path, st.Size())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxStamp))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, err := ParseStamp(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseStamp parses a stamp file's bytes.
func ParseStamp(data []byte) (*Stamp, error) {
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) < 3 {
		return nil, errors.New("stamp too short: want the package, its integrity and the files")
	}
	s := &Stamp{Spec: strings.TrimSpace(lines[0]), Integrity: strings.TrimSpace(lines[1])}
	if !strings.HasPrefix(s.Spec, "@node-llama-cpp/") {
		return nil, fmt.Errorf("line 1: %q is not an @node-llama-cpp package", s.Spec)
	}
	if !strings.HasPrefix(s.Integrity, "sha512-") {
		return nil, fmt.Errorf("line 2: %q is not an npm integrity", s.Integrity)
	}
	seen := map[string]bool{}
	for i, line := range lines[2:] {
		line = strings.TrimSuffix(line, "\r")
		fields := strings.SplitN(line, " ", 3)
		if len(fields) == 1 && validName(fields[0]) {
			return nil, ErrOldStamp
		}
		if len(fields) != 3 {
			return nil, fmt.Errorf("line %d: want SIZE SHA256 NAME, got %q", i+3, line)
		}
		size, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || size < 0 {
			return nil, fmt.Errorf("line %d: bad size %q", i+3, fields[0])
		}
		var f StampFile
		if len(fields[1]) != 64 {
			return nil, fmt.Errorf("line %d: bad sha256 %q", i+3, fields[1])
		}
		if _, err := hex.Decode(f.SHA256[:], []byte(fields[1])); err != nil {
			return nil, fmt.Errorf("line %d: bad sha256 %q", i+3, fields[1])
		}
		if !validName(fields[2]) {
			return nil, fmt.Errorf("line %d: bad file name %q", i+3, fields[2])
		}
		if seen[fields[2]] {
			return nil, fmt.Errorf("line %d: %s listed twice", i+3, fields[2])
		}
		seen[fields[2]] = true
		f.Name, f.Size = fields[2], size
		s.Files = append(s.Files, f)
	}
	return s, nil
}

// validName accepts a plain file name: no folder part, nothing a terminal or
// a path would interpret.
func validName(n string) bool {
	if n == "" || n == "." || n == ".." || len(n) > 255 {
		return false
	}
	for _, c := range []byte(n) {
		if c < 0x20 || c == 0x7f || c == '/' || c == '\\' || c == ':' || c == ' ' {
			return false
		}
	}
	return true
}

// Format is the inverse of ParseStamp (the fetch script writes the same
// bytes; tests use it to make stamps).
func (s *Stamp) Format() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n%s\n", s.Spec, s.Integrity)
	for _, f := range s.Files {
		fmt.Fprintf(&b, "%d %x %s\n", f.Size, f.SHA256, f.Name)
	}
	return b.Bytes()
}

// Package is the known package the stamp names (false for another one).
func (s *Stamp) Package() (Package, bool) { return PackageBySpec(s.Spec) }

// Has reports whether the stamp lists name.
func (s *Stamp) Has(name string) bool {
	for _, f := range s.Files {
		if f.Name == name {
			return true
		}
	}
	return false
}
