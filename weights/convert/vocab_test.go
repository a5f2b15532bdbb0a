package convert

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseVocab(t *testing.T) {
	for _, c := range []struct {
		name, data string
		json       bool
		want       string // tokens joined by "|", or "error"
	}{
		{"txt", "[PAD]\n[UNK]\nthe\n##s\n", false, "[PAD]|[UNK]|the|##s"},
		{"txt crlf, no final newline", "a\r\nb", false, "a|b"},
		{"txt empty line kept as a token", "a\n\nb\n", false, "a||b"},
		{"txt empty", "", false, "error"},
		{"txt not utf-8", "a\n\xff\n", false, "error"},
		{"json", `{"model": {"type": "WordPiece", "vocab": {"b": 1, "a": 0, "##c": 2}}}`, true, "a|b|##c"},
		{"json gap", `{"model": {"vocab": {"a": 0, "b": 2}}}`, true, "error"},
		{"json duplicate id", `{"model": {"vocab": {"a": 0, "b": 0}}}`, true, "error"},
		{"json bpe", `{"model": {"type": "BPE", "vocab": {"a": 0}}}`, true, "error"},
		{"json truncated", `{"model": {"vocab": {"a": 0`, true, "error"},
	} {
		var v []string
		var err error
		if c.json {
			v, err = parseTokenizerJSONVocab([]byte(c.data))
		} else {
			v, err = parseVocabTxt([]byte(c.data))
		}
		got := strings.Join(v, "|")
		if err != nil {
			got = "error"
		}
		if got != c.want {
			t.Errorf("%s: %q (%v), want %q", c.name, got, err, c.want)
		}
	}
}

// TestFindQFormerVocab: vocab.txt first, then tokenizer.json, else none;
// do_lower_case from the tokenizer config (true when unsaid).
func TestFindQFormerVocab(t *testing.T) {
	v, lower, path, err := findQFormerVocab(hfDir("instructblip-llama"))
	if err != nil || len(v) != 1000 || !lower || filepath.Base(path) != "vocab.txt" || v[2] != "[CLS]" {
		t.Errorf("golden: %d tokens, lower %v, %s, %v", len(v), lower, path, err)
	}
	d := t.TempDir()
	if v, _, _, err := findQFormerVocab(d); v != nil || err != nil {
		t.Errorf("no vocab: %v %v", v, err)
	}
	q := filepath.Join(d, "qformer_tokenizer")
	os.MkdirAll(q, 0o755)
	os.WriteFile(filepath.Join(q, "tokenizer.json"), []byte(`{"model": {"type": "WordPiece", "vocab": {"[PAD]": 0, "x": 1}}}`), 0o644)
	os.WriteFile(filepath.Join(q, "tokenizer_config.json"), []byte(`{"do_lower_case": false}`), 0o644)
	v, lower, _, err = findQFormerVocab(d)
	if err != nil || strings.Join(v, "|") != "[PAD]|x" || lower {
		t.Errorf("tokenizer.json: %v lower %v %v", v, lower, err)
	}
}

// FuzzParseVocab: any input gives a non-empty vocab or an error, never a
// panic.
func FuzzParseVocab(f *testing.F) {
	f.Add([]byte("[PAD]\n[UNK]\nthe\n"))
	f.Add([]byte(`{"model": {"type": "WordPiece", "vocab": {"b": 1, "a": 0}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if v, err := parseVocabTxt(data); err == nil && len(v) == 0 {
			t.Error("vocab.txt: empty vocab without error")
		}
		if v, err := parseTokenizerJSONVocab(data); err == nil && len(v) == 0 {
			t.Error("tokenizer.json: empty vocab without error")
		}
	})
}
