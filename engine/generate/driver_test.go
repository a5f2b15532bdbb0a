package generate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/blip2chat/blip2chat/engine/lm"
)

// fakeModel "predicts" a fixed script: after n+1 tokens fed (soft tokens
// not counted) its logits are 10 for script[n], 1 for the others. Token pieces are given as bytes so tests can split
// characters across tokens. With encDec it is an encoder-decoder model
// (T5-like) whose decoder starts from token 0; with nEmbd > 0 it takes
// soft tokens (decoder-only) of that width.
type fakeModel struct {
	pieces [][]byte
	eog    int32
	script []int32
	nEmbd  int
	encDec bool
	calls  []string
}

func (m *fakeModel) Info() lm.Info {
	return lm.Info{Arch: "fake", NVocab: len(m.pieces), NCtx: 64, NEmbd: m.nEmbd, BOS: -1, EOS: m.eog,
		DecoderStart: 0, EncoderDecoder: m.encDec}
}
func (m *fakeModel) Tokenize(string, bool) ([]int32, error) { return nil, errors.New("no") }
func (m *fakeModel) TokenBytes(id int32) []byte             { return m.pieces[id] }
func (m *fakeModel) Piece(id int32) string                  { return string(m.pieces[id]) }
func (m *fakeModel) IsEOG(id int32) bool                    { return id == m.eog }
func (m *fakeModel) TokenEmbeddings(ids []int32) ([]float32, error) {
	m.calls = append(m.calls, fmt.Sprintf("embed %v", ids))
	return make([]float32, len(ids)*m.nEmbd), nil
}
func (m *fakeModel) NewContext(o lm.ContextOptions) (lm.Context, error) {
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
	fed    []int32 // tokens, -1 for an embedding row
	logits [][]float32
	stats  lm.Stats
	onFeed func()
}

func (c *fakeContext) NCtx() int { return c.nCtx }
func (c *fakeContext) Pos() int  { return len(c.fed) }
func (c *fakeContext) AppendEmbeddings(rows []float32, n int, all bool) error {
	if c.m.encDec || n <= 0 || len(rows) != n*c.m.nEmbd {
		return errors.New("bad embeddings")
	}
	c.m.calls = append(c.m.calls, fmt.Sprintf("soft %d", n))
	c.stats.EmbeddingRowsIn += n
	return c.feed(slices.Repeat([]int32{-1}, n), all)
}
func (c *fakeContext) AppendTokens(ids []int32, all bool) error {
	c.m.calls = append(c.m.calls, fmt.Sprintf("tokens %v", ids))
	c.stats.TokensIn += len(ids)
	return c.feed(ids, all)
}
func (c *fakeContext) feed(ids []int32, all bool) error {
	if len(c.fed)+len(ids) > c.nCtx {
		return lm.ErrContextFull
	}
	c.stats.Evals++
	c.logits = c.logits[:0]
	for i := range ids {
		c.fed = append(c.fed, ids[i])
		if !all && i < len(ids)-1 {
			continue
		}
		l := slices.Repeat([]float32{1}, len(c.m.pieces))
		next := c.m.eog
		if n := len(c.fed) - 1 - c.soft(); n >= 0 && n < len(c.m.script) {
			next = c.m.script[n]
		}
		l[next] = 10
		c.logits = append(c.logits, l)
	}
	if c.onFeed != nil {
		c.onFeed()
	}
	return nil
}

// soft is the number of embedding rows fed: the script counts tokens.
func (c *fakeContext) soft() int {
	n := 0
	for _, id := range c.fed {
		if id < 0 {
			n++
		}
	}
	return n
}

