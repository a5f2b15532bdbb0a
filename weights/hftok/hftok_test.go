package hftok

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const golden = "../../testdata/golden"

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestGoldenFiles: every tokenizer file of the golden checkpoints is read,
// whole: every merges.txt line but the #version one is a merge, every
// vocab.txt line a token.
func TestGoldenFiles(t *testing.T) {
	for _, dir := range []string{filepath.Join(golden, "tokenizers", "gpt2"), filepath.Join(golden, "blip2-opt", "hf")} {
		b, from, err := LoadBPEDir(dir)
		if err != nil || from != "vocab.json" {
			t.Fatalf("%s: %v (from %q)", dir, err, from)
		}
		data, _ := os.ReadFile(filepath.Join(dir, "merges.txt"))
		lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		if n := len(lines) - 1; len(b.Merges) != n || !strings.HasPrefix(lines[0], "#version") {
			t.Errorf("%s: %d merges from %d lines", dir, len(b.Merges), len(lines))
		}
		if len(b.Vocab) < 256 || !b.GPT2() || b.Added != nil {
			t.Errorf("%s: %d tokens, GPT2 %v, added %v", dir, len(b.Vocab), b.GPT2(), b.Added)
		}
	}
	for _, p := range []string{"tokenizers/bert/vocab.txt", "instructblip-llama/hf/qformer_tokenizer/vocab.txt", "blip2-itm/hf/vocab.txt"} {
		v, err := LoadVocabTxt(filepath.Join(golden, p))
		data, _ := os.ReadFile(filepath.Join(golden, p))
		if err != nil || len(v) != strings.Count(string(data), "\n") {
			t.Errorf("%s: %d tokens, %v", p, len(v), err)
		}
	}
}

