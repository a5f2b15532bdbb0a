package app

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/blip2chat/blip2chat/internal/safefile"
)

// save writes the transcript as it is now as Markdown: the image, the
// model, the settings and the turns. The write (synced) runs in the
// background, beside any job: /save is read-only. The transcript says when
// it is done. It never writes over what the app reads (the image, the
// model's files, the session file), nor over a link, a folder or a device;
// an existing file is replaced only once the user confirms.
func (a *App) save(arg string) {
	now := a.opts.Now()
	st := a.Snapshot()
	path := expandHome(strings.Trim(arg, `"'`))
	if path == "" {
		name := "blip2chat-" + now.Format("20060102-150405") + ".md"
		if st.SessionID != "" {
			name = "blip2chat-" + st.SessionID + ".md"
		}
		path = filepath.Join(a.opts.SaveDir, name)
	}
	md := []byte(Markdown(st, now))
	a.background(func() {
		t, err := safefile.CheckTarget(path, inputs(st)...)
		if err != nil {
			a.errorf("%v", err)
			return
		}
		write := func() {
			if err := t.Write(md, 0o644); err != nil {
				a.errorf("%v", err)
				return
			}
			abs, _ := filepath.Abs(path)
			a.notef("Saved the transcript to %s", abs)
		}
		if t.Existing == nil {
			write()
			return
		}
		a.askConfirm(fmt.Sprintf("%s exists: replace it with the transcript?", path), write, func() {
			a.notef("Not saved: %s is left as it was.", path)
		})
	})
}

// inputs are the files the app reads, which /save must not replace: the
// image, the session file and the files of the model's folder.
func inputs(st State) []string {
	in := []string{st.ImagePath, st.SessionPath}
	if st.Model.Dir != "" {
		ents, _ := os.ReadDir(st.Model.Dir)
		for _, e := range ents {
			in = append(in, filepath.Join(st.Model.Dir, e.Name()))
		}
	}
	return in
}

// Markdown renders the transcript of st as a Markdown document.
func Markdown(st State, now time.Time) string {
	var b strings.Builder
	b.WriteString("# blip2chat transcript\n\n")
	fmt.Fprintf(&b, "- Saved: %s\n", now.Format("2006-01-02 15:04:05 MST"))
	if st.HasModel {
		fmt.Fprintf(&b, "- Model: %s (%s)", quoteMD(st.Model.Name), codeMD(st.Model.Dir))
		if st.Model.Desc != "" {
			fmt.Fprintf(&b, ", %s", quoteMD(st.Model.Desc))
		}
		b.WriteString("\n")
	}
	if st.Demo {
		fmt.Fprintf(&b, "- **%s**\n", quoteMD(st.DemoLabel))
	}
	if st.ImagePath != "" {
		fmt.Fprintf(&b, "- Image: %s\n", codeMD(st.ImagePath))
	}
	if st.SessionID != "" {
		fmt.Fprintf(&b, "- Session: %s\n", st.SessionID)
	}
	if st.HasModel {
		b.WriteString("\n## Settings\n\n| setting | value |\n| --- | --- |\n")
		for _, k := range SettingKeys {
			v, _ := st.Settings.Get(k)
			fmt.Fprintf(&b, "| %s | `%s` |\n", k, strings.ReplaceAll(v, "|", `\|`))
		}
	}
	b.WriteString("\n## Conversation\n")
	for _, e := range st.Entries {
		switch e.Kind {
		case EntryImage:
			fmt.Fprintf(&b, "\n![%s](%s)\n", altMD(filepath.Base(e.Text)), linkMD(e.Text))
		case EntryQuestion:
			fmt.Fprintf(&b, "\n**You:** %s\n", quoteMD(e.Text))
		case EntryAnswer:
			fmt.Fprintf(&b, "\n**BLIP-2:** %s", quoteMD(e.Text))
			if e.Stop == StopCancelled {
				b.WriteString(" *(stopped)*")
			} else if e.Stop == StopMaxTokens || e.Stop == StopContextFull || e.Stop == StopInterrupted {
				fmt.Fprintf(&b, " *(%s)*", e.Stop)
			}
			b.WriteString("\n")
		case EntryReset:
			b.WriteString("\n---\n*Conversation restarted.*\n")
		}
	}
	return b.String()
}

// entityLike matches text that Markdown would read as a character
// reference ("&amp;", "&#27;"), so that a literal one is escaped.
var entityLike = regexp.MustCompile(`&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});`)

// asciiPunct is what a backslash escapes in Markdown.
const asciiPunct = `!"#$%&'()*+,-./:;<=>?@[\]^_{|}~` + "`"

// blockStart matches what a line of a paragraph must not start with, or
// it would turn into a heading, quote, list, rule, fence, table or setext
// underline: its marker is the group.
var blockStart = regexp.MustCompile(`^( {0,3})([#>+*=|~` + "`" + `-]|[0-9]{1,9}[.)])`)

// quoteMD writes text (a question or an answer) as Markdown that renders
// as the text itself, with nothing dropped: control characters become
// numeric character references (the file stays safe to cat), "<" an
// entity (no raw HTML), a backslash before punctuation is doubled, and
// lines after the first keep their paragraph (hard line breaks, escaped
// block markers).
func quoteMD(s string) string {
	s = strings.TrimSpace(strings.ToValidUTF8(s, "\uFFFD"))
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = entityLike.ReplaceAllStringFunc(s, func(e string) string { return "&amp;" + e[1:] })
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		switch {
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case r == '<':
			b.WriteString("&lt;")
		case r == '\\' && i+1 < len(rs) && strings.ContainsRune(asciiPunct, rs[i+1]):
			b.WriteString(`\\`)
		case unicode.IsControl(r):
			fmt.Fprintf(&b, "&#%d;", r)
		default:
			b.WriteRune(r)
		}
	}
	lines := strings.Split(b.String(), "\n")
	for i := 1; i < len(lines); i++ {
		if m := blockStart.FindStringSubmatchIndex(lines[i]); m != nil {
			l := lines[i]
			mark := l[m[4]:m[5]]
			if last := mark[len(mark)-1]; last == '.' || last == ')' {
				// "1." starts a list: escape the dot, not the digit.
				lines[i] = l[:m[5]-1] + `\` + l[m[5]-1:]
			} else {
				lines[i] = l[:m[4]] + `\` + l[m[4]:]
			}
		}
		if strings.TrimSpace(lines[i]) == "" {
			// A blank line would end the paragraph.
			lines[i] = "&#32;"
		}
	}
	return strings.Join(lines, "  \n")
}

// codeMD writes s as an inline code span, or, when it holds control
// characters (which a code span cannot escape), as escaped text.
func codeMD(s string) string {
	for _, r := range s {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return quoteMD(strings.ReplaceAll(s, "\n", " "))
		}
	}
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

// linkMD writes a local path as a link destination: <...> with the
// characters that would end it, and %, percent-encoded.
func linkMD(p string) string {
	var b strings.Builder
	b.WriteByte('<')
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < 0x20 || c == 0x7f || c == '<' || c == '>' || c == '%' || c == '\\' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	b.WriteByte('>')
	return b.String()
}

// altMD is link text: brackets escaped, on one line.
func altMD(s string) string {
	s = quoteMD(strings.ReplaceAll(s, "\n", " "))
	return strings.NewReplacer("[", `\[`, "]", `\]`).Replace(s)
}
