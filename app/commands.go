package app

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// CommandInfo describes one slash command for /help and completion.
type CommandInfo struct {
	Name    string // with the slash
	Args    string
	Summary string
}

// Commands lists the slash commands in /help order.
var Commands = []CommandInfo{
	{"/image", "PATH", "load another image (the conversation restarts)"},
	{"/caption", "", "describe the image"},
	{"/retry", "", "generate the last answer again"},
	{"/reset", "", "forget the conversation, keep the image"},
	{"/set", "[KEY VALUE]", "list the settings, or change one"},
	{"/template", "[TEXT|edit|reset]", "show, change or edit the prompt template"},
	{"/tokens", "[TEXT]", "how the next prompt tokenizes"},
	{"/save", "[FILE.md]", "save the transcript as Markdown"},
	{"/info", "", "model, library and timings"},
	{"/help", "", "commands and keys"},
	{"/quit", "", "leave (also Ctrl+C)"},
}

// Command is a parsed line of input.
type Command struct {
	Name string // "" for a question; else the command with its slash
	Arg  string // the rest of the line, trimmed
	Text string // the question (Name == "")
}

// ParseLine splits a line of input into a command or a question. A line
// starting with "//" is a question that starts with "/".
func ParseLine(line string) Command {
	t := strings.TrimSpace(line)
	if strings.HasPrefix(t, "//") {
		return Command{Text: t[1:]}
	}
	if !strings.HasPrefix(t, "/") {
		return Command{Text: t}
	}
	name, arg, _ := strings.Cut(t, " ")
	if i := strings.IndexAny(name, "\n\t"); i >= 0 {
		name, arg = name[:i], t[i+1:]
	}
	return Command{Name: strings.ToLower(name), Arg: strings.TrimSpace(arg)}
}

// lookupCommand finds a command by name or unique prefix ("/cap").
func lookupCommand(name string) (CommandInfo, bool) {
	var found []CommandInfo
	for _, c := range Commands {
		if c.Name == name {
			return c, true
		}
		if strings.HasPrefix(c.Name, name) {
			found = append(found, c)
		}
	}
	if len(found) == 1 {
		return found[0], true
	}
	return CommandInfo{}, false
}

// Complete returns the completions of the input line: whole new lines,
// sorted. It completes command names, /set keys, /template words and file
// paths after /image and /save.
func Complete(line string) []string {
	if !strings.HasPrefix(line, "/") || strings.Contains(line, "\n") {
		return nil
	}
	name, arg, hasArg := strings.Cut(line, " ")
	if !hasArg {
		var out []string
		for _, c := range Commands {
			if strings.HasPrefix(c.Name, strings.ToLower(name)) {
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
		return words(SettingKeys)
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