func (c *fakeContext) Logits(i int) []float32 {
	if len(c.logits) == 0 {
		return nil
	}
	if i < 0 {
		i += len(c.logits)
	}
	if i < 0 || i >= len(c.logits) {
		return nil
	}
	return c.logits[i]
}
func (c *fakeContext) Truncate(pos int) error {
	c.m.calls = append(c.m.calls, fmt.Sprintf("truncate %d", pos))
	c.fed, c.logits = c.fed[:pos], nil
	return nil
}
func (c *fakeContext) Encode(rows []float32, n int) error {
	if !c.m.encDec || len(rows) != n*c.m.nEmbd {
		return errors.New("bad encode")
	}
	c.m.calls = append(c.m.calls, fmt.Sprintf("encode %d", n))
	c.stats.EncoderRowsIn += n
	c.fed, c.logits = nil, nil
	return nil
}
func (c *fakeContext) Stats() lm.Stats { return c.stats }
func (c *fakeContext) Close() error    { return nil }

// The pieces spell "héllo 🙂!" with the é and the emoji split over tokens;
// token 9 is " " and token 10 a byte that is no text.
func newFake() *fakeModel {
	smile := []byte("🙂")
	e := []byte("é")
	return &fakeModel{
		pieces: [][]byte{{}, []byte("h"), e[:1], e[1:], []byte("llo "), smile[:1], smile[1:3], smile[3:], []byte("!"), []byte(" "), {0xff}},
		eog:    0,
		// after the 1-token prompt: h é(2 parts) llo emoji(3 parts) ! EOG
		script: []int32{1, 2, 3, 4, 5, 6, 7, 8},
	}
}

// start prefills a one-token prompt (the script starts after it).
func start(t *testing.T, m *fakeModel, nCtx int) (*fakeContext, *Driver) {
	t.Helper()
	ci, _ := m.NewContext(lm.ContextOptions{NCtx: nCtx})
	c := ci.(*fakeContext)
	d := New(m, c)
	if err := d.Prefill(context.Background(), Prompt{IDs: []int32{9}}, nil); err != nil {
		t.Fatal(err)
	}
	return c, d
}

func greedyOptions(maxTokens int) Options {
	o := Options{Params: DefaultParams()}
	o.MaxTokens = maxTokens
	return o
}

