// Package apptest tests the app's state machine, and the interfaces on it,
// without a model: Engine is an app.Engine whose answers, encodings and
// context the test controls, and the helpers wait for the app's state.
// Only tests import it.
//
//	eng := apptest.NewEngine()
//	a := app.New(app.Options{Model: eng.Source(dir, apptest.WritePNG(t, dir, "cat.png", 40, 30))})
//	a.Start()
//	apptest.WaitIdle(t, a)
//	a.Submit("What is it?")
//	st := apptest.WaitIdle(t, a)
package apptest

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/engine/chat"
	"github.com/blip2chat/blip2chat/engine/generate"
	"github.com/blip2chat/blip2chat/engine/llamacpp/capi"
	"github.com/blip2chat/blip2chat/engine/llamacpp/llamatest"
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/engine/model"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
)

// SoftTokens is how many image tokens Engine puts in front of a prompt
// (the 32 queries of BLIP-2's Q-Former).
const SoftTokens = 32

// ContextSize is Engine's context, in tokens.
const ContextSize = 2048

// Label is the demo label of DemoSource.
const Label = "demo model: trained only on synthetic shapes"

// Checkpoint is what Engine's presets are resolved for: BLIP-2 OPT-2.7B
// without a generation_config.json (the 2023 checkpoint).
var Checkpoint = generate.Checkpoint{Family: "blip-2", TextType: "opt", PromptTokens: 33, ModelEOS: 2, Newline: 50118}

// Presets are Engine's presets (generate.NewPreset for Checkpoint).
func Presets() []generate.Preset {
	var out []generate.Preset
	for _, name := range generate.PresetNames() {
		p, err := generate.NewPreset(name, hfconfig.DefaultGenerationConfig(), Checkpoint)
		if err != nil {
			panic(err)
		}
		out = append(out, p)
	}
	return out
}

// Preset is one of Presets by name.
func Preset(name string) generate.Preset {
	for _, p := range Presets() {
		if p.Name == name {
			return p
		}
	}
	panic("no preset " + name)
}

// DefaultSettings are Engine's settings until Apply changes them: the
// creative preset (sampling) with 48-token answers.
var DefaultSettings = func() app.Settings {
	s := chat.DefaultSettings()
	s.Params = Preset("creative").Params
	s.MaxTokens, s.Template, s.Threads = 48, "Question: {prompt} Answer:", 1
	return s
}()

// Engine is an app.Engine without a model. It answers with Answer, one
// word per token (cut at max_tokens), and keeps the conversation the way
// engine/chat does: a new image or Reset forgets the turns, Retry replaces
// the last, Restore puts turns back. Usage counts the soft tokens and the
// words of the turns; Tokens splits the templated prompt into words.
//
// Set its fields before the app uses them or while the app is idle.
type Engine struct {
	// Answer is what Ask, Caption and Retry answer.
	Answer string
	// Stream, when set, makes an answer stream what comes on it, piece by
	// piece, until it is closed (or the app cancels). After each piece is
	// handed to the app, a value is sent on Streamed when it is set.
	Stream   chan string
	Streamed chan struct{}
	// Beams, when set, makes an answer stream beam search's hypotheses:
	// each value is the best hypothesis so far, whole, handed to
	// generate.Stream.Best; the answer is the last one, when Beams is
	// closed (or the app cancels: then the best so far, stopped).
	Beams chan string
	// Fail, when set, makes answers fail with it before any text.
	Fail error
	// Device and Notice are the language model's (app.ModelInfo): where
	// it runs and the GPU-fallback line; "" for none.
	Device, Notice string
	// Attn, when set, is what Attention returns (else an error).
	Attn *app.Attention
	// Confidence, when set, is every finished answer's
	// app.Answer.Confidence.
	Confidence []app.TokenConfidence
	// Block, when set, makes SetImage wait until it is closed (or the app
	// cancels).
	Block chan struct{}
	// Decoded counts the images the app handed over; NotRGB is set when
	// one was not imageprep.ToRGB's *image.NRGBA.
	Decoded atomic.Int32
	NotRGB  atomic.Bool

	mu       sync.Mutex
	set      app.Settings
	hasImage bool
	turns    []app.Turn
	closed   bool
}

// NewEngine makes an Engine with DefaultSettings and a twelve-word answer.
func NewEngine() *Engine {
	return &Engine{Answer: "a small grey cat sits on a wooden table next to a cup", set: DefaultSettings}
}

// Source opens e as the model in dir, with image to start with ("" for
// none).
func (e *Engine) Source(dir, image string) *app.ModelSource {
	return &app.ModelSource{Dir: dir, Image: image, Open: func(context.Context, func(string)) (app.Engine, error) { return e, nil }}
}

// DemoSource is Source labelled as the demo model.
func (e *Engine) DemoSource(dir, image string) *app.ModelSource {
	s := e.Source(dir, image)
	s.Demo, s.Label = true, Label
	return s
}

