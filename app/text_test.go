package app

import (
	"bytes"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

func TestQuoteMD(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"a cat on a mat", "a cat on a mat"},
		{"  trimmed  ", "trimmed"},
		{"clear \x1b[2J bell\x07", "clear &#27;[2J bell&#7;"},
		{"tab\tkept", "tab\tkept"},
		{"<b>html</b>", "&lt;b>html&lt;/b>"},
		{"AT&T &amp; &#27; &x", "AT&T &amp;amp; &amp;#27; &x"},
		{`a\*b c\d`, `a\\*b c\d`},
		{"one\ntwo", "one  \ntwo"},
		{"para\n\nnext", "para  \n&#32;  \nnext"},
		{"x\n# not a heading\n> not a quote\n- no list\n1. no list\n2) no\n---\n===\n```\n    indented", "x  \n\\# not a heading  \n\\> not a quote  \n\\- no list  \n1\\. no list  \n2\\) no  \n\\---  \n\\===  \n\\```  \n    indented"},
		{"*emphasis* stays", "*emphasis* stays"},
	} {
		if got := quoteMD(c.in); got != c.want {
			t.Errorf("quoteMD(%q) =\n%q, want\n%q", c.in, got, c.want)
		}
	}
	if got := codeMD("/a/b c.jpg"); got != "`/a/b c.jpg`" {
		t.Errorf("codeMD = %q", got)
	}
	if got := codeMD("a`b"); got != "``a`b``" {
		t.Errorf("codeMD with a backtick = %q", got)
	}
	if got := codeMD("/a/\x1b[2J.jpg"); got != "/a/&#27;[2J.jpg" {
		t.Errorf("codeMD with ESC = %q", got)
	}
	if got := linkMD("/my pics/a (1)<x>%.jpg"); got != "</my pics/a (1)%3Cx%3E%25.jpg>" {
		t.Errorf("linkMD = %q", got)
	}
}

// TestMarkdownKeepsRawText: /save writes what the model generated, control
// characters included, as Markdown that renders as that text, with no
// control byte in the file; the session file keeps the text as it is.
func TestMarkdownKeepsRawText(t *testing.T) {
	answer := "It says \x1b[2J and rings \x07 twice <b>\n# and a second line"
	img := "/pics/my cat (1).jpg"
	st := State{
		HasModel: true, Model: ModelInfo{Name: "m", Dir: "/models/m"}, ImagePath: img,
		Entries: []Entry{
			{Kind: EntryImage, Text: img},
			{Kind: EntryQuestion, Text: "What does it say?"},
			{Kind: EntryAnswer, Text: answer, Stop: StopEnd},
		},
	}
	md := Markdown(st, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	for _, w := range []string{
		"It says &#27;[2J and rings &#7; twice &lt;b>  \n\\# and a second line",
		"![my cat (1).jpg](</pics/my cat (1).jpg>)",
		"- Image: `/pics/my cat (1).jpg`",
		"**You:** What does it say?",
	} {
		if !strings.Contains(md, w) {
			t.Errorf("Markdown lacks %q:\n%s", w, md)
		}
	}
	for _, b := range []byte(md) {
		if b < 0x20 && b != '\n' || b == 0x7f {
			t.Errorf("Markdown holds control byte %#x", b)
		}
	}

	f, err := CreateSession(t.TempDir(), "/models/m", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Append(Record{Type: "turn", Turn: &Turn{Question: "q", Answer: answer}}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(f.Path)
	if strings.ContainsAny(string(data), "\x1b\x07") {
		t.Errorf("session file holds raw control bytes: %q", data)
	}
	s, err := LoadSession(f.Path)
	if err != nil || len(s.All) != 1 || s.All[0].Answer != answer {
		t.Fatalf("session answer %q, want %q (%v)", s.All[0].Answer, answer, err)
	}
}

// TestShrink: each pixel of the display copy is the average of the source
// pixels it covers.
func TestShrink(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 5, 3))
	for y := 0; y < 3; y++ {
		for x := 0; x < 5; x++ {
			src.SetNRGBA(x, y, color.NRGBA{uint8(10 * x), uint8(100 * y), 7, 255})
		}
	}
	got := shrink(src, 2, 1)
	// Columns 0-1 and 2-4, all three rows: R averages 5 and 30, G 100.
	for x, wantR := range []uint8{5, 30} {
		if c := got.NRGBAAt(x, 0); c != (color.NRGBA{wantR, 100, 7, 255}) {
			t.Errorf("pixel %d = %v, want R %d G 100", x, c, wantR)
		}
	}
	if same := shrink(src, 5, 3); !bytes.Equal(same.Pix, src.Pix) {
		t.Error("shrinking to the same size changed the image")
	}
	big := image.NewNRGBA(image.Rect(0, 0, 3000, 2000))
	for i := range big.Pix {
		big.Pix[i] = 200
	}
	start := time.Now()
	small := shrink(big, 512, 341)
	if c := small.NRGBAAt(511, 340); c != (color.NRGBA{200, 200, 200, 200}) {
		t.Errorf("uniform image shrinks to %v", c)
	}
	t.Logf("shrink 3000×2000 -> 512×341: %v", time.Since(start))
}

// FuzzQuoteMD: whatever the text, the Markdown holds no control byte
// (other than newline and tab), no raw HTML and no blank line.
func FuzzQuoteMD(f *testing.F) {
	f.Add("clear \x1b[2J bell \x07 <b>\n# h\n\n1. x")
	f.Fuzz(func(t *testing.T, s string) {
		q := quoteMD(s)
		for _, r := range q {
			if r != '\n' && r != '\t' && (r < 0x20 || r >= 0x7f && r < 0xa0) {
				t.Fatalf("quoteMD(%q) holds %U", s, r)
			}
		}
		if strings.Contains(q, "<") || strings.Contains(q, "\n\n") {
			t.Fatalf("quoteMD(%q) = %q", s, q)
		}
	})
}
