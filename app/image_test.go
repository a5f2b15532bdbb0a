package app

import (
	"context"
	"image"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The image the tests switch to from the demo's sample.
var otherImage = filepath.Join("..", "testdata", "golden", "images", "cat.jpg")

// realOf returns the app's engine, the real one on the demo model.
func realOf(t *testing.T, a *App) *realEngine {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.eng.(*realEngine)
	if !ok {
		t.Fatalf("engine is %T, not the real engine", a.eng)
	}
	return e
}

// holdViT makes the demo model's ViT observable and slow: when it reaches
// its second layer it closes reached, then waits for hold to return; it
// records whether any later activation of the ViT was computed.
func holdViT(t *testing.T, e *realEngine, hold func()) (reached <-chan struct{}, ranOn *atomic.Bool) {
	t.Helper()
	r := make(chan struct{})
	var once sync.Once
	var later atomic.Bool
	vis := e.m.Vision
	if n := vis.Info().Vision.Layers; n != 2 {
		t.Fatalf("the demo ViT has %d layers; the test stops it after the first of 2", n)
	}
	vis.SetTrace(func(name string, rows, cols int, data []float32) {
		switch name {
		case "vision_hidden_states.1":
			once.Do(func() {
				close(r)
				hold()
			})
		case "vision_hidden_states.2", "vision_last_hidden_state":
			later.Store(true)
		}
	})
	return r, &later
}

func waitChan(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(60 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestEscCancelsEncoding: Esc (Cancel) while the ViT runs stops it at the
// next layer; the transcript says the image loading was cancelled, the
// previous image, conversation and session stay, the conversation goes on
// and the image loads when asked again.
func TestEscCancelsEncoding(t *testing.T) {
	a, _ := newTestApp(t, nil)
	a.Submit("What is it?")
	waitIdle(t, a)
	before := a.Snapshot()
	e := realOf(t, a)
	release := make(chan struct{})
	reached, ranOn := holdViT(t, e, func() { <-release })

	a.Submit("/image " + otherImage)
	waitChan(t, reached, "the ViT's second layer")
	if st := a.Snapshot(); st.Phase != Encoding {
		t.Fatalf("phase %v while the ViT runs", st.Phase)
	}
	if !a.Cancel() {
		t.Fatal("Cancel found nothing to stop while encoding")
	}
	close(release)
	st := waitIdle(t, a)
	e.m.Vision.SetTrace(nil)
	if ranOn.Load() {
		t.Error("the ViT went on after the cancel")
	}
	added := st.Entries[len(before.Entries):]
	if len(added) != 1 || added[0].Kind != EntryNote || !strings.Contains(strings.ToLower(added[0].Text), "image loading cancelled") ||
		!strings.Contains(added[0].Text, filepath.Base(before.ImagePath)) {
		t.Fatalf("entries after the cancel:\n%s", transcript(State{Entries: added}))
	}
	if st.ImagePath != before.ImagePath || st.Image != before.Image || st.CtxUsed != before.CtxUsed {
		t.Errorf("after the cancel: image %s (was %s), context %d (was %d)", st.ImagePath, before.ImagePath, st.CtxUsed, before.CtxUsed)
	}
	if s := sessionOf(t, a); s.Image != before.ImagePath || len(s.Turns) != 1 {
		t.Errorf("session after the cancel: image %s, %d turns", s.Image, len(s.Turns))
	}

	// The conversation about the sample goes on: its last answer can be
	// retried.
	a.Submit("/retry")
	st = waitIdle(t, a)
	if ans, _ := lastOf(st, EntryAnswer); ans.Retries != 1 || ans.Text == "" {
		t.Errorf("/retry after the cancel: %+v\n%s", ans, transcript(st))
	}
	if e, ok := lastOf(st, EntryError); ok {
		t.Errorf("error: %s", e.Text)
	}
	// Not interrupted, the image loads.
	a.Submit("/image " + otherImage)
	st = waitIdle(t, a)
	if img, ok := lastOf(st, EntryImage); !ok || filepath.Base(img.Text) != "cat.jpg" || filepath.Base(st.ImagePath) != "cat.jpg" {
		t.Fatalf("image after the cancel:\n%s", transcript(st))
	}
}

// TestCloseStopsEncoding: closing the app (Ctrl+C) while the ViT runs
// stops it at the next layer instead of waiting for the whole encoder.
func TestCloseStopsEncoding(t *testing.T) {
	a, _ := newTestApp(t, nil)
	e := realOf(t, a)
	reached, ranOn := holdViT(t, e, func() {
		// Hold the encoder mid-run until Close cancels the app's work.
		select {
		case <-a.root.Done():
		case <-time.After(60 * time.Second):
		}
	})
	a.Submit("/image " + otherImage)
	waitChan(t, reached, "the ViT's second layer")
	start := time.Now()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	t.Logf("Close took %v with the ViT mid-run", d)
	if d > 10*time.Second {
		t.Errorf("Close took %v", d)
	}
	if ranOn.Load() {
		t.Error("the ViT ran to its end after Close")
	}
}

// decodeCounter records how the app hands images to the real engine.
type decodeCounter struct {
	*realEngine
	decoded, paths atomic.Int32
	notRGB         atomic.Bool // SetImage got something else than ToRGB's result
}

func (c *decodeCounter) SetImage(ctx context.Context, img image.Image, path string) (ImageStats, error) {
	if img == nil {
		c.paths.Add(1)
	} else {
		c.decoded.Add(1)
	}
	if _, ok := img.(*image.NRGBA); !ok {
		c.notRGB.Store(true)
	}
	return c.realEngine.SetImage(ctx, img, path)
}

// TestImageDecodedOnce: the app gives the engine the image it decoded for
// the display instead of the path, so the file is decoded once.
func TestImageDecodedOnce(t *testing.T) {
	var counter *decodeCounter
	a, _ := newTestApp(t, func(o *Options) {
		open := o.Model.Open
		o.Model.Open = func(ctx context.Context, status func(string)) (Engine, error) {
			e, err := open(ctx, status)
			if err != nil {
				return nil, err
			}
			counter = &decodeCounter{realEngine: e.(*realEngine)}
			return counter, nil
		}
	})
	if d, p := counter.decoded.Load(), counter.paths.Load(); d != 1 || p != 0 {
		t.Errorf("the sample image: %d decoded, %d by path; want 1, 0", d, p)
	}
	a.Submit("/image " + otherImage)
	st := waitIdle(t, a)
	if d, p := counter.decoded.Load(), counter.paths.Load(); d != 2 || p != 0 {
		t.Errorf("after /image: %d decoded, %d by path; want 2, 0", d, p)
	}
	if counter.notRGB.Load() {
		t.Error("SetImage got an image that is not ToRGB's *image.NRGBA")
	}
	if filepath.Base(st.ImagePath) != "cat.jpg" {
		t.Fatalf("image %s:\n%s", st.ImagePath, transcript(st))
	}
}
