package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/engine/model/modeltest"
)

// TestTokenizeGolden: every string of tokenization.json tokenizes through
// `blip2chat tokenize --no-special` into the reference ids: the LLaMA
// (SentencePiece BPE) strings with a converted LLaMA case, the T5
// (SentencePiece unigram) strings with a T5 case, the GPT-2 byte-level BPE
// strings with an OPT case.
func TestTokenizeGolden(t *testing.T) {
	lib := modeltest.LibDir(t)
	data, err := os.ReadFile(filepath.Join(modeltest.GoldenDir(t), "tokenization.json"))
	if err != nil {
		t.Fatal(err)
	}
	var golden map[string][]struct {
		Text string  `json:"text"`
		IDs  []int32 `json:"ids"`
	}
	if err := json.Unmarshal(data, &golden); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ key, textType string }{{"llama_spm_bpe", "llama"}, {"t5_spm_unigram", "t5"}, {"gpt2_bytelevel_bpe_raw", "opt"}} {
		t.Run(tc.key, func(t *testing.T) {
			strs := golden[tc.key]
			if len(strs) == 0 {
				t.Fatalf("tokenization.json has no %s strings", tc.key)
			}
			c := modeltest.Cases(t, tc.textType)[0]
			dir := askModelDir(t, c, "f32")
			for _, s := range strs {
				var out, errb bytes.Buffer
				if code := run([]string{"tokenize", "-m", dir, "--no-special", "--json", "--llama-lib", lib, s.Text}, &out, &errb); code != 0 {
					t.Fatalf("%q: exit %d: %s", s.Text, code, errb.String())
				}
				var r struct {
					IDs    []int32  `json:"ids"`
					Pieces []string `json:"pieces"`
				}
				if err := json.Unmarshal(out.Bytes(), &r); err != nil {
					t.Fatalf("%q: output %q: %v", s.Text, out.String(), err)
				}
				if fmt.Sprint(r.IDs) != fmt.Sprint(s.IDs) || len(r.Pieces) != len(r.IDs) {
					t.Errorf("%q:\n got %v\nwant %v", s.Text, r.IDs, s.IDs)
				}
			}
			t.Logf("%d strings tokenize as the reference", len(strs))

			// Without --no-special the model's tokenizer adds BOS (LLaMA) or
			// EOS (T5); the plain listing shows one token per line.
			var out, errb bytes.Buffer
			if code := run([]string{"tokenize", "-m", dir, "--llama-lib", lib, "Question: hi"}, &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			want := `"<s>"`
			switch tc.textType {
			case "t5":
				lines = lines[len(lines)-1:]
				want = `"</s>"`
			case "opt":
				want = `2  "</s>"` // OPT's BOS is </s>
			}
			if !strings.HasSuffix(lines[0], want) {
				t.Errorf("plain listing %q: expected %s", out.String(), want)
			}
		})
	}
	for _, bad := range [][]string{{"tokenize", "text"}, {"tokenize", "-m", t.TempDir(), "--llama-lib", lib, "x"}} {
		var o, e bytes.Buffer
		if code := run(bad, &o, &e); code == 0 {
			t.Errorf("%v succeeded", bad)
		}
	}
}
