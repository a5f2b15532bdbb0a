package lm

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// fakeModel "predicts" a fixed script: after n tokens fed it puts all
// weight on script[n]. Token pieces are given as bytes so tests can split
// characters across tokens.
type fakeModel struct {
	pieces [][]byte
	eog    int32
	script []int32
}

func (m *fakeModel) Info() Info {
	return Info{Arch: "fake", NVocab: len(m.pieces), NCtx: 64, BOS: -1, EOS: m.eog, DecoderStart: -1}
}
func (m *fakeModel) Tokenize(string, bool) ([]int32, error) { return nil, errors.New("no") }
func (m *fakeModel) TokenBytes(id int32) []byte             { return m.pieces[id] }
func (m *fakeModel) IsEOG(id int32) bool                    { return id == m.eog }
func (m *fakeModel) TokenEmbeddings([]int32) ([]float32, error) {
	return nil, errors.New("no")
}
func (m *fakeModel) NewContext(o ContextOptions) (Context, error) {
	n := o.NCtx
	if n == 0 {
		n = 64
	}
	return &fakeContext{m: m, nCtx: n}, nil
}
func (m *fakeModel) Close() error { return nil }

type fakeContext struct {
	m      *fakeModel
	nCtx   int
	fed    []int32
	logits []float32
	stats  Stats
	onFeed func()
}

func (c *fakeContext) NCtx() int { return c.nCtx }
func (c *fakeContext) Pos() int  { return len(c.fed) }
func (c *fakeContext) AppendEmbeddings([]float32, int, bool) error {
	return errors.New("no")
}
func (c *fakeContext) AppendTokens(ids []int32, all bool) error {
	if len(c.fed)+len(ids) > c.nCtx {
		return ErrContextFull
	}
	c.fed = append(c.fed, ids...)
	c.stats.TokensIn += len(ids)
	c.stats.Evals++
	c.logits = make([]float32, len(c.m.pieces))
	next := c.m.eog
	if n := len(c.fed); n-1 < len(c.m.script) {
		next = c.m.script[n-1]
	}
	c.logits[next] = 10
	if c.onFeed != nil {
		c.onFeed()
	}
	return nil
}
func (c *fakeContext) Logits(i int) []float32 {
	if i != -1 {
		return nil
	}
	return c.logits
}
func (c *fakeContext) Truncate(pos int) error { c.fed = c.fed[:pos]; return nil }
func (c *fakeContext) Encode([]float32, int) error {
	return errors.New("no")
}
func (c *fakeContext) NewSampler(p SamplingParams) (Sampler, error) {
	return NewGoSampler(p, len(c.m.pieces))
}
func (c *fakeContext) Stats() Stats { return c.stats }
func (c *fakeContext) Close() error { return nil }

// The pieces spell "héllo 🙂!" with the é and the emoji split over tokens.
func newFake() *fakeModel {
	smile := []byte("🙂")
	e := []byte("é")
	return &fakeModel{
		pieces: [][]byte{{}, []byte("h"), e[:1], e[1:], []byte("llo "), smile[:1], smile[1:3], smile[3:], []byte("!"), {0xff}},
		eog:    0,
		// after the 1-token prompt: h é(2 parts) llo emoji(3 parts) ! EOG
		script: []int32{1, 2, 3, 4, 5, 6, 7, 8},
	}
}

