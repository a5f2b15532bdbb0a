package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unicode/utf8"
)

const goldenDir = "../../testdata/golden"

type goldenCase struct {
	Text string `json:"text"`
	IDs  []int  `json:"ids"`
}

// loadGoldenCases reads tokenization.json: ids that Hugging Face tokenizers
// gave for a list of strings, per tokenizer.
func loadGoldenCases(t *testing.T, kind string) []goldenCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(goldenDir, "tokenization.json"))
	if err != nil {
		t.Fatal(err)
	}
	var all map[string][]goldenCase
	if err := json.Unmarshal(data, &all); err != nil {
		t.Fatal(err)
	}
	cases := all[kind]
	if len(cases) == 0 {
		t.Fatalf("tokenization.json has no %q cases", kind)
	}
	return cases
}

func readGoldenJSON(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(goldenDir, name, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}

func bpeSources(t *testing.T) map[string]*BPE {
	t.Helper()
	out := map[string]*BPE{}
	for name, dir := range map[string]string{
		"tokenizers/gpt2": filepath.Join(goldenDir, "tokenizers", "gpt2"),
		"blip2-opt/hf":    filepath.Join(goldenDir, "blip2-opt", "hf"),
	} {
		tok, err := loadBPE(filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt"))
		if err != nil {
			t.Fatal(err)
		}
		out[name] = tok
	}
	return out
}

func TestBPEGolden(t *testing.T) {
	cases := loadGoldenCases(t, "gpt2_bytelevel_bpe_raw")
	for src, tok := range bpeSources(t) {
		for _, c := range cases {
			t.Run(src+"/"+c.Text, func(t *testing.T) {
				got := tok.Encode(c.Text)
				if !slices.Equal(got, c.IDs) && !(len(got) == 0 && len(c.IDs) == 0) {
					t.Fatalf("Encode(%q)\n got %v\nwant %v", c.Text, got, c.IDs)
				}
				// Byte-level BPE is lossless.
				if d := tok.Decode(c.IDs); d != c.Text {
					t.Fatalf("Decode(golden ids) = %q, want %q", d, c.Text)
				}
				// Streaming the tokens' bytes gives the same text, in valid pieces.
				var sd StreamDecoder
				var all string
				for _, id := range c.IDs {
					s := sd.Write(tok.TokenBytes(id))
					if !utf8.ValidString(s) {
						t.Fatalf("stream piece %q is not valid UTF-8", s)
					}
					all += s
				}
				if all += sd.Flush(); all != c.Text {
					t.Fatalf("streamed %q, want %q", all, c.Text)
				}
			})
		}
	}
}

// TestBPEGoldenOPTPrompt checks the prompt ids of the OPT checkpoint: BOS
// (tokenizer_config's bos_token "</s>") followed by the raw encoding.
func TestBPEGoldenOPTPrompt(t *testing.T) {
	var g struct {
		Prompt    string `json:"prompt"`
		PromptIDs []int  `json:"prompt_ids"`
	}
	readGoldenJSON(t, "blip2-opt", &g)
	dir := filepath.Join(goldenDir, "blip2-opt", "hf")
	tok, err := loadBPE(filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt"))
	if err != nil {
		t.Fatal(err)
	}
	bos, ok := tok.ID("</s>")
	if !ok {
		t.Fatal("no </s> in the OPT vocabulary")
	}
	got := append([]int{bos}, tok.Encode(g.Prompt)...)
	if !slices.Equal(got, g.PromptIDs) {
		t.Fatalf("prompt ids\n got %v\nwant %v", got, g.PromptIDs)
	}
}

func wordPieceSources(t *testing.T) map[string]*WordPiece {
	t.Helper()
	out := map[string]*WordPiece{}
	for _, p := range []string{
		"tokenizers/bert/vocab.txt",
		"instructblip-llama/hf/qformer_tokenizer/vocab.txt",
		"blip2-itm/hf/vocab.txt",
	} {
		tok, err := loadWordPiece(filepath.Join(goldenDir, p), true)
		if err != nil {
			t.Fatal(err)
		}
		out[p] = tok
	}
	return out
}

func TestWordPieceGolden(t *testing.T) {
	cases := loadGoldenCases(t, "bert_wordpiece")
	for src, tok := range wordPieceSources(t) {
		for _, c := range cases {
			t.Run(src+"/"+c.Text, func(t *testing.T) {
				if got := tok.Encode(c.Text); !slices.Equal(got, c.IDs) {
					t.Fatalf("Encode(%q)\n got %v\nwant %v", c.Text, got, c.IDs)
				}
			})
		}
	}
}

// TestWordPieceGoldenModels checks the Q-Former text ids stored with the
// InstructBLIP and image-text-matching checkpoints.
func TestWordPieceGoldenModels(t *testing.T) {
	var ib struct {
		Prompt string `json:"prompt"`
		IDs    []int  `json:"qformer_input_ids"`
	}
	readGoldenJSON(t, "instructblip-llama", &ib)
	var itm struct {
		Items []goldenCase `json:"items"`
	}
	readGoldenJSON(t, "blip2-itm", &itm)
	if len(itm.Items) == 0 || len(ib.IDs) == 0 {
		t.Fatal("golden.json files lack the expected ids")
	}
	tests := []struct {
		vocab string
		cases []goldenCase
	}{
		{"instructblip-llama/hf/qformer_tokenizer/vocab.txt", []goldenCase{{ib.Prompt, ib.IDs}}},
		{"blip2-itm/hf/vocab.txt", itm.Items},
	}
	for _, tt := range tests {
		tok, err := loadWordPiece(filepath.Join(goldenDir, tt.vocab), true)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range tt.cases {
			if got := tok.Encode(c.Text); !slices.Equal(got, c.IDs) {
				t.Errorf("%s: Encode(%q)\n got %v\nwant %v", tt.vocab, c.Text, got, c.IDs)
			}
		}
	}
}
