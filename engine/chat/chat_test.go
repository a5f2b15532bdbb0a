package chat_test

import (
	"context"
	"errors"
	"fmt"
	"image"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/blip2chat/blip2chat/engine/chat"
	"github.com/blip2chat/blip2chat/engine/imageprep"
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/engine/model"
	"github.com/blip2chat/blip2chat/engine/model/modeltest"
)

func TestMain(m *testing.M) { modeltest.Main(m) }

// recModel wraps a language model to record the logits every decoding step
// reads: the first step of a turn sees the last prompt position's logits.
type recModel struct {
	lm.Model
	sampled [][]float32
	last    *recCtx
}

func (m *recModel) NewContext(o lm.ContextOptions) (lm.Context, error) {
	c, err := m.Model.NewContext(o)
	if err != nil {
		return nil, err
	}
	m.last = &recCtx{Context: c, m: m}
	return m.last, nil
}

type recCtx struct {
	lm.Context
	m *recModel
}

// Logits records the last row's logits, which the driver reads once per
// step.
func (c *recCtx) Logits(i int) []float32 {
	l := c.Context.Logits(i)
	if i == -1 {
		c.m.sampled = append(c.m.sampled, slices.Clone(l))
	}
	return l
}

// cases are the golden cases of every language model family.
func cases(t *testing.T) []modeltest.Case {
	return modeltest.Cases(t, "llama", "t5", "opt")
}

type setup struct {
	m    *model.Model
	rec  *recModel
	chat *chat.Chat
	c    modeltest.Case
}

