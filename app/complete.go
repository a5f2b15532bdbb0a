package app

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Complete returns the completions of the input line: whole new lines,
// sorted. It completes command names, /set keys, /template words and file
// paths after /image and /save. It reads folders: call it off the
// interface's loop.
func Complete(line string) []string {
	if !strings.HasPrefix(line, "/") || strings.Contains(line, "\n") {
		return nil
	}
	name, arg, hasArg := strings.Cut(line, " ")
	if !hasArg {
		var out []string
		for _, c := range Commands {
			if !c.Hidden && strings.HasPrefix(c.Name, strings.ToLower(name)) {
				s := c.Name
				if c.Args != "" {
					s += " "
				}
				out = append(out, s)
			}
		}
		return out
	}
	c, ok := lookupCommand(strings.ToLower(name))
	if !ok {
		return nil
	}
	words := func(ws []string) []string {
		var out []string
		for _, w := range ws {
			if strings.HasPrefix(w, arg) {
				out = append(out, c.Name+" "+w+" ")
			}
		}
		return out
	}
	switch c.Name {
	case "/image", "/save":
		var out []string
		for _, p := range completePath(arg, c.Name == "/image") {
			out = append(out, c.Name+" "+p)
		}
		return out
	case "/set":
		if strings.Contains(arg, " ") {
			return nil
		}
		return words(append(slices.Clone(SettingKeys), gpuLayersKey))
	case "/template":
		return words([]string{"edit", "reset"})
	}
	return nil
}

// imageExts are the file types /image completion offers.
var imageExts = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".gif": true, ".webp": true, ".bmp": true}

// completePath completes a file path: folders (with a slash) and files,
// only images when images is set. "~/" is expanded for the look-up but kept
// in what is returned.
func completePath(p string, images bool) []string {
	dir, base := filepath.Split(p)
	look := dir
	if strings.HasPrefix(look, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			look = filepath.Join(home, look[2:])
		}
	}
	if look == "" {
		look = "."
	}
	ents, err := os.ReadDir(look)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, base) || (strings.HasPrefix(n, ".") && !strings.HasPrefix(base, ".")) {
			continue
		}
		isDir := e.IsDir()
		if e.Type()&os.ModeSymlink != 0 {
			if st, err := os.Stat(filepath.Join(look, n)); err == nil {
				isDir = st.IsDir()
			}
		}
		switch {
		case isDir:
			out = append(out, dir+n+"/")
		case !images || imageExts[strings.ToLower(filepath.Ext(n))]:
			out = append(out, dir+n)
		}
	}
	sort.Strings(out)
	return out
}

// CommonPrefix is the longest prefix all of ss share.
func CommonPrefix(ss []string) string {
	if len(ss) == 0 {
		return ""
	}
	p := ss[0]
	for _, s := range ss[1:] {
		for !strings.HasPrefix(s, p) {
			p = p[:len(p)-1]
		}
	}
	return p
}
