package app

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPrintable(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain text, ünïcode 日本", "plain text, ünïcode 日本"},
		{"two\nlines", "two\nlines"},
		{"tab\there", "tab here"},
		{"clear \x1b[2J bell \x07", "clear \uFFFD[2J bell \uFFFD"},
		{"cr\roverwrite", "cr\uFFFDoverwrite"},
		{"del\x7f", "del\uFFFD"},
		{"c1 csi \u009b31m", "c1 csi \uFFFD31m"},
		{"raw byte \x9b31m", "raw byte \uFFFD31m"},
		{"nul\x00", "nul\uFFFD"},
	} {
		got := Printable(c.in)
		if got != c.want {
			t.Errorf("Printable(%q) = %q, want %q", c.in, got, c.want)
		}
		for _, r := range got {
			if r != '\n' && (r < 0x20 || r >= 0x7f && r < 0xa0) {
				t.Errorf("Printable(%q) keeps control %U", c.in, r)
			}
		}
	}
}

func TestTildePath(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil || home == "/" {
		t.Skip("no home folder")
	}
	for in, want := range map[string]string{
		filepath.Join(home, "models", "x"): "~/models/x",
		home:                               "~",
		"/elsewhere/x":                     "/elsewhere/x",
		home + "other/x":                   home + "other/x", // a sibling with the same prefix
		"relative/x":                       "relative/x",
	} {
		if got := TildePath(in); got != want {
			t.Errorf("TildePath(%q) = %q, want %q", in, got, want)
		}
	}
}