func TestDecodeStreamsWholeCharacters(t *testing.T) {
	m := newFake()
	c, d := start(t, m, 64)
	var chunks []string
	o := greedyOptions(100)
	o.Stream.Text = func(s string) {
		if !utf8.ValidString(s) || s == "" {
			t.Errorf("chunk %q is not whole UTF-8 text", s)
		}
		chunks = append(chunks, s)
	}
	r, err := d.Decode(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(chunks, ""); got != "héllo 🙂!" || r.Text != got {
		t.Errorf("text %q (result %q), want %q", got, r.Text, "héllo 🙂!")
	}
	if want := m.script; r.Stop != lm.StopEOG || !slices.Equal(r.IDs, want) {
		t.Errorf("stop %v ids %v, want EOG after %v", r.Stop, r.IDs, want)
	}
	// Every returned id was fed; the EOG was not.
	if !slices.Equal(c.fed[1:], r.IDs) {
		t.Errorf("fed %v, returned %v", c.fed[1:], r.IDs)
	}
	if r.FirstToken <= 0 || r.Decode < r.FirstToken {
		t.Errorf("timings %v %v", r.FirstToken, r.Decode)
	}
}

// The first token's leading space (SentencePiece's word mark) is not part
// of the answer, in the stream or the result.
func TestDecodeTrimsLeadingSpace(t *testing.T) {
	m := newFake()
	m.script = []int32{9, 9, 1, 9, 8}
	_, d := start(t, m, 64)
	var text strings.Builder
	o := greedyOptions(100)
	o.Stream.Text = func(s string) { text.WriteString(s) }
	r, err := d.Decode(context.Background(), o)
	if err != nil || r.Text != "h !" || text.String() != r.Text || len(r.IDs) != 5 {
		t.Errorf("text %q, streamed %q, ids %v, %v", r.Text, text.String(), r.IDs, err)
	}
}

func TestDecodeStops(t *testing.T) {
	cases := []struct {
		name    string
		max     int
		nCtx    int
		cancel  int // cancel after this many tokens fed (0: never)
		eos     []int32
		wantN   int
		stop    lm.StopReason
		wantErr error
	}{
		{"max tokens", 3, 64, 0, nil, 3, lm.StopMaxTokens, nil},
		{"zero", 0, 64, 0, nil, 0, lm.StopMaxTokens, nil},
		{"eog", 50, 64, 0, nil, 8, lm.StopEOG, nil},
		{"eos given", 50, 64, 0, []int32{4}, 3, lm.StopEOG, nil},
		{"context full", 50, 5, 0, nil, 4, lm.StopContextFull, lm.ErrContextFull},
		{"cancelled", 50, 64, 3, nil, 2, lm.StopCancelled, context.Canceled},
	}
	for _, tc := range cases {
		m := newFake()
		c, d := start(t, m, tc.nCtx)
		ctx, cancel := context.WithCancel(context.Background())
		if tc.cancel > 0 {
			c.onFeed = func() {
				if len(c.fed) == tc.cancel {
					cancel()
				}
			}
		}
		var text strings.Builder
		o := greedyOptions(tc.max)
		o.EOS = tc.eos
		o.Stream.Text = func(s string) { text.WriteString(s) }
		r, err := d.Decode(ctx, o)
		cancel()
		if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.wantErr)
		}
		if len(r.IDs) != tc.wantN || r.Stop != tc.stop {
			t.Errorf("%s: %d tokens, stop %v; want %d, %v", tc.name, len(r.IDs), r.Stop, tc.wantN, tc.stop)
		}
		if !slices.Equal(c.fed[1:], r.IDs) {
			t.Errorf("%s: fed %v, returned %v", tc.name, c.fed[1:], r.IDs)
		}
		// What was streamed is what was returned, and whole characters
		// (a cut inside the é gives U+FFFD at the flush, never half a byte
		// sequence).
		if text.String() != r.Text || !utf8.ValidString(r.Text) {
			t.Errorf("%s: streamed %q, result %q", tc.name, text.String(), r.Text)
		}
	}
}

// MinNewTokens keeps the end tokens out until that many tokens exist.
func TestDecodeMinNewTokens(t *testing.T) {
	m := newFake()
	m.script = []int32{1, 0, 0, 0, 8}
	_, d := start(t, m, 64)
	o := greedyOptions(10)
	o.MinNewTokens = 3
	r, err := d.Decode(context.Background(), o)
	if err != nil || len(r.IDs) != 3 || r.IDs[0] != 1 || slices.Contains(r.IDs, m.eog) || r.Stop != lm.StopEOG {
		t.Errorf("ids %v stop %v (%v): want 3 tokens without the end token, then the end", r.IDs, r.Stop, err)
	}
}