// open converts the case, opens it with exact settings and makes a chat
// over the recording wrapper.
func open(t *testing.T, c modeltest.Case, s chat.Settings) *setup {
	t.Helper()
	dir := modeltest.ModelDir(t, c, "f32")
	m, err := model.Open(dir, model.Options{LlamaLib: modeltest.LibDir(t), Exact: true, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	rec := &recModel{Model: m.LM}
	s.Exact, s.Threads = true, 1
	ch, err := chat.New(m.Vision, rec, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	return &setup{m: m, rec: rec, chat: ch, c: c}
}

// greedy are the settings of most tests: greedy answers of at most
// maxTokens tokens, in a context of nCtx positions (0: the model's).
func greedy(maxTokens, nCtx int) chat.Settings {
	s := chat.DefaultSettings()
	s.MaxTokens, s.NCtx = maxTokens, nCtx
	return s
}

// question recovers the user's question from the golden prompt text.
func question(c modeltest.Case) string {
	p := c.Golden.Prompt
	if c.Family == "blip-2" {
		p = strings.TrimSuffix(strings.TrimPrefix(p, "Question: "), " Answer:")
	}
	return p
}

func imagePath(t *testing.T, c modeltest.Case) string {
	return filepath.Join(modeltest.GoldenDir(t), "images", c.Golden.Image)
}

// loadImage decodes an image file as the app does.
func loadImage(t *testing.T, path string) image.Image {
	t.Helper()
	img, err := imageprep.Load(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// setImageFile sets the image file at path, named by its path in the
// feature cache.
func setImageFile(t *testing.T, ch *chat.Chat, path string) error {
	t.Helper()
	return ch.SetImage(context.Background(), loadImage(t, path), path)
}

func goldenSoft(t *testing.T, c modeltest.Case) ([]float32, int) {
	v, shape := modeltest.Float32(t, c.Tensors(t), "language_model_inputs")
	return v, shape[1]
}

// TestGolden runs each golden case end to end: image file -> imageprep ->
// vision -> chat -> language model, with the family's template, and checks
// the soft tokens, the prompt ids, the logits of the last prompt position
// and the greedy answer against transformers.
func TestGolden(t *testing.T) {
	for _, c := range cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			s := open(t, c, greedy(len(c.Golden.GreedyIDs), 0))
			if err := setImageFile(t, s.chat, imagePath(t, c)); err != nil {
				t.Fatal(err)
			}
			turn, err := s.chat.Ask(context.Background(), question(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			g := c.Golden
			if fmt.Sprint(turn.PromptIDs) != fmt.Sprint(g.PromptIDs) {
				t.Errorf("prompt %q ids\n got %v\nwant %v", turn.Prompt, turn.PromptIDs, g.PromptIDs)
			}
			steps := g.ComparableSteps()
			if len(turn.IDs) < steps || fmt.Sprint(turn.IDs[:steps]) != fmt.Sprint(g.GreedyIDs[:steps]) {
				t.Errorf("greedy ids %v, want %v for the first %d steps", turn.IDs, g.GreedyIDs, steps)
			}
			// The first generated token was sampled from the last prompt
			// position (decoder-only) or the decoder's first step (T5).
			st := c.Tensors(t)
			var want []float32
			tol := 1e-4 // the vision side's f32 error (~1e-5) passes through the LLM
			if c.TextType == "t5" {
				all, shape := modeltest.Float32(t, st, "decoder_logits")
				want = all[:shape[1]]
				tol = 5e-2
			} else {
				all, shape := modeltest.Float32(t, st, "logits")
				want = all[(shape[0]-1)*shape[1]:]
			}
			d := modeltest.MaxAbsDiff(s.rec.sampled[0], want)
			t.Logf("%s: answer %q %v; first-step logits within %.3g of golden", c.Name, turn.Answer, turn.IDs, d)
			if d > tol {
				t.Errorf("first-step logits differ from golden by %.3g > %g", d, tol)
			}
			if turn.Timings.Tokens != len(turn.IDs) || turn.Timings.FirstToken <= 0 || turn.Timings.PrefillTokens == 0 {
				t.Errorf("timings %+v", turn.Timings)
			}
			if !utf8.ValidString(turn.Answer) {
				t.Errorf("answer %q is not UTF-8", turn.Answer)
			}
		})
	}
}

// TestTwoTurns: the second turn of a decoder-only conversation passes only
// the tokens the KV cache lacks, and its logits equal a from-scratch run
// over the whole two-turn prompt (exact settings).
func TestTwoTurns(t *testing.T) {
	for _, c := range cases(t) {
		if c.TextType == "t5" {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			s := open(t, c, greedy(6, 0))
			soft, q := goldenSoft(t, c)
			if err := s.chat.SetSoftTokens(soft, q); err != nil {
				t.Fatal(err)
			}
			t1, err := s.chat.Ask(context.Background(), question(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			cached := append(slices.Clone(t1.PromptIDs), t1.IDs...)
			s.rec.sampled = nil
			t2, err := s.chat.Ask(context.Background(), "and what else is there?", nil)
			if err != nil {
				t.Fatal(err)
			}
			k := 0
			for k < len(cached) && k < len(t2.PromptIDs) && cached[k] == t2.PromptIDs[k] {
				k++
			}
			t.Logf("turn 1 %q -> %q; turn 2 prompt %q: %d tokens, %d shared with the cache, %d passed",
				t1.Prompt, t1.Answer, t2.Prompt, len(t2.PromptIDs), k, t2.Timings.PrefillTokens)
			if k < len(t1.PromptIDs) {
				t.Errorf("the second prompt shares only %d tokens with the first turn's %d", k, len(t1.PromptIDs))
			}
			if want := len(t2.PromptIDs) - k; t2.Timings.PrefillTokens != want {
				t.Errorf("turn 2 passed %d rows to the model, want only the %d new tokens", t2.Timings.PrefillTokens, want)
			}
			// From scratch over the same prompt.
			ids, err := s.m.LM.Tokenize(t2.Prompt, true)
			if err != nil || !slices.Equal(ids, t2.PromptIDs) {
				t.Fatalf("the two-turn prompt tokenizes to %v (%v), turn has %v", ids, err, t2.PromptIDs)
			}
			fresh, err := s.m.LM.NewContext(lm.ContextOptions{Exact: true, Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer fresh.Close()
			if err := fresh.AppendEmbeddings(soft, q, false); err != nil {
				t.Fatal(err)
			}
			if err := fresh.AppendTokens(ids, false); err != nil {
				t.Fatal(err)
			}
			d := modeltest.MaxAbsDiff(s.rec.sampled[0], fresh.Logits(-1))
			t.Logf("turn 2 logits vs from scratch: max |diff| %.3g", d)
			if d > 1e-4 {
				t.Errorf("turn 2 logits differ from a from-scratch run by %.3g", d)
			}
			if u := s.chat.Usage(); u.Used != q+len(t2.PromptIDs)+len(t2.IDs) || u.Total <= u.Used {
				t.Errorf("usage %+v after %d soft, %d prompt, %d answer", u, q, len(t2.PromptIDs), len(t2.IDs))
			}
			if n, err := s.chat.PromptTokens("next?"); err != nil || n <= q+len(t2.PromptIDs) {
				t.Errorf("PromptTokens = %d, %v", n, err)
			}
		})
	}
}

// TestOverflow: with a small context the oldest turns leave the prompt, the
// soft tokens stay (decoder-only: they are not evaluated again) and answers
// keep coming.
func TestOverflow(t *testing.T) {
	for _, c := range cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			soft, q := goldenSoft(t, c)
			const maxTokens = 6
			s := open(t, c, greedy(maxTokens, q+60))
			if err := s.chat.SetSoftTokens(soft, q); err != nil {
				t.Fatal(err)
			}
			questions := []string{"what is in the image?", "what color is it?", "where is it?", "is it happy?", "why is that?", "what next?"}
			dropped := -1
			for i, qu := range questions {
				turn, err := s.chat.Ask(context.Background(), qu, nil)
				if err != nil {
					t.Fatalf("turn %d: %v", i, err)
				}
				u := s.chat.Usage()
				t.Logf("turn %d: %d prompt tokens, %d generated (%v), dropped %d, in context from turn %d, usage %d/%d",
					i, len(turn.PromptIDs), len(turn.IDs), turn.Stop, turn.Dropped, s.chat.InContext(), u.Used, u.Total)
				if u.Used > u.Total {
					t.Errorf("usage %+v", u)
				}
				if len(turn.IDs) == 0 && turn.Stop != lm.StopEOG {
					t.Errorf("turn %d generated nothing (%v)", i, turn.Stop)
				}
				if !strings.HasSuffix(turn.Prompt, chat.BLIP2Template.Turn[len("Question: {prompt}"):]) && c.Family == "blip-2" {
					t.Errorf("turn %d prompt %q lost the question", i, turn.Prompt)
				}
				if turn.Dropped > 0 && dropped < 0 {
					dropped = i
					// The dropped turns' questions are gone from the prompt.
					for _, old := range s.chat.Turns()[:s.chat.InContext()] {
						if strings.Contains(turn.Prompt, old.Question) {
							t.Errorf("dropped question %q still in the prompt %q", old.Question, turn.Prompt)
						}
					}
				}
			}
			if dropped < 0 {
				t.Fatal("no turn was dropped: the test's context is too large")
			}
			if s.chat.InContext() == 0 || len(s.chat.Turns()) != len(questions) {
				t.Errorf("InContext %d, %d turns", s.chat.InContext(), len(s.chat.Turns()))
			}
			if c.TextType != "t5" {
				// The soft tokens went in once: dropping turns re-evaluated
				// only text.
				if st := s.rec.stats(t); st.EmbeddingRowsIn != q {
					t.Errorf("soft token rows passed %d times in total, want once (%d)", st.EmbeddingRowsIn, q)
				}
			}
		})
	}
}

// stats returns the chat context's counters (the recorder sees contexts
// only through NewContext; the chat holds one).
func (m *recModel) stats(t *testing.T) lm.Stats {
	t.Helper()
	if m.last == nil {
		t.Fatal("no context made")
	}
	return m.last.Stats()
}

// TestRetryAndCancel: Retry regenerates the last answer from the cache cut
// back to before it; cancelling keeps what was generated, marked stopped.
func TestRetryAndCancel(t *testing.T) {
	for _, c := range cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			s := open(t, c, greedy(8, 0))
			soft, q := goldenSoft(t, c)
			if err := s.chat.SetSoftTokens(soft, q); err != nil {
				t.Fatal(err)
			}
			t1, err := s.chat.Ask(context.Background(), question(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			r, err := s.chat.Retry(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.chat.Turns()) != 1 || !slices.Equal(r.IDs, t1.IDs) {
				t.Errorf("retry: %d turns, ids %v, first answer %v", len(s.chat.Turns()), r.IDs, t1.IDs)
			}
			if c.TextType != "t5" && r.Timings.PrefillTokens != 1 {
				t.Errorf("retry passed %d prompt rows, want 1 (the last prompt token, for its logits)", r.Timings.PrefillTokens)
			}

			// Cancel once the first text arrives.
			ctx, cancel := context.WithCancel(context.Background())
			var streamed strings.Builder
			turn, err := s.chat.Ask(ctx, "and what else?", func(text string) {
				streamed.WriteString(text)
				cancel()
			})
			cancel()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled Ask returned %v", err)
			}
			if turn.Stop != lm.StopCancelled || !turn.Stopped() || len(s.chat.Turns()) != 2 {
				t.Errorf("cancelled turn: stop %v, %d turns", turn.Stop, len(s.chat.Turns()))
			}
			if got := s.chat.Turns()[1]; got.Answer != streamed.String() || len(got.IDs) == 0 {
				t.Errorf("kept answer %q (%d ids), streamed %q", got.Answer, len(got.IDs), streamed.String())
			}
			// The conversation goes on, consistently with a fresh run.
			s.rec.sampled = nil
			t3, err := s.chat.Ask(context.Background(), "ok?", nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.TextType != "t5" {
				fresh, _ := s.m.LM.NewContext(lm.ContextOptions{Exact: true, Threads: 1})
				defer fresh.Close()
				fresh.AppendEmbeddings(soft, q, false)
				if err := fresh.AppendTokens(t3.PromptIDs, false); err != nil {
					t.Fatal(err)
				}
				if d := modeltest.MaxAbsDiff(s.rec.sampled[0], fresh.Logits(-1)); d > 1e-4 {
					t.Errorf("after a cancelled turn, logits differ from a fresh run by %.3g", d)
				}
			}
			saved := slices.Clone(s.chat.Turns())
			s.chat.Reset()
			if len(s.chat.Turns()) != 0 || s.chat.InContext() != 0 {
				t.Error("Reset kept turns")
			}
			// The turns before "ok?", restored, make its prompt again.
			if err := s.chat.Restore(saved[:len(saved)-1]); err != nil {
				t.Fatal(err)
			}
			text, ids, err := s.chat.NextPrompt("ok?")
			if err != nil || len(s.chat.Turns()) != len(saved)-1 {
				t.Fatal(err)
			}
			if !slices.Equal(ids, t3.PromptIDs) {
				t.Errorf("after Restore the prompt is %q %v, was %q %v", text, ids, t3.Prompt, t3.PromptIDs)
			}
			if err := s.chat.Restore([]chat.Turn{{Question: "\xff"}}); err == nil {
				t.Error("Restore accepted invalid UTF-8")
			}
			if _, err := (&chat.Chat{}).Retry(context.Background(), nil); err == nil {
				t.Error("Retry with no turns did not fail")
			}
		})
	}
}

// TestInstructBLIP: each new instruction recomputes the Q-Former (the soft
// tokens change, so the whole prompt is evaluated again); the image's ViT
// features are cached.
func TestInstructBLIP(t *testing.T) {
	for _, c := range cases(t) {
		if c.Family != "instructblip" {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			s := open(t, c, greedy(4, 0))
			img := imagePath(t, c)
			if err := setImageFile(t, s.chat, img); err != nil {
				t.Fatal(err)
			}
			first := s.chat.ImageTime()
			t1, err := s.chat.Ask(context.Background(), question(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			t2, err := s.chat.Ask(context.Background(), "Describe the colors.", nil)
			if err != nil {
				t.Fatal(err)
			}
			q := s.m.Vision.Info().NumQueryTokens
			if t1.Timings.Vision <= 0 || t2.Timings.Vision <= 0 {
				t.Errorf("Q-Former not run per instruction: %v %v", t1.Timings.Vision, t2.Timings.Vision)
			}
			if t2.Timings.PrefillTokens != q+len(t2.PromptIDs) {
				t.Errorf("turn 2 passed %d rows, want all %d (new soft tokens)", t2.Timings.PrefillTokens, q+len(t2.PromptIDs))
			}
			// Same image again: features from the cache.
			if err := setImageFile(t, s.chat, img); err != nil {
				t.Fatal(err)
			}
			if again := s.chat.ImageTime(); again*2 > first {
				t.Errorf("image time %v, then %v: the ViT features were not cached", first, again)
			}
			if len(s.chat.Turns()) != 0 {
				t.Error("SetImage did not start a new conversation")
			}
			// The Q-Former of a new instruction stops with the caller's
			// context (Esc in the app): no turn, and the next Ask works.
			ctx, cancel := context.WithCancel(context.Background())
			reached := false
			s.m.Vision.SetTrace(func(name string, _, _ int, _ []float32) {
				if name == "qformer_hidden_states.1" {
					reached = true
					cancel()
				}
			})
			_, err = s.chat.Ask(ctx, "Describe the shapes.", nil)
			s.m.Vision.SetTrace(nil)
			cancel()
			if !errors.Is(err, context.Canceled) || !reached || len(s.chat.Turns()) != 0 {
				t.Errorf("Ask cancelled in the Q-Former: %v (reached %v), %d turns", err, reached, len(s.chat.Turns()))
			}
			if _, err := s.chat.Ask(context.Background(), "Describe the shapes.", nil); err != nil || len(s.chat.Turns()) != 1 {
				t.Errorf("Ask after the cancel: %v, %d turns", err, len(s.chat.Turns()))
			}
		})
	}
}

// TestCaption: an empty question gives the caption prompt (BLIP-2: the
// soft tokens and only what the tokenizer adds).
func TestCaption(t *testing.T) {
	for _, c := range cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			s := open(t, c, greedy(3, 0))
			soft, q := goldenSoft(t, c)
			if err := s.chat.SetSoftTokens(soft, q); err != nil {
				t.Fatal(err)
			}
			turn, err := s.chat.Ask(context.Background(), "", nil)
			if err != nil {
				t.Fatal(err)
			}
			want, err := s.m.LM.Tokenize(s.chat.Template().Caption, true)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(turn.PromptIDs, want) || turn.Prompt != s.chat.Template().Caption {
				t.Errorf("caption prompt %q %v, want %v", turn.Prompt, turn.PromptIDs, want)
			}
			if n, err := s.chat.PromptTokens(""); err != nil || n < q {
				t.Errorf("PromptTokens(\"\") = %d, %v", n, err)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	c := cases(t)[0]
	s := open(t, c, greedy(4, 12))
	if _, err := s.chat.Ask(context.Background(), "hi", nil); !errors.Is(err, chat.ErrNoImage) {
		t.Errorf("Ask without an image = %v", err)
	}
	if err := s.chat.SetImage(context.Background(), nil, ""); err == nil {
		t.Error("SetImage of no image did not fail")
	}
	soft, q := goldenSoft(t, c)
	if err := s.chat.SetSoftTokens(soft[:5], 1); err == nil {
		t.Error("short soft tokens accepted")
	}
	if err := s.chat.SetSoftTokens(soft, q); err != nil {
		t.Fatal(err)
	}
	// 8 soft tokens and a long question do not fit 12 positions.
	_, err := s.chat.Ask(context.Background(), strings.Repeat("what is this thing? ", 5), nil)
	if !errors.Is(err, chat.ErrPromptTooLong) || strings.Contains(err.Error(), "\n") {
		t.Errorf("overlong prompt: %v", err)
	}
	bad := s.chat.Settings()
	bad.Template = "x"
	if err := s.chat.SetSettings(bad); err == nil {
		t.Error("bad template accepted")
	}
	bad = s.chat.Settings()
	bad.TopP = 2
	if err := s.chat.SetSettings(bad); err == nil {
		t.Error("bad sampling accepted")
	}
}