func TestParseVocabJSON(t *testing.T) {
	for _, c := range []struct{ name, data, want string }{
		{"not json", `{"a":0`, "not a JSON object"},
		{"array", `[1,2]`, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"negative id", `{"a":-1}`, "non-negative"},
		{"float id", `{"a":1.5}`, "non-negative"},
		{"too large", `{"a":2147483648}`, "below 2^31"},
	} {
		if _, err := ParseVocabJSON([]byte(c.data)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	// Values that are not numbers are skipped, as tokenizers does.
	v, err := ParseVocabJSON([]byte(`{"a":0,"b":1,"note":"x","z":null,"l":[1]}`))
	if err != nil || len(v) != 2 || v["b"] != 1 {
		t.Errorf("vocab %v, %v", v, err)
	}
}

func TestParseMergesTXT(t *testing.T) {
	for _, c := range []struct{ name, data, want string }{
		{"three tokens", "#version: 0.2\na b c\n", "merge 1"},
		{"one token", "a b\nab\n", "merge 2"},
		{"empty line", "a b\n\n", "merge 2"},
		{"two spaces", "a  b\n", "merge 1"},
		{"bad utf8", "a \xff\n", "UTF-8"},
	} {
		if _, err := ParseMergesTXT([]byte(c.data)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	// "#version" is skipped wherever it is; CRLF endings are accepted.
	m, err := ParseMergesTXT([]byte("#version: 0.2\r\na b\r\n#version again\nab c\n"))
	if err != nil || !slices.Equal(m, [][2]string{{"a", "b"}, {"ab", "c"}}) {
		t.Errorf("merges %q, %v", m, err)
	}
	if m, err := ParseMergesTXT(nil); err != nil || len(m) != 0 {
		t.Errorf("empty file: %q, %v", m, err)
	}
}

func TestTokenizerJSONBPE(t *testing.T) {
	byteLevel := `{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}`
	good := `{"added_tokens":[{"id":3,"content":"</s>","special":true}],"normalizer":null,"pre_tokenizer":` + byteLevel +
		`,"model":{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":"","end_of_word_suffix":"","vocab":{"a":0,"b":1,"ab":2},"merges":["a b",["ab","b"]]}}`
	// Both merge forms may not be mixed in tokenizers; either one is read.
	good = strings.Replace(good, `["a b",["ab","b"]]`, `[["a","b"],["ab","b"]]`, 1)
	tj, err := ParseTokenizerJSON([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	b, err := tj.BPE()
	if err != nil {
		t.Fatal(err)
	}
	if !b.GPT2() || len(b.Vocab) != 3 || !slices.Equal(b.Merges, [][2]string{{"a", "b"}, {"ab", "b"}}) ||
		len(b.Added) != 1 || b.Added[0] != (AddedToken{3, "</s>", true}) {
		t.Errorf("BPE %+v", b)
	}
	// tokenizers' defaults for an option-less ByteLevel: prefix space, regex.
	tj, _ = ParseTokenizerJSON([]byte(`{"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"ByteLevel"}]},"model":{"vocab":{},"merges":[]}}`))
	if b, err := tj.BPE(); err != nil || !b.AddPrefixSpace || !b.UseRegex || b.GPT2() {
		t.Errorf("defaults: %+v, %v", b, err)
	}
	for _, c := range []struct{ name, body, want string }{
		{"not json", `{`, "not a tokenizer.json"},
		{"negative added", `{"added_tokens":[{"id":-1,"content":"x"}]}`, "negative id"},
		{"no model", `{"added_tokens":[]}`, "no model"},
		{"wordpiece", `{"model":{"type":"WordPiece","vocab":{}}}`, "not BPE"},
		{"no merges", `{"model":{"type":"BPE","vocab":{}}}`, "no vocab or no merges"},
		{"normalizer", `{"normalizer":{"type":"NFC"},"pre_tokenizer":` + byteLevel + `,"model":{"type":"BPE","vocab":{},"merges":[]}}`, "normalizer"},
		{"metaspace", `{"pre_tokenizer":{"type":"Metaspace"},"model":{"type":"BPE","vocab":{},"merges":[]}}`, "pre_tokenizer"},
		{"no pre_tokenizer", `{"model":{"type":"BPE","vocab":{},"merges":[]}}`, "pre_tokenizer"},
		{"bad pair", `{"pre_tokenizer":` + byteLevel + `,"model":{"type":"BPE","vocab":{"a":0},"merges":[["a"]]}}`, "merge 1 has 1 tokens"},
		{"bad merges", `{"pre_tokenizer":` + byteLevel + `,"model":{"type":"BPE","vocab":{"a":0},"merges":{"a":1}}}`, "model.merges"},
		{"bad vocab", `{"pre_tokenizer":` + byteLevel + `,"model":{"type":"BPE","vocab":{"a":-3},"merges":[]}}`, "model.vocab"},
	} {
		tj, err := ParseTokenizerJSON([]byte(c.body))
		if err == nil {
			_, err = tj.BPE()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	// The added tokens of a tokenizer.json this package cannot read the
	// model of (a SentencePiece Unigram) are still there.
	tj, err = ParseTokenizerJSON([]byte(`{"added_tokens":[{"id":0,"content":"<pad>","special":true}],"model":{"type":"Unigram","unk_id":2,"vocab":[["<pad>",0.0]]}}`))
	if err != nil || len(tj.AddedTokens) != 1 {
		t.Errorf("unigram added tokens: %+v, %v", tj, err)
	}
}

func TestWordPieceVocab(t *testing.T) {
	const specials = `"[CLS]": 2, "[SEP]": 3, "[UNK]": 4`
	for _, c := range []struct{ name, data, want string }{
		{"ok", `{"model": {"type": "WordPiece", "vocab": {"b": 1, "a": 0, ` + specials + `}}}`, "a|b|[CLS]|[SEP]|[UNK]"},
		{"no type", `{"model": {"vocab": {"a": 0, "b": 1, ` + specials + `}}}`, "a|b|[CLS]|[SEP]|[UNK]"},
		{"gap", `{"model": {"vocab": {"a": 0, "b": 6, ` + specials + `}}}`, "error: not 0..4"},
		{"duplicate id", `{"model": {"vocab": {"a": 0, "b": 0, ` + specials + `}}}`, "error: not 0..4"},
		{"no [UNK]", `{"model": {"vocab": {"[CLS]": 0, "[SEP]": 1, "x": 2}}}`, "error: no [UNK] token"},
		{"bpe", `{"model": {"type": "BPE", "vocab": {"a": 0}}}`, "error: not WordPiece"},
		{"truncated", `{"model": {"vocab": {"a": 0`, "error: not a tokenizer.json"},
	} {
		tj, err := ParseTokenizerJSON([]byte(c.data))
		var v []string
		if err == nil {
			v, err = tj.WordPieceVocab()
		}
		got := strings.Join(v, "|")
		if err != nil {
			got = "error: " + err.Error()
		}
		if !strings.HasPrefix(c.want, "error") && got != c.want || strings.HasPrefix(c.want, "error") && !strings.Contains(got, strings.TrimPrefix(c.want, "error: ")) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestParseVocabTxt(t *testing.T) {
	const sp = "[CLS]\n[SEP]\n[UNK]\n"
	for _, c := range []struct{ name, data, want string }{
		{"plain", sp + "the\n##s\n", "[CLS]|[SEP]|[UNK]|the|##s"},
		{"crlf, no final newline", "[CLS]\r\n[SEP]\r\n[UNK]\r\nb", "[CLS]|[SEP]|[UNK]|b"},
		{"empty line kept as a token", sp + "a\n\nb\n", "[CLS]|[SEP]|[UNK]|a||b"},
		{"trailing blanks kept, matched trimmed", "[CLS] \n[SEP]\t\n[UNK]\n", "[CLS] |[SEP]\t|[UNK]"},
		{"empty", "", "error: no [CLS]"},
		{"no [UNK]", "[CLS]\n[SEP]\nthe\n", "error: no [UNK] token: not a BERT WordPiece vocabulary"},
		{"no [SEP]", "[CLS]\n[UNK]\n", "error: no [SEP]"},
		{"not utf-8", sp + "\xff\n", "error: not valid UTF-8"},
	} {
		v, err := ParseVocabTxt([]byte(c.data))
		got := strings.Join(v, "|")
		if err != nil {
			got = "error: " + err.Error()
		}
		if !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	if _, err := LoadVocabTxt(filepath.Join(t.TempDir(), "missing.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	p := filepath.Join(writeFiles(t, map[string]string{"vocab.txt": "a\n"}), "vocab.txt")
	if _, err := LoadVocabTxt(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("error does not name the file: %v", err)
	}
}

// TestLoadBPEDir: vocab.json and merges.txt first (tokenizer.json then
// only adds its added tokens), else tokenizer.json, else fs.ErrNotExist;
// errors name the file.
func TestLoadBPEDir(t *testing.T) {
	const vocab, merges = `{"a":0,"b":1,"ab":2}`, "#version: 0.2\na b\n"
	tj := `{"added_tokens":[{"id":3,"content":"<image>"}],"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false},"model":{"type":"BPE","vocab":{"a":0,"b":1},"merges":[]}}`
	b, from, err := LoadBPEDir(writeFiles(t, map[string]string{"vocab.json": vocab, "merges.txt": merges, "tokenizer.json": tj}))
	if err != nil || from != "vocab.json" || len(b.Vocab) != 3 || len(b.Merges) != 1 || len(b.Added) != 1 || !b.GPT2() {
		t.Errorf("both: %+v from %s, %v", b, from, err)
	}
	b, from, err = LoadBPEDir(writeFiles(t, map[string]string{"vocab.json": vocab, "tokenizer.json": tj}))
	if err != nil || from != "tokenizer.json" || len(b.Vocab) != 2 || len(b.Added) != 1 {
		t.Errorf("tokenizer.json: %+v from %s, %v", b, from, err)
	}
	if _, _, err := LoadBPEDir(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("none: %v", err)
	}
	dir := writeFiles(t, map[string]string{"vocab.json": `{"a":-1}`, "merges.txt": merges})
	if _, _, err := LoadBPEDir(dir); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "vocab.json")) {
		t.Errorf("bad vocab.json: %v", err)
	}
	dir = writeFiles(t, map[string]string{"tokenizer.json": `{"model":{"type":"Unigram"}}`})
	if _, _, err := LoadBPEDir(dir); err == nil || !strings.Contains(err.Error(), "tokenizer.json: model type \"Unigram\" is not BPE") {
		t.Errorf("unigram tokenizer.json: %v", err)
	}
}

func TestParseAddedTokensJSON(t *testing.T) {
	a, err := ParseAddedTokensJSON([]byte(`{"<img>": 2001, "[PAD]": 32000, "<b>": 2001}`))
	want := []AddedToken{{2001, "<b>", false}, {2001, "<img>", false}, {32000, "[PAD]", false}}
	if err != nil || !slices.Equal(a, want) {
		t.Errorf("added %v, %v", a, err)
	}
	if _, err := ParseAddedTokensJSON([]byte(`{"a": "x"}`)); err == nil {
		t.Error("a string id accepted")
	}
}
