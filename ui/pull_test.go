package ui

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/app/apptest"
	"github.com/blip2chat/blip2chat/weights/hub"
)

// TestPullScreen: a missing model is offered with its sizes (y/n), then
// the download's progress is drawn (file, bar, bytes, rate, time left),
// and Esc stops it.
func TestPullScreen(t *testing.T) {
	m0, _ := hub.Lookup("blip2-flan-t5-xl")
	reported := make(chan struct{})
	offer := &app.PullOffer{Name: m0.Name, Info: &m0,
		Run: func(ctx context.Context, progress func(hub.Progress), status func(string)) (*app.ModelSource, error) {
			progress(hub.Progress{File: "model-00001-of-00002.safetensors", FileBytes: 5 << 30, FileSize: 10 << 30,
				Bytes: 7 << 30, Total: 14 << 30, FilesDone: 9, Files: 11, Rate: 50 << 20, ETA: 143e9})
			close(reported)
			<-ctx.Done()
			return nil, ctx.Err()
		}}
	a := app.New(app.Options{Pull: offer, SessionsDir: filepath.Join(t.TempDir(), "sessions")})
	t.Cleanup(func() { a.Close() })
	m := New(a, Options{})
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	m.Init()
	a.Start()
	waitApp(t, a, "the offer", func(s app.State) bool { return s.Confirm != "" })
	m.sync()
	screen := ansi.Strip(m.render())
	for _, want := range []string{"y yes", "n no", "blip2-flan-t5-xl is not installed", "download 14.7 GB"} {
		if !strings.Contains(screen, want) {
			t.Errorf("the offer lacks %q:\n%s", want, screen)
		}
	}
	m.Update(keys("y"))
	<-reported
	waitApp(t, a, "the progress", func(s app.State) bool { return s.Download != nil })
	m.sync()
	screen = ansi.Strip(m.render())
	for _, want := range []string{"downloading blip2-flan-t5-xl", "model-00001-of-00002.safetensors", "7.0 GB of 14.0 GB · 9/11 files", "50.0 MB/s", "2m23s left", "█"} {
		if !strings.Contains(screen, want) {
			t.Errorf("the download screen lacks %q:\n%s", want, screen)
		}
	}
	m.Update(tea.KeyMsg{Type: tea.KeyEsc})
	st := waitApp(t, a, "stopped", func(s app.State) bool { return s.Phase == app.NoModel })
	if !strings.Contains(apptest.Transcript(st), "Download stopped") {
		t.Errorf("after Esc: %s", apptest.Transcript(st))
	}
}
