package app

import (
	"os"
	"path/filepath"
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
// never changed: this is for display only. Text typed or pasted into the
// input box has its own policy (ui's cleanText drops control characters
// outright): there nothing is lost that the user cannot type again, while
// here a replacement shows that the model wrote something.
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
