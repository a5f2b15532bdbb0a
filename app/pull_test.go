package app_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/app/apptest"
	"github.com/blip2chat/blip2chat/weights/hub"
)

// pullApp starts an app without a model and with an offer to pull one,
// whose Run reports two progress steps, waits on release, then returns
// the fake engine's source (or fails with err).
func pullApp(t *testing.T, release <-chan struct{}, err error) (*app.App, *int) {
	t.Helper()
	eng := apptest.NewEngine()
	data := t.TempDir()
	m, _ := hub.Lookup("blip2-opt-2.7b")
	runs := 0
	offer := &app.PullOffer{Name: m.Name, Info: &m, Image: apptest.WritePNG(t, data, sampleName, 40, 30),
		Run: func(ctx context.Context, progress func(hub.Progress), status func(string)) (*app.ModelSource, error) {
			runs++
			status("resolving")
			progress(hub.Progress{File: "model-00001-of-00002.safetensors", FileBytes: 300, FileSize: 1000, Bytes: 300, Total: 2000, Files: 3, Rate: 100, ETA: 17e9})
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if err != nil {
				return nil, err
			}
			return eng.Source(filepath.Join(data, "models", m.Name), ""), nil
		}}
	a := app.New(app.Options{Pull: offer, SessionsDir: filepath.Join(data, "sessions")})
	t.Cleanup(func() { a.Close() })
	a.Start()
	return a, &runs
}

// TestPullOffer: a missing model is offered with its sizes; yes downloads
// it (progress in the state), then loads it and its image.
func TestPullOffer(t *testing.T) {
	release := make(chan struct{})
	a, runs := pullApp(t, release, nil)
	st := waitFor(t, a, "the offer", func(st app.State) bool { return st.Confirm != "" })
	for _, want := range []string{"blip2-opt-2.7b", "14.0 GB", "3.7 GB"} {
		if !strings.Contains(st.Confirm, want) {
			t.Errorf("confirmation %q does not say %q", st.Confirm, want)
		}
	}
	if st.Phase != app.NoModel || *runs != 0 {
		t.Fatalf("before the answer: phase %v, %d runs", st.Phase, *runs)
	}
	a.Confirm(true)
	st = waitFor(t, a, "download progress", func(st app.State) bool { return st.Download != nil })
	if st.Phase != app.Downloading || st.Download.Bytes != 300 || !strings.Contains(st.Progress, "300 B of 2.0 kB, 100 B/s, 17s left") {
		t.Errorf("downloading: phase %v, progress %q, %+v", st.Phase, st.Progress, st.Download)
	}
	close(release)
	st = waitFor(t, a, "the model and image", func(st app.State) bool { return st.HasModel && st.ImagePath != "" && st.Phase == app.Idle })
	if st.Download != nil || !strings.Contains(transcript(st), "Installed blip2-opt-2.7b") {
		t.Errorf("after the pull: %+v\n%s", st.Download, transcript(st))
	}
}

// TestPullOfferDeclined: no downloads nothing and says how to later.
func TestPullOfferDeclined(t *testing.T) {
	a, runs := pullApp(t, nil, nil)
	waitFor(t, a, "the offer", func(st app.State) bool { return st.Confirm != "" })
	a.Confirm(false)
	st := waitFor(t, a, "the note", func(st app.State) bool {
		return strings.Contains(transcript(st), "blip2chat pull blip2-opt-2.7b")
	})
	if *runs != 0 || st.Phase != app.NoModel {
		t.Errorf("declined: %d runs, phase %v", *runs, st.Phase)
	}
}

// TestPullOfferCancelFail: Esc stops the download (the next pull goes on);
// a failed pull is one error line; neither leaves a model.
func TestPullOfferCancelFail(t *testing.T) {
	a, _ := pullApp(t, make(chan struct{}), nil)
	waitFor(t, a, "the offer", func(st app.State) bool { return st.Confirm != "" })
	a.Confirm(true)
	waitFor(t, a, "downloading", func(st app.State) bool { return st.Phase == app.Downloading })
	if !a.Cancel() {
		t.Fatal("Cancel did not stop the download")
	}
	st := waitFor(t, a, "stopped", func(st app.State) bool { return st.Phase == app.NoModel })
	if !strings.Contains(transcript(st), "Download stopped") || st.HasModel {
		t.Errorf("after Esc: %s", transcript(st))
	}

	release := make(chan struct{})
	close(release)
	a, _ = pullApp(t, release, errors.New("not enough disk space: 14.0 GB needed, 1.0 GB free"))
	waitFor(t, a, "the offer", func(st app.State) bool { return st.Confirm != "" })
	a.Confirm(true)
	st = waitFor(t, a, "the failure", func(st app.State) bool { _, ok := lastOf(st, app.EntryError); return ok && st.Phase == app.NoModel })
	if e, _ := lastOf(st, app.EntryError); !strings.Contains(e.Text, "cannot pull blip2-opt-2.7b: not enough disk space") {
		t.Errorf("failure: %q", e.Text)
	}
}
