package app

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Printable makes text safe to draw on a terminal: what a model generates
// (or a file is named) may hold control characters (ESC, BEL, CR, C1 codes
// such as CSI) that would move the cursor or change the terminal's state.
// Newlines stay, tabs become a space, every other control character and
// DEL become U+FFFD, and invalid UTF-8 becomes U+FFFD (a stray 0x9B byte
// is a CSI to a terminal that is not in UTF-8 mode). The stored text is
// never changed: this is for display only.
func Printable(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	clean := true
	for _, r := range s {
		if r != '\n' && unicode.IsControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n':
			return r
		case r == '\t':
			return ' '
		case unicode.IsControl(r):
			return '\uFFFD'
		}
		return r
	}, s)
}

// TildePath shortens a path inside the home folder to ~/...
func TildePath(p string) string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" || home == "/" || !filepath.IsAbs(p) {
		return p
	}
	if p == home {
		return "~"
	}
	if rest, ok := strings.CutPrefix(p, strings.TrimSuffix(home, "/")+"/"); ok {
		return "~/" + rest
	}
	return p
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
