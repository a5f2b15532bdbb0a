package app

import (
	"strings"
	"testing"
)

func TestParseSetting(t *testing.T) {
	for _, c := range []struct {
		spec, want, err string
	}{
		{"vqa", "vqa", ""},
		{"VQA", "vqa", ""},
		{"num_beams=1", "reference num_beams=1", ""},
		{"vqa+max_tokens=5", "vqa max_tokens=5", ""},
		{"caption max_tokens=5 num_beams=3", "caption max_tokens=5 num_beams=3", ""},
		{"", "", "empty setting"},
		{"fast", "", `no preset "fast"`},
		{"max_tokens=5+vqa", "", "goes first"},
		{"temperature=hot", "", "takes a number"},
		{"num_beams=99", "", "between 1"},
		{"template={prompt}", "", "not a decoding setting"},
		{"threads=2", "", "not a decoding setting"},
		{"bogus=1", "", "not a decoding setting"},
	} {
		s, err := ParseSetting(c.spec)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: error %v, want %q", c.spec, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%q: %v", c.spec, err)
		case c.err == "" && s.String() != c.want:
			t.Errorf("%q: %q, want %q", c.spec, s.String(), c.want)
		}
	}
}

func TestPromptFor(t *testing.T) {
	for _, c := range []struct{ prompt, want string }{
		{"what is it?", "what is it?"},
		{"a photo of {stem}", "a photo of dog 1"},
		{"{file} in {dir}", "dog 1.jpg in pets"},
		{"{unknown}", "{unknown}"},
	} {
		if got := PromptFor(c.prompt, "/data/pets/dog 1.jpg"); got != c.want {
			t.Errorf("%q: %q, want %q", c.prompt, got, c.want)
		}
	}
}

// TestBatchReportEscapes: the answers and paths are text in the reports,
// never markup (an answer is whatever the model's vocabulary spells), and
// a cell that differs from the row's first is marked.
func TestBatchReportEscapes(t *testing.T) {
	recs := []BatchRecord{
		{Image: "/no/such/a<b>.jpg", Model: "m", Prompt: "q", Setting: "reference", Answer: "a cat"},
		{Image: "/no/such/a<b>.jpg", Model: "m", Prompt: "q", Setting: "vqa", Answer: "a <script>alert(1)</script> | dog\x1b[2J"},
		{Image: "/no/such/a<b>.jpg", Model: "m", Prompt: "p", Setting: "vqa", Answer: "a cat"},
	}
	page := string(BatchReportHTML(recs))
	for _, bad := range []string{"<script", "\x1b", "a<b>"} {
		if strings.Contains(page, bad) {
			t.Errorf("the HTML report holds %q", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;", `<td class="diff">`, "<mark>dog\uFFFD[2J</mark>", "a&lt;b&gt;.jpg"} {
		if !strings.Contains(page, want) {
			t.Errorf("the HTML report lacks %q:\n%s", want, page)
		}
	}
	if strings.Count(page, "<mark>a</mark>") != 0 {
		t.Errorf("a word the first answer has is marked")
	}
	md := string(BatchReportMarkdown(recs))
	if !strings.Contains(md, `**a &lt;script&gt;alert(1)&lt;/script&gt; \| dog`) || strings.Contains(md, "\x1b") {
		t.Errorf("markdown:\n%s", md)
	}
	if n := strings.Count(md, "\n|"); n != 4 { // heading, separator, one image, timings
		t.Errorf("markdown has %d more table lines, want 4:\n%s", n, md)
	}
}