func TestDecodeOnStep(t *testing.T) {
	m := newFake()
	_, d := start(t, m, 64)
	var steps []int32
	o := greedyOptions(100)
	o.OnStep = func(step int, logits []float32, id int32) {
		if step != len(steps) || argmax(logits) != id {
			t.Errorf("step %d: id %d, argmax %d", step, id, argmax(logits))
		}
		steps = append(steps, id)
	}
	if _, err := d.Decode(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if want := append(slices.Clone(m.script), m.eog); !slices.Equal(steps, want) {
		t.Errorf("steps %v, want %v (the EOG included)", steps, want)
	}
}

// A context without logits gives an error, not a panic.
func TestDecodeNoLogits(t *testing.T) {
	m := newFake()
	ci, _ := m.NewContext(lm.ContextOptions{})
	if _, err := New(m, ci).Decode(context.Background(), greedyOptions(5)); err == nil || !strings.Contains(err.Error(), "logits") {
		t.Errorf("err = %v", err)
	}
}

// The repetition penalty sees the prompt's tokens: with the prompt token
// penalised, greedy picks another.
func TestDecodePenaltySeesPrompt(t *testing.T) {
	m := newFake()
	m.script = []int32{9}
	for _, c := range []struct {
		penalty float64
		want    int32
	}{{1, 9}, {20, 0}} { // 10/20 < 1: token 0, the first of the others
		_, d := start(t, m, 64)
		o := greedyOptions(1)
		o.RepetitionPenalty = c.penalty
		var got int32 = -1
		o.OnStep = func(_ int, _ []float32, id int32) { got = id }
		if _, err := d.Decode(context.Background(), o); err != nil || got != c.want {
			t.Errorf("penalty %v: picked %d (%v), want %d", c.penalty, got, err, c.want)
		}
	}
}

// TestPrefillReusesCache: a decoder-only conversation's second prompt
// evaluates only what follows the part it shares with the cache; the
// same prompt again evaluates its last token for the logits; other soft
// tokens start over; T5 encodes soft tokens and prompt and starts the
// decoder.
func TestPrefillReusesCache(t *testing.T) {
	m := newFake()
	m.nEmbd = 2
	cx, _ := m.NewContext(lm.ContextOptions{})
	d := New(m, cx)
	soft := []float32{1, 2, 3, 4}
	run := func(p Prompt, o Options) Result {
		t.Helper()
		m.calls = nil
		r, err := d.Run(context.Background(), p, o)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := run(Prompt{Soft: soft, NSoft: 2, IDs: []int32{9, 1}}, greedyOptions(2))
	want := "truncate 0; soft 2; truncate 2; tokens [9 1]; tokens [2]; tokens [3]"
	if got := strings.Join(m.calls, "; "); got != want || r.PromptRows != 4 || r.Text != "é" {
		t.Errorf("first turn: %s (%d rows, %q)\nwant %s", got, r.PromptRows, r.Text, want)
	}
	// The cache holds soft, 9 1 2 3; the next prompt shares 9 1 2.
	r = run(Prompt{Soft: soft, NSoft: 2, IDs: []int32{9, 1, 2, 5}}, greedyOptions(1))
	if got, want := strings.Join(m.calls, "; "), "truncate 5; tokens [5]; tokens [4]"; got != want || r.PromptRows != 1 || d.Used() != 7 {
		t.Errorf("second turn: %s (%d rows, used %d)\nwant %s", got, r.PromptRows, d.Used(), want)
	}
	// The same prompt again (a retry): its last token for the logits.
	run(Prompt{Soft: soft, NSoft: 2, IDs: []int32{9, 1, 2, 5}}, greedyOptions(0))
	if got, want := strings.Join(m.calls, "; "), "truncate 5; tokens [5]"; got != want {
		t.Errorf("retry: %s, want %s", got, want)
	}
	// Only soft tokens, twice: the last one again for its logits.
	run(Prompt{Soft: soft, NSoft: 2}, greedyOptions(0))
	run(Prompt{Soft: soft, NSoft: 2}, greedyOptions(0))
	if got, want := strings.Join(m.calls, "; "), "truncate 1; soft 1"; got != want {
		t.Errorf("soft tokens again: %s, want %s", got, want)
	}
	// Other soft tokens: from the start.
	run(Prompt{Soft: []float32{1, 2, 3, 5}, NSoft: 2, IDs: []int32{9}}, greedyOptions(0))
	if got, want := strings.Join(m.calls, "; "), "truncate 0; soft 2; truncate 2; tokens [9]"; got != want {
		t.Errorf("new soft tokens: %s, want %s", got, want)
	}
	// OnPrompt sees every prompt row, evaluated again.
	var seen []int
	o := greedyOptions(0)
	o.OnPrompt = func(pos int, logits []float32) {
		if len(logits) != len(m.pieces) {
			t.Errorf("row %d: %d logits", pos, len(logits))
		}
		seen = append(seen, pos)
	}
	run(Prompt{Soft: []float32{1, 2, 3, 5}, NSoft: 2, IDs: []int32{9, 1}}, o)
	if fmt.Sprint(seen) != "[0 1 2 3]" {
		t.Errorf("OnPrompt saw rows %v", seen)
	}

	// Too long for the context: refused before anything is evaluated.
	small, _ := m.NewContext(lm.ContextOptions{NCtx: 3})
	m.calls = nil
	_, err := New(m, small).Run(context.Background(), Prompt{Soft: soft, NSoft: 2, IDs: []int32{9}}, greedyOptions(1))
	if !errors.Is(err, ErrPromptTooLong) || len(m.calls) != 0 {
		t.Errorf("overlong prompt: %v, calls %v", err, m.calls)
	}

	// T5.
	m.encDec = true
	cx, _ = m.NewContext(lm.ContextOptions{})
	d = New(m, cx)
	r = run(Prompt{Soft: soft, NSoft: 2, IDs: []int32{9, 1}}, greedyOptions(1))
	if got, want := strings.Join(m.calls, "; "), "embed [9 1]; encode 4; tokens [0]; tokens [1]"; got != want || r.PromptRows != 5 || d.Used() != 4 {
		t.Errorf("T5: %s (%d rows, used %d)\nwant %s", got, r.PromptRows, d.Used(), want)
	}
}

// A cancelled context stops Run before the prefill with StopCancelled.
func TestRunCancelled(t *testing.T) {
	m := newFake()
	cx, _ := m.NewContext(lm.ContextOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, err := New(m, cx).Run(ctx, Prompt{IDs: []int32{9}}, greedyOptions(3))
	if !errors.Is(err, context.Canceled) || r.Stop != lm.StopCancelled || len(m.calls) != 0 {
		t.Errorf("%v, stop %v, calls %v", err, r.Stop, m.calls)
	}
}

func TestNeed(t *testing.T) {
	dec, t5 := lm.Info{}, lm.Info{EncoderDecoder: true}
	for _, c := range []struct {
		info            lm.Info
		rows, max       int
		wantMin, wantAt int
	}{
		{dec, 40, 10, 41, 50}, {dec, 40, 0, 41, 41}, {t5, 40, 10, 40, 40}, {t5, 5, 10, 5, 11},
	} {
		if lo, full := Need(c.info, c.rows, c.max); lo != c.wantMin || full != c.wantAt {
			t.Errorf("Need(%v, %d, %d) = %d, %d; want %d, %d", c.info.EncoderDecoder, c.rows, c.max, lo, full, c.wantMin, c.wantAt)
		}
	}
}

// beamCtx is an lm.Context with several sequences (lm.MultiSeq) whose
// next-token probabilities come from a table keyed by the whole sequence
// ("[9 1]"; uniform where the table has none).
type beamCtx struct {
	nv    int
	nCtx  int
	table map[string]map[int32]float64
	seqs  [][]int32
	calls []string
}

func (c *beamCtx) NCtx() int { return c.nCtx }
func (c *beamCtx) Pos() int  { return len(c.seqs[0]) }
func (c *beamCtx) AppendEmbeddings([]float32, int, bool) error {
	return errors.New("no soft tokens here")
}
func (c *beamCtx) AppendTokens(ids []int32, all bool) error {
	if len(c.seqs) != 1 {
		return errors.New("append with several sequences live")
	}
	if len(c.seqs[0])+len(ids) > c.nCtx {
		return lm.ErrContextFull
	}
	c.calls = append(c.calls, fmt.Sprintf("tokens %v", ids))
	c.seqs[0] = append(c.seqs[0], ids...)
	return nil
}
func (c *beamCtx) Logits(i int) []float32 {
	if i < 0 {
		i += len(c.seqs)
	}
	if i < 0 || i >= len(c.seqs) {
		return nil
	}
	l := make([]float32, c.nv)
	p := c.table[fmt.Sprint(c.seqs[i])]
	for t := range l {
		q, ok := p[int32(t)]
		if p == nil {
			q, ok = 1/float64(c.nv), true
		}
		l[t] = float32(math.Inf(-1))
		if ok {
			l[t] = float32(math.Log(q))
		}
	}
	return l
}
func (c *beamCtx) Truncate(pos int) error {
	if len(c.seqs) != 1 {
		return errors.New("truncate with several sequences live")
	}
	c.calls = append(c.calls, fmt.Sprintf("truncate %d", pos))
	c.seqs[0] = c.seqs[0][:pos]
	return nil
}
func (c *beamCtx) Encode([]float32, int) error { return errors.New("no encoder") }
func (c *beamCtx) Stats() lm.Stats             { return lm.Stats{} }
func (c *beamCtx) Close() error                { return nil }
func (c *beamCtx) Seqs() int                   { return len(c.seqs) }
func (c *beamCtx) AppendEach(ids []int32) error {
	if len(ids) != len(c.seqs) {
		return fmt.Errorf("%d ids for %d sequences", len(ids), len(c.seqs))
	}
	if len(c.seqs[0])+1 > c.nCtx {
		return lm.ErrContextFull
	}
	c.calls = append(c.calls, fmt.Sprintf("each %v", ids))
	for i, id := range ids {
		c.seqs[i] = append(slices.Clone(c.seqs[i]), id)
	}
	return nil
}
func (c *beamCtx) Reorder(parents []int) error {
	next := make([][]int32, len(parents))
	for i, p := range parents {
		next[i] = slices.Clone(c.seqs[p])
	}
	c.seqs = next
	return nil
}

// TestDriverBeamSearch: beam search through the driver streams its best
// hypothesis, returns the sequences with their text, leaves one sequence
// holding the prompt, and the next prompt (which repeats the answer)
// evaluates only what follows the prompt.
func TestDriverBeamSearch(t *testing.T) {
	m := newFake() // 1 "h", 4 "llo ", 8 "!", 9 " "; 0 ends
	table := map[string]map[int32]float64{
		"[9]":       {1: .6, 4: .2, 8: .15, 0: .05},
		"[9 1]":     {4: .7, 0: .3},
		"[9 1 4]":   {8: .9, 0: .1},
		"[9 1 4 8]": {0: 1},
		"[9 4]":     {0: 1},
		"[9 8]":     {0: 1},
	}
	cx := &beamCtx{nv: len(m.pieces), nCtx: 64, seqs: [][]int32{nil}, table: table}
	d := New(m, cx)
	o := greedyOptions(10)
	o.NumBeams, o.NumReturnSequences = 3, 2
	var best []string
	o.Stream.Best = func(s string) { best = append(best, s) }
	o.Stream.Text = func(s string) { t.Errorf("beam search streamed text %q", s) }
	r, err := d.Run(context.Background(), Prompt{IDs: []int32{9}}, o)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.IDs, []int32{1, 4, 8}) || r.Text != "hllo !" || r.End != 0 || r.Stop != lm.StopEOG || len(r.Sequences) != 2 {
		t.Fatalf("answer %v %q end %d stop %v, %d sequences", r.IDs, r.Text, r.End, r.Stop, len(r.Sequences))
	}
	if s := r.Sequences[1]; s.Score > r.Score || s.Text != m.textOf(s.IDs) {
		t.Errorf("second sequence %+v (best %v)", s, r.Score)
	}
	if len(best) == 0 || best[len(best)-1] != r.Text {
		t.Errorf("streamed hypotheses %q, answer %q", best, r.Text)
	}
	if cx.Seqs() != 1 || cx.Pos() != 1 || d.Used() != 4 {
		t.Errorf("after beam search: %d sequences, pos %d, used %d; want 1, 1 (the prompt), 4", cx.Seqs(), cx.Pos(), d.Used())
	}
	// The next turn: prompt, answer, question.
	cx.calls = nil
	next := []int32{9, 1, 4, 8, 9, 4}
	if err := d.Prefill(context.Background(), Prompt{IDs: next}, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(cx.calls, "; "), "truncate 1; tokens [1 4 8 9 4]"; got != want {
		t.Errorf("next prompt: %s, want %s", got, want)
	}

	// Beam search needs a context of several sequences.
	fc, _ := m.NewContext(lm.ContextOptions{})
	single := New(m, fc)
	if _, err := single.Run(context.Background(), Prompt{IDs: []int32{9}}, o); err == nil || !strings.Contains(err.Error(), "one sequence") {
		t.Errorf("beam search on a one-sequence context: %v", err)
	}

	// No room for MaxTokens: the beams stop where the context does.
	cx = &beamCtx{nv: len(m.pieces), nCtx: 3, seqs: [][]int32{nil}, table: table}
	r, err = New(m, cx).Run(context.Background(), Prompt{IDs: []int32{9}}, o)
	if !errors.Is(err, lm.ErrContextFull) || r.Stop != lm.StopContextFull || len(r.IDs) != 2 {
		t.Errorf("short context: %v, stop %v, ids %v; want 2 tokens, context full", err, r.Stop, r.IDs)
	}
}

func (m *fakeModel) textOf(ids []int32) string {
	var b []byte
	for _, id := range ids {
		b = append(b, m.pieces[id]...)
	}
	return strings.TrimPrefix(string(b), " ")
}

// promptContext is a fakeContext that takes soft tokens and text in one
// pass (lm.PromptAppender).
type promptContext struct{ *fakeContext }

func (c promptContext) AppendPrompt(rows []float32, n int, ids []int32, all bool) error {
	if n <= 0 || len(rows) != n*c.m.nEmbd {
		return errors.New("bad prompt")
	}
	c.m.calls = append(c.m.calls, fmt.Sprintf("prompt %d %v", n, ids))
	c.stats.EmbeddingRowsIn += n
	c.stats.TokensIn += len(ids)
	return c.feed(append(slices.Repeat([]int32{-1}, n), ids...), all)
}

// TestPrefillOnePass: a backend that takes a prompt in one pass gets a new
// image's soft tokens and text in one call; the next turn still evaluates
// only its new tokens, and OnPrompt sees every row.
func TestPrefillOnePass(t *testing.T) {
	m := newFake()
	m.nEmbd = 2
	cx, _ := m.NewContext(lm.ContextOptions{})
	d := New(m, promptContext{cx.(*fakeContext)})
	soft := []float32{1, 2, 3, 4}
	run := func(p Prompt, o Options) Result {
		t.Helper()
		m.calls = nil
		r, err := d.Run(context.Background(), p, o)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := run(Prompt{Soft: soft, NSoft: 2, IDs: []int32{9, 1}}, greedyOptions(2))
	want := "truncate 0; prompt 2 [9 1]; tokens [2]; tokens [3]"
	if got := strings.Join(m.calls, "; "); got != want || r.PromptRows != 4 || r.Text != "é" {
		t.Errorf("first turn: %s (%d rows, %q)\nwant %s", got, r.PromptRows, r.Text, want)
	}
	r = run(Prompt{Soft: soft, NSoft: 2, IDs: []int32{9, 1, 2, 5}}, greedyOptions(1))
	if got, want := strings.Join(m.calls, "; "), "truncate 5; tokens [5]; tokens [4]"; got != want || r.PromptRows != 1 {
		t.Errorf("second turn: %s (%d rows)\nwant %s", got, r.PromptRows, want)
	}
	var seen []int
	o := greedyOptions(0)
	o.OnPrompt = func(pos int, logits []float32) {
		if len(logits) == len(m.pieces) {
			seen = append(seen, pos)
		}
	}
	run(Prompt{Soft: soft, NSoft: 2, IDs: []int32{9, 1}}, o)
	if got, want := strings.Join(m.calls, "; "), "truncate 0; prompt 2 [9 1]"; got != want || !slices.Equal(seen, []int{0, 1, 2, 3}) {
		t.Errorf("with OnPrompt: %s, rows %v; want %s, rows 0-3", got, seen, want)
	}
}
