package vision

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
	"time"
)

// TestCancel: a context done before or during a run stops EncodeImageContext
// or QFormerContext at the next check with the context's error, runs no
// further layer, and leaves the model as it was: the next image's ViT
// features, Q-Former output and projection equal the golden ones and, bit
// for bit, those of a run that was never interrupted.
func TestCancel(t *testing.T) {
	for _, name := range []string{"blip2-opt", "instructblip-llama"} {
		t.Run(name, func(t *testing.T) {
			m := loadModel(t, name, "f32")
			g := readGolden(t, name)
			px := g.pixels(t)
			ids := instructionIDs(t, g)
			// The reference run, never interrupted.
			feat0, err := m.EncodeImage(context.Background(), px)
			if err != nil {
				t.Fatal(err)
			}
			q0, err := m.QFormer(context.Background(), feat0, ids)
			if err != nil {
				t.Fatal(err)
			}
			if m.Info().Vision.Layers < 2 || m.Info().QFormer.Layers < 2 {
				t.Fatalf("the case needs 2 layers on each side to cancel mid-way: %+v", m.Info())
			}

			for _, c := range []struct {
				name string
				// cancelAt is the traced activation whose emission cancels
				// the context ("" cancels before the call); later lists
				// names that must then never be emitted.
				cancelAt string
				later    []string
				deadline bool // a deadline in the past instead of a cancel
				qformer  bool // interrupt the Q-Former, not the ViT
				want     error
			}{
				{name: "pre-cancelled ViT", want: context.Canceled,
					later: []string{"vision_hidden_states.0", "vision_last_hidden_state"}},
				{name: "deadline passed", deadline: true, want: context.DeadlineExceeded,
					later: []string{"vision_hidden_states.0", "vision_last_hidden_state"}},
				{name: "ViT after layer 1", cancelAt: "vision_hidden_states.1", want: context.Canceled,
					later: []string{"vision_hidden_states.2", "vision_last_hidden_state"}},
				{name: "pre-cancelled Q-Former", qformer: true, want: context.Canceled,
					later: []string{"qformer_hidden_states.0", "qformer_last_hidden_state"}},
				{name: "Q-Former after layer 1", qformer: true, cancelAt: "qformer_hidden_states.1", want: context.Canceled,
					later: []string{"qformer_hidden_states.2", "qformer_last_hidden_state"}},
			} {
				t.Run(c.name, func(t *testing.T) {
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					if c.deadline {
						ctx, cancel = context.WithDeadline(ctx, time.Now().Add(-time.Second))
						defer cancel()
					} else if c.cancelAt == "" {
						cancel()
					}
					seen := map[string]bool{}
					m.SetTrace(func(n string, rows, cols int, data []float32) {
						seen[n] = true
						if n == c.cancelAt {
							cancel()
						}
					})
					var err error
					if c.qformer {
						var q []float32
						q, err = m.QFormer(ctx, feat0, ids)
						if q != nil {
							t.Error("a cancelled Q-Former returned output")
						}
					} else {
						var f *ImageFeatures
						f, err = m.EncodeImage(ctx, px)
						if f != nil {
							t.Error("a cancelled encoding returned features")
						}
					}
					m.SetTrace(nil)
					if err != c.want || err != ctx.Err() {
						t.Fatalf("error %v, want %v (ctx.Err() %v)", err, c.want, ctx.Err())
					}
					if c.cancelAt != "" && !seen[c.cancelAt] {
						t.Fatalf("%s was never emitted", c.cancelAt)
					}
					for _, n := range c.later {
						if seen[n] {
							t.Errorf("%s emitted after the context was done", n)
						}
					}

					// The model is as good as new.
					feat, err := m.EncodeImage(context.Background(), px)
					if err != nil {
						t.Fatal(err)
					}
					q, err := m.QFormer(context.Background(), feat, ids)
					if err != nil {
						t.Fatal(err)
					}
					proj, err := m.Project(q)
					if err != nil {
						t.Fatal(err)
					}
					if !sameBits(feat.Data, feat0.Data) || !sameBits(q, q0) {
						t.Error("the run after the cancelled one differs from the uninterrupted run")
					}
					check(t, "vision_last_hidden_state", feat.Data, g.f32(t, "vision_last_hidden_state"), false, 1e-4)
					check(t, "qformer_last_hidden_state", q, g.f32(t, "qformer_last_hidden_state"), false, 1e-4)
					check(t, "language_model_inputs", proj, g.f32(t, "language_model_inputs"), false, 1e-4)
				})
			}
		})
	}
}

// TestCancelPrompt: cancelling from another goroutine while the ViT runs
// returns context.Canceled within about a layer, not after the whole
// encoder.
func TestCancelPrompt(t *testing.T) {
	m := loadModel(t, "blip2-opt", "f32")
	px := readGolden(t, "blip2-opt").pixels(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{})
	release := make(chan struct{})
	m.SetTrace(func(n string, rows, cols int, data []float32) {
		if n == "vision_hidden_states.0" {
			close(started)
			<-release // the encoder is mid-run here when the cancel comes
		}
	})
	defer m.SetTrace(nil)
	done := make(chan error, 1)
	go func() {
		_, err := m.EncodeImage(ctx, px)
		done <- err
	}()
	<-started
	cancel()
	close(release)
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("EncodeImageContext did not return after its context was cancelled")
	}
}

// TestContextNoAllocs: the context variants allocate no more than the
// plain calls (only their results), with a live cancellable context.
func TestContextNoAllocs(t *testing.T) {
	m := loadModel(t, "instructblip-llama", "f16")
	g := readGolden(t, "instructblip-llama")
	px, ids := g.pixels(t), instructionIDs(t, g)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	feat, err := m.EncodeImage(ctx, px)
	if err != nil {
		t.Fatal(err)
	}
	m.QFormer(ctx, feat, ids)
	if n := testing.AllocsPerRun(20, func() { m.EncodeImage(ctx, px) }); n > 2 {
		t.Errorf("EncodeImageContext: %v allocations per image, want <= 2 (the result)", n)
	}
	if n := testing.AllocsPerRun(20, func() { m.QFormer(ctx, feat, ids) }); n > 1 {
		t.Errorf("QFormerContext: %v allocations per call, want <= 1 (the result)", n)
	}
}

func sameBits(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}
