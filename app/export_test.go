package app

import (
	"os"
	"strings"
	"testing"
	"time"
)

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

	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f, err := CreateSession(t.TempDir(), "/models/m", false, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Append(Record{Type: "turn", Turn: &Turn{Question: "q", Answer: answer}}, now); err != nil {
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

// TestMarkdownReset: a reset shows as a rule, whatever notes say.
func TestMarkdownReset(t *testing.T) {
	md := Markdown(State{Entries: []Entry{
		{Kind: EntryQuestion, Text: "q1"}, {Kind: EntryAnswer, Text: "a1"},
		{Kind: EntryNote, Text: "Conversation restarted, said a note"},
		{Kind: EntryReset, Text: "anything"},
		{Kind: EntryQuestion, Text: "q2"}, {Kind: EntryAnswer, Text: "a2"},
	}}, time.Now())
	if n := strings.Count(md, "*Conversation restarted.*"); n != 1 || !strings.Contains(md, "a1\n\n---\n*Conversation restarted.*\n\n**You:** q2") {
		t.Errorf("%d resets in:\n%s", n, md)
	}
}