func start(t *testing.T, m *fakeModel, nCtx int) (*fakeContext, Sampler) {
	t.Helper()
	ci, _ := m.NewContext(ContextOptions{NCtx: nCtx})
	c := ci.(*fakeContext)
	if err := c.AppendTokens([]int32{8}, false); err != nil { // the "prompt"
		t.Fatal(err)
	}
	s, err := c.NewSampler(GreedyParams())
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

func TestGenerateStreamsWholeCharacters(t *testing.T) {
	m := newFake()
	c, s := start(t, m, 64)
	var chunks []string
	r, err := GenerateWith(context.Background(), m, c, s, GenerateOptions{MaxTokens: 100, OnText: func(s string) {
		if !utf8.ValidString(s) || s == "" {
			t.Errorf("chunk %q is not whole UTF-8 text", s)
		}
		chunks = append(chunks, s)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(chunks, ""); got != "héllo 🙂!" || r.Text != got {
		t.Errorf("text %q (result %q), want %q", got, r.Text, "héllo 🙂!")
	}
	if r.Stop != StopEOG || !equalIDs(r.IDs, m.script) {
		t.Errorf("stop %v ids %v, want EOG after %v", r.Stop, r.IDs, m.script)
	}
	// Every returned id was fed; the EOG was not.
	if !equalIDs(c.fed[1:], r.IDs) {
		t.Errorf("fed %v, returned %v", c.fed[1:], r.IDs)
	}
	if r.FirstToken <= 0 || r.Elapsed < r.FirstToken {
		t.Errorf("timings %v %v", r.FirstToken, r.Elapsed)
	}
}

func TestGenerateStops(t *testing.T) {
	m := newFake()
	cases := []struct {
		name    string
		max     int
		nCtx    int
		cancel  int // cancel after this many tokens fed (0: never)
		wantN   int
		stop    StopReason
		wantErr error
	}{
		{"max tokens", 3, 64, 0, 3, StopMaxTokens, nil},
		{"zero", 0, 64, 0, 0, StopMaxTokens, nil},
		{"eog", 50, 64, 0, 8, StopEOG, nil},
		{"context full", 50, 5, 0, 4, StopContextFull, ErrContextFull},
		{"cancelled", 50, 64, 3, 2, StopCancelled, context.Canceled},
	}
	for _, tc := range cases {
		c, s := start(t, m, tc.nCtx)
		ctx, cancel := context.WithCancel(context.Background())
		if tc.cancel > 0 {
			c.onFeed = func() {
				if len(c.fed) == tc.cancel {
					cancel()
				}
			}
		}
		var text strings.Builder
		r, err := GenerateWith(ctx, m, c, s, GenerateOptions{MaxTokens: tc.max, OnText: func(s string) { text.WriteString(s) }})
		cancel()
		if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.wantErr)
		}
		if len(r.IDs) != tc.wantN || r.Stop != tc.stop {
			t.Errorf("%s: %d tokens, stop %v; want %d, %v", tc.name, len(r.IDs), r.Stop, tc.wantN, tc.stop)
		}
		if !equalIDs(c.fed[1:], r.IDs) {
			t.Errorf("%s: fed %v, returned %v", tc.name, c.fed[1:], r.IDs)
		}
		// What was streamed is what was returned, and whole characters
		// (a cut inside the é gives U+FFFD at the flush, never half a byte
		// sequence).
		if text.String() != r.Text || !utf8.ValidString(r.Text) {
			t.Errorf("%s: streamed %q, result %q", tc.name, text.String(), r.Text)
		}
	}
	// Generate (the short form) agrees.
	c, s := start(t, m, 64)
	ids, err := Generate(context.Background(), m, c, s, 2, nil)
	if err != nil || !equalIDs(ids, m.script[:2]) {
		t.Errorf("Generate = %v, %v", ids, err)
	}
}

func TestGenerateOnStep(t *testing.T) {
	m := newFake()
	c, s := start(t, m, 64)
	var steps []int32
	_, err := GenerateWith(context.Background(), m, c, s, GenerateOptions{MaxTokens: 100, OnStep: func(step int, logits []float32, id int32) {
		if step != len(steps) || argmax(logits) != id {
			t.Errorf("step %d: id %d, argmax %d", step, id, argmax(logits))
		}
		steps = append(steps, id)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if want := append(append([]int32{}, m.script...), m.eog); !equalIDs(steps, want) {
		t.Errorf("steps %v, want %v (the EOG included)", steps, want)
	}
}

// A sampler that finds no logits must give an error, not a panic.
func TestGenerateNoLogits(t *testing.T) {
	m := newFake()
	ci, _ := m.NewContext(ContextOptions{})
	s, _ := ci.NewSampler(GreedyParams())
	if _, err := Generate(context.Background(), m, ci, s, 5, nil); err == nil || !strings.Contains(err.Error(), "no logits") {
		t.Errorf("err = %v", err)
	}
}

func TestOpenUnknown(t *testing.T) {
	if _, err := Open("testdata/none.gguf", OpenOptions{}); err == nil {
		t.Error("Open of a missing file did not fail")
	}
}

func TestStopReasonString(t *testing.T) {
	for r, want := range map[StopReason]string{StopEOG: "end", StopMaxTokens: "max tokens", StopCancelled: "stopped", StopContextFull: "context full", StopNone: "none"} {
		if r.String() != want {
			t.Errorf("%d: %q", r, r.String())
		}
	}
}

func TestDefaultThreads(t *testing.T) {
	if n := DefaultThreads(); n < 1 || n > MaxDefaultThreads {
		t.Errorf("DefaultThreads() = %d", n)
	}
}

func TestStopReasonText(t *testing.T) {
	for _, r := range []StopReason{StopNone, StopEOG, StopMaxTokens, StopCancelled, StopContextFull} {
		b, err := r.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back StopReason
		if err := back.UnmarshalText(b); err != nil || back != r {
			t.Errorf("%v: %q read back as %v, %v", r, b, back, err)
		}
	}
	var r StopReason
	if err := r.UnmarshalText([]byte("exploded")); err == nil {
		t.Error("an unknown reason was accepted")
	}
}
