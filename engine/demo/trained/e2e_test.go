package trained_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/engine/chat"
	"github.com/blip2chat/blip2chat/engine/generate"
	"github.com/blip2chat/blip2chat/engine/imageprep"
	"github.com/blip2chat/blip2chat/engine/llamacpp/llamatest"
	"github.com/blip2chat/blip2chat/engine/model"
)

// scene is one line of testdata/scenes/scenes.jsonl (tools/scenes).
type scene struct {
	File    string `json:"file"`
	Caption string `json:"caption"`
	QA      []struct {
		Type     string `json:"type"`
		Question string `json:"q"`
		Answer   string `json:"a"`
	} `json:"qa"`
}

// reference is pytorch.json: what the trained checkpoint answers in
// PyTorch (tools/train-demo/train.py) on the same scenes.
type reference struct {
	Accuracy map[string]float64 `json:"accuracy"`
	Items    []struct {
		File      string  `json:"file"`
		Type      string  `json:"type"`
		Question  string  `json:"q"`
		Want      string  `json:"want"`
		Got       string  `json:"got"`
		PromptIDs []int32 `json:"prompt_ids"`
	} `json:"items"`
}

// maxGap is how far, in accuracy points, our engine may be from PyTorch on
// any question type.
const maxGap = 2.0

// TestAnswers asks the trained demo model about the held-out scenes through
// the whole real path: PNG file, our preprocessing, ViT, Q-Former and
// projection in Go, the soft tokens and the BLIP-2 prompt into llama.cpp,
// pure greedy decoding (asked for explicitly: a model's own decoding
// defaults may differ, and PyTorch's answers are greedy).
// Per question type, the accuracy must be within maxGap points of what the
// same weights reach in PyTorch; every prompt must tokenize to the ids
// PyTorch was given. A break anywhere (a pixel convention, a layer, the
// soft-token order, the template, the tokenizer, the decoding) shows as a
// drop in accuracy.
func TestAnswers(t *testing.T) {
	root := llamatest.RepoRoot(t)
	lib := llamatest.LibDir(t)
	here := filepath.Join(root, "engine", "demo", "trained")
	scenesDir := filepath.Join(root, "testdata", "scenes")
	scenes := readScenes(t, filepath.Join(scenesDir, "scenes.jsonl"))
	ref := readReference(t, filepath.Join(here, "pytorch.json"))

	type key struct{ file, q string }
	refOf := map[key]int{}
	for i, it := range ref.Items {
		refOf[key{it.File, it.Question}] = i
	}
	if len(ref.Items) != 7*len(scenes) {
		t.Fatalf("pytorch.json has %d answers for %d scenes: regenerate it with the scenes", len(ref.Items), len(scenes))
	}

	for _, vt := range []struct{ name, dir string }{
		{"f16", here},
		{"q8_0", filepath.Join(here, "q8_0")},
	} {
		t.Run(vt.name, func(t *testing.T) {
			start := time.Now()
			m, err := model.Open(vt.dir, model.Options{LlamaLib: lib, LLMPath: filepath.Join(here, model.LLMFile)})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			// Greedy, no repetition penalty: what PyTorch's answers are.
			// The longest answer (a three-shape caption) is under 20 tokens;
			// a wrong one stops at 24.
			greedy := generate.DefaultParams() // temperature 0, one beam, no penalty
			greedy.MaxTokens = 24
			// One thread, as the demo runs it: the model is tiny, and on a
			// busy machine llama.cpp's threads wait for each other at every
			// layer (minutes instead of seconds).
			c, err := m.NewChat(chat.Settings{Params: greedy, Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()

			right, total, agree := map[string]int{}, map[string]int{}, 0
			var wrong []string
			for _, s := range scenes {
				img, err := imageprep.Load(context.Background(), filepath.Join(scenesDir, s.File))
				if err != nil {
					t.Fatal(err)
				}
				if err := c.SetImage(context.Background(), img, ""); err != nil {
					t.Fatal(err)
				}
				asks := []struct{ typ, q, want string }{{"caption", "", s.Caption}}
				for _, qa := range s.QA {
					asks = append(asks, struct{ typ, q, want string }{qa.Type, qa.Question, qa.Answer})
				}
				for _, a := range asks {
					i, ok := refOf[key{s.File, a.q}]
					if !ok {
						t.Fatalf("%s %q: no PyTorch answer in pytorch.json", s.File, a.q)
					}
					r := ref.Items[i]
					c.Reset() // one fresh conversation per question, as PyTorch was asked
					turn, err := c.Ask(context.Background(), a.q, generate.Stream{})
					if err != nil {
						t.Fatalf("%s %q: %v", s.File, a.q, err)
					}
					if !slices.Equal(turn.PromptIDs, r.PromptIDs) {
						t.Fatalf("%s: prompt %q tokenizes to %v, PyTorch was given %v", s.File, turn.Prompt, turn.PromptIDs, r.PromptIDs)
					}
					total[a.typ]++
					if turn.Answer == a.want {
						right[a.typ]++
					} else if len(wrong) < 12 {
						wrong = append(wrong, fmt.Sprintf("%s %s %q: %q, want %q (PyTorch %q)", s.File, a.typ, a.q, turn.Answer, a.want, r.Got))
					}
					if turn.Answer == r.Got {
						agree++
					}
				}
			}
			n := 0
			types := make([]string, 0, len(total))
			for typ := range total {
				types = append(types, typ)
			}
			slices.Sort(types)
			for _, typ := range types {
				tot := total[typ]
				n += tot
				acc := 100 * float64(right[typ]) / float64(tot)
				want := 100 * ref.Accuracy[typ]
				t.Logf("%-9s engine %6.2f%%  PyTorch %6.2f%%  (%d questions)", typ, acc, want, tot)
				if math.Abs(acc-want) > maxGap {
					t.Errorf("%s: accuracy %.2f%% is more than %.0f points from PyTorch's %.2f%%", typ, acc, maxGap, want)
				}
			}
			t.Logf("%d of %d answers identical to PyTorch's; %d scenes in %v", agree, n, len(scenes), time.Since(start).Round(time.Millisecond))
			if t.Failed() {
				for _, w := range wrong {
					t.Log("  " + w)
				}
			}
		})
	}
}

func readScenes(t *testing.T, path string) []scene {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []scene
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var s scene
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 200 {
		t.Fatalf("%s: %d scenes, want at least 200", path, len(out))
	}
	return out
}

func readReference(t *testing.T, path string) reference {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r reference
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return r
}