// Closed reports whether the app closed the engine.
func (e *Engine) Closed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// Info implements app.Engine.
func (e *Engine) Info() app.ModelInfo {
	return app.ModelInfo{Name: "fake", Desc: "BLIP-2 · fake", Backend: "none", Family: "blip-2", Device: e.Device, Notice: e.Notice,
		Details: []model.Row{{Label: "Vision", Value: "none"}, {Label: "Language", Value: "none"}}}
}

// SetImage implements app.Engine.
func (e *Engine) SetImage(ctx context.Context, img image.Image, path string) (app.ImageStats, error) {
	e.Decoded.Add(1)
	if _, ok := img.(*image.NRGBA); !ok {
		e.NotRGB.Store(true)
	}
	return e.encode(ctx)
}

func (e *Engine) encode(ctx context.Context) (app.ImageStats, error) {
	if e.Block != nil {
		select {
		case <-e.Block:
		case <-ctx.Done():
			return app.ImageStats{}, ctx.Err()
		}
	}
	if err := ctx.Err(); err != nil {
		return app.ImageStats{}, err
	}
	e.mu.Lock()
	e.hasImage, e.turns = true, nil
	e.mu.Unlock()
	return app.ImageStats{Encode: time.Millisecond, Tokens: SoftTokens}, nil
}

// Ask implements app.Engine.
func (e *Engine) Ask(ctx context.Context, q string, out generate.Stream) (app.Answer, error) {
	ans, err := e.generate(ctx, out)
	e.mu.Lock()
	e.turns = append(e.turns, app.Turn{Question: q, Answer: ans.Text, Stop: ans.Stop})
	e.mu.Unlock()
	return ans, err
}

// Caption implements app.Engine.
func (e *Engine) Caption(ctx context.Context, out generate.Stream) (app.Answer, error) {
	return e.Ask(ctx, "", out)
}

// Retry implements app.Engine.
func (e *Engine) Retry(ctx context.Context, out generate.Stream) (app.Answer, error) {
	ans, err := e.generate(ctx, out)
	e.mu.Lock()
	if n := len(e.turns); n > 0 {
		e.turns[n-1].Answer, e.turns[n-1].Stop = ans.Text, ans.Stop
	}
	e.mu.Unlock()
	return ans, err
}

// generate streams an answer: Beams' hypotheses, Stream's pieces, or
// Answer's words.
func (e *Engine) generate(ctx context.Context, out generate.Stream) (app.Answer, error) {
	on := out.Text
	if on == nil {
		on = func(string) {}
	}
	e.mu.Lock()
	maxTokens := e.set.MaxTokens
	e.mu.Unlock()
	var b strings.Builder
	n := 0
	emit := func(s string) {
		on(s)
		b.WriteString(s)
		n++
		if e.Streamed != nil {
			e.Streamed <- struct{}{}
		}
	}
	done := func(stop lm.StopReason) (app.Answer, error) {
		return app.Answer{Text: b.String(), Stop: stop, Tokens: n, PromptTokens: SoftTokens + 8,
			FirstToken: time.Millisecond, Elapsed: time.Duration(n+1) * time.Millisecond, TokensPerSec: 1000,
			Confidence: e.Confidence}, nil
	}
	if e.Fail != nil {
		return app.Answer{}, e.Fail
	}
	if e.Beams != nil {
		for {
			select {
			case s, ok := <-e.Beams:
				if !ok {
					return done(lm.StopEOG)
				}
				b.Reset()
				b.WriteString(s)
				n = len(strings.Fields(s))
				if out.Best != nil {
					out.Best(s)
				}
				if e.Streamed != nil {
					e.Streamed <- struct{}{}
				}
			case <-ctx.Done():
				return done(lm.StopCancelled)
			}
		}
	}
	if e.Stream != nil {
		for {
			select {
			case s, ok := <-e.Stream:
				if !ok {
					return done(lm.StopEOG)
				}
				emit(s)
			case <-ctx.Done():
				return done(lm.StopCancelled)
			}
		}
	}
	for i, w := range strings.Fields(e.Answer) {
		if ctx.Err() != nil {
			return done(lm.StopCancelled)
		}
		if i == maxTokens {
			return done(lm.StopMaxTokens)
		}
		if i > 0 {
			w = " " + w
		}
		emit(w)
	}
	return done(lm.StopEOG)
}

// Attention implements app.AttentionEngine.
func (e *Engine) Attention(ctx context.Context) (app.Attention, error) {
	if e.Attn == nil {
		return app.Attention{}, errors.New("no attention in this fake")
	}
	return *e.Attn, ctx.Err()
}

// Compare implements app.Engine: the answer under settings s (Answer cut
// at their MaxTokens), the turns and settings unchanged.
func (e *Engine) Compare(ctx context.Context, s app.Settings, out generate.Stream) (app.Answer, error) {
	e.mu.Lock()
	cur := e.set
	e.set = s
	e.mu.Unlock()
	ans, err := e.generate(ctx, out)
	e.mu.Lock()
	e.set = cur
	e.mu.Unlock()
	return ans, err
}

// Reset implements app.Engine.
func (e *Engine) Reset() error {
	e.mu.Lock()
	e.turns = nil
	e.mu.Unlock()
	return nil
}

