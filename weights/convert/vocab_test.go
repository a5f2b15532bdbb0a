package convert

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFindQFormerVocab: vocab.txt first, then tokenizer.json, else none;
// do_lower_case from the tokenizer config (true when unsaid), truncation
// side (left when unsaid), and the added tokens continuing the ids
// ([DEC]).
func TestFindQFormerVocab(t *testing.T) {
	q, err := findQFormerVocab(hfDir("instructblip-llama"))
	if err != nil || len(q.vocab) != 1000 || !q.lower || q.truncation != "left" || filepath.Base(q.path) != "vocab.txt" || q.vocab[2] != "[CLS]" {
		t.Errorf("golden: %d tokens, lower %v, truncation %q, %s, %v", len(q.vocab), q.lower, q.truncation, q.path, err)
	}
	d := t.TempDir()
	if q, err := findQFormerVocab(d); q.vocab != nil || err != nil {
		t.Errorf("no vocab: %v %v", q.vocab, err)
	}
	qd := filepath.Join(d, "qformer_tokenizer")
	os.MkdirAll(qd, 0o755)
	os.WriteFile(filepath.Join(qd, "tokenizer.json"), []byte(`{"model": {"type": "WordPiece", "vocab": {"[PAD]": 0, "x": 1, "[UNK]": 2, "[CLS]": 3, "[SEP]": 4}},
		"added_tokens": [{"id": 6, "content": "[X]"}, {"id": 3, "content": "[CLS]"}]}`), 0o644)
	os.WriteFile(filepath.Join(qd, "added_tokens.json"), []byte(`{"[DEC]": 5}`), 0o644)
	os.WriteFile(filepath.Join(qd, "tokenizer_config.json"), []byte(`{"do_lower_case": false, "truncation_side": "right"}`), 0o644)
	q, err = findQFormerVocab(d)
	if err != nil || strings.Join(q.vocab, "|") != "[PAD]|x|[UNK]|[CLS]|[SEP]|[DEC]|[X]" || q.lower || q.truncation != "right" {
		t.Errorf("tokenizer.json: %v lower %v truncation %q %v", q.vocab, q.lower, q.truncation, err)
	}
}

// TestQFormerVocabWithoutUNK: a Q-Former vocabulary without [UNK] (or
// [CLS], [SEP]) is refused at convert with one line naming the file, and
// nothing is written: it would silently drop unknown words.
func TestQFormerVocabWithoutUNK(t *testing.T) {
	for _, c := range []struct{ file, body, want string }{
		{"vocab.txt", "[PAD]\n[CLS]\n[SEP]\nwhat\n", "vocab.txt: no [UNK] token: not a BERT WordPiece vocabulary"},
		{"tokenizer.json", `{"model": {"type": "WordPiece", "vocab": {"[PAD]": 0, "[UNK]": 1, "[SEP]": 2}}}`, "tokenizer.json: no [CLS] token"},
	} {
		t.Run(c.file, func(t *testing.T) {
			hf := copyCheckpoint(t, "instructblip-llama", nil)
			q := filepath.Join(hf, "qformer_tokenizer")
			os.MkdirAll(q, 0o755)
			os.WriteFile(filepath.Join(q, c.file), []byte(c.body), 0o644)
			out := filepath.Join(t.TempDir(), "m")
			_, err := Convert(context.Background(), hf, out, Options{VisionOnly: true})
			if err == nil || !strings.Contains(err.Error(), filepath.Join(q, c.want)) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v, want one line with %q", err, c.want)
			}
			if l := listDir(t, out); l != nil {
				t.Errorf("wrote %v", l)
			}
		})
	}
}
