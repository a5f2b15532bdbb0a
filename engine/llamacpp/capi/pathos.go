package capi

import (
	"path/filepath"
	"runtime"
	"strings"
)

// pathOS is the path syntax of one operating system, so that the library
// search can be tested for every system on any system. On the system the
// program runs on it is path/filepath.
type pathOS string

func (p pathOS) native() bool { return string(p) == runtime.GOOS && !ownRules }

// ownRules makes the native pathOS use the hand-written rules too (tests
// hold them equal to path/filepath).
var ownRules = false

func (p pathOS) windows() bool { return p == "windows" }

func (p pathOS) isSep(c byte) bool { return c == '/' || (p.windows() && c == '\\') }

// join joins path elements like filepath.Join on that system (without
// resolving "..", which the search never produces).
func (p pathOS) join(elem ...string) string {
	if p.native() {
		return filepath.Join(elem...)
	}
	sep := "/"
	if p.windows() {
		sep = `\`
	}
	var parts []string
	for _, e := range elem {
		if e != "" {
			parts = append(parts, e)
		}
	}
	s := strings.Join(parts, sep)
	if p.windows() {
		s = strings.ReplaceAll(s, "/", `\`)
	}
	// Collapse repeated separators, keeping a leading `\\` (a UNC path).
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if i > 0 && p.isSep(s[i]) && p.isSep(s[i-1]) && !(p.windows() && i == 1) {
			continue
		}
		b.WriteByte(s[i])
	}
	out := b.String()
	for len(out) > 1 && p.isSep(out[len(out)-1]) && !(p.windows() && len(out) == 3 && out[1] == ':') {
		out = out[:len(out)-1]
	}
	return out
}

// dir is filepath.Dir on that system.
func (p pathOS) dir(s string) string {
	if p.native() {
		return filepath.Dir(s)
	}
	vol := ""
	if p.windows() {
		s = strings.ReplaceAll(s, "/", `\`)
		vol = volumeName(s)
	}
	rest := s[len(vol):]
	i := len(rest) - 1
	for i >= 0 && !p.isSep(rest[i]) {
		i--
	}
	d := rest[:i+1]
	for len(d) > 1 && p.isSep(d[len(d)-1]) {
		d = d[:len(d)-1]
	}
	if d == "" {
		d = "."
	}
	return vol + d
}

// volumeName is a Windows path's drive ("C:") or UNC share (`\\host\share`).
func volumeName(s string) string {
	if len(s) >= 2 && isLetter(s[0]) && s[1] == ':' {
		return s[:2]
	}
	if len(s) >= 2 && s[0] == '\\' && s[1] == '\\' {
		n := 0
		for i := 2; i < len(s); i++ {
			if s[i] == '\\' {
				if n++; n == 2 {
					return s[:i]
				}
			}
		}
		return s
	}
	return ""
}

// isAbs is filepath.IsAbs on that system: on Windows a drive letter and a
// separator (C:\x), or a UNC path (\\server\share).
func (p pathOS) isAbs(s string) bool {
	if p.native() {
		return filepath.IsAbs(s)
	}
	if !p.windows() {
		return strings.HasPrefix(s, "/")
	}
	if len(s) >= 3 && isLetter(s[0]) && s[1] == ':' && p.isSep(s[2]) {
		return true
	}
	return len(s) >= 2 && p.isSep(s[0]) && p.isSep(s[1])
}

func isLetter(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }

// splitList splits a PATH-style list: ';' on Windows, where an element may
// be quoted, ':' elsewhere. Empty elements are dropped: the loader would
// read them as the working folder, which a library search must not use.
func (p pathOS) splitList(s string) []string {
	var raw []string
	if p.windows() {
		// As filepath.SplitList on Windows: separators inside quotes do
		// not split, and the quotes are removed.
		var b strings.Builder
		quoted := false
		for i := 0; i < len(s); i++ {
			switch c := s[i]; {
			case c == '"':
				quoted = !quoted
			case c == ';' && !quoted:
				raw = append(raw, b.String())
				b.Reset()
			default:
				b.WriteByte(c)
			}
		}
		raw = append(raw, b.String())
	} else {
		raw = strings.Split(s, ":")
	}
	var out []string
	for _, e := range raw {
		if e != "" {
			out = append(out, e)
		}
	}
	return out
}