// Restore implements app.Engine.
func (e *Engine) Restore(turns []app.Turn) error {
	e.mu.Lock()
	e.turns = append([]app.Turn(nil), turns...)
	e.mu.Unlock()
	return nil
}

// Settings implements app.Engine.
func (e *Engine) Settings() app.Settings {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.set
}

// Apply implements app.Engine.
func (e *Engine) Apply(s app.Settings) error {
	e.mu.Lock()
	e.set = s
	e.mu.Unlock()
	return nil
}

// Presets implements app.Engine.
func (e *Engine) Presets() []generate.Preset { return Presets() }

// Tokens implements app.Engine: the soft tokens, then the words of the
// turns and of question, each put through the template, as "▁word".
func (e *Engine) Tokens(question string) ([]app.Token, error) {
	toks := make([]app.Token, SoftTokens, SoftTokens+64)
	for i := range toks {
		toks[i] = app.Token{ID: -1, Soft: true}
	}
	for _, w := range strings.Fields(e.prompt(question)) {
		h := fnv.New32a()
		h.Write([]byte(w))
		toks = append(toks, app.Token{ID: int(h.Sum32() % 32000), Piece: "▁" + w})
	}
	return toks, nil
}

// prompt is the text of the next prompt: the turns, then question.
func (e *Engine) prompt(question string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	for _, t := range e.turns {
		b.WriteString(strings.Replace(e.set.Template, "{prompt}", t.Question, 1) + " " + t.Answer + " ")
	}
	b.WriteString(strings.Replace(e.set.Template, "{prompt}", question, 1))
	return b.String()
}

// Usage implements app.Engine.
func (e *Engine) Usage() (used, total int) {
	e.mu.Lock()
	img, turns := e.hasImage, len(e.turns)
	e.mu.Unlock()
	if !img {
		return 0, ContextSize
	}
	if turns == 0 {
		return SoftTokens, ContextSize
	}
	toks, _ := e.Tokens("")
	return len(toks), ContextSize
}

// Close implements app.Engine.
func (e *Engine) Close() error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	return nil
}

// WritePNG writes a w x h gradient image named name in dir and returns its
// path.
func WritePNG(t testing.TB, dir, name string, w, h int) string {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x), uint8(y), 99, 255})
		}
	}
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	return path
}

// WaitFor waits until cond holds for the app's state, and returns that
// state; after a minute it fails the test, showing the transcript.
func WaitFor(t testing.TB, a *app.App, what string, cond func(app.State) bool) app.State {
	t.Helper()
	deadline := time.After(time.Minute)
	// Changed may be drained by an interface on the same app: look again
	// every few milliseconds as well.
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		st := a.Snapshot()
		if cond(st) {
			return st
		}
		select {
		case <-a.Changed():
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; phase %v, transcript:\n%s", what, st.Phase, Transcript(st))
		}
	}
}

// Idle reports whether no job runs.
func Idle(s app.State) bool { return !s.Phase.Busy() }

// WaitIdle waits until no job runs.
func WaitIdle(t testing.TB, a *app.App) app.State {
	t.Helper()
	return WaitFor(t, a, "idle", Idle)
}

// Last returns the last entry of a kind.
func Last(st app.State, k app.EntryKind) (app.Entry, bool) {
	for i := len(st.Entries) - 1; i >= 0; i-- {
		if st.Entries[i].Kind == k {
			return st.Entries[i], true
		}
	}
	return app.Entry{}, false
}

// Transcript is the entries as text, for failure messages.
func Transcript(st app.State) string {
	var b strings.Builder
	for _, e := range st.Entries {
		kind := [...]string{"Q", "A", "note", "ERROR", "image", "reset"}[e.Kind]
		b.WriteString(kind + ": " + e.Text + "\n")
		for _, r := range e.Rows {
			fmt.Fprintf(&b, "  %s | %s | %s\n", r.Label, r.Value, r.Remark)
		}
	}
	return b.String()
}

// NoteText is a note's text with its table, one "label value remark" line
// per row: what a test searches.
func NoteText(e app.Entry) string {
	s := e.Text
	for _, r := range e.Rows {
		s += "\n" + strings.TrimSpace(r.Label+" "+r.Value+" "+r.Remark)
	}
	return strings.TrimPrefix(s, "\n")
}

// LlamaLib is the llama.cpp library folder for tests on a real model
// (llamatest.LibDir), skipping the test, or failing it when
// $BLIP2CHAT_REQUIRE_LLAMA is set, when the folder lacks the library: on
// a machine without it, BLIP2CHAT_LLAMA_LIB=/nonexistent skips those
// tests instead of failing them.
func LlamaLib(t testing.TB) string {
	t.Helper()
	dir := llamatest.LibDir(t)
	if _, err := os.Stat(filepath.Join(dir, capi.LibraryFile)); err != nil {
		msg := "llama.cpp library absent: " + dir + " lacks " + capi.LibraryFile + "; run 'make lib'"
		if os.Getenv(llamatest.EnvRequire) != "" {
			t.Fatal(msg + " ($" + llamatest.EnvRequire + " is set)")
		}
		t.Skip(msg)
	}
	return dir
}
