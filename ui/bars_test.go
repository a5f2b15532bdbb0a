package ui

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/app/apptest"
)

// TestMatchScreen: /match and /labels on a fake retrieval engine draw a
// ranked bar chart in the transcript (the golden screen at 100x30).
func TestMatchScreen(t *testing.T) {
	dir := t.TempDir()
	eng := apptest.NewMatchEngine()
	eng.Scores = map[string]float64{"a husky in the snow": 0.93, "a cat on a sofa": 0.04, "two people riding bicycles": 0.51,
		"dog": 2, "cat": 0.5, "car": 0.1}
	start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	a := app.New(app.Options{Model: eng.Source(dir, apptest.WritePNG(t, dir, "husky.png", 40, 30)),
		Now: func() time.Time { return start }})
	tm := teatest.NewTestModel(t, New(a, Options{Version: "test", ImageMode: ASCII}), teatest.WithInitialTermSize(100, 30))
	scr := &screen{tm: tm}
	t.Cleanup(func() { tm.Quit(); a.Close() })
	waitApp(t, a, "the image", func(s app.State) bool { return idle(s) && s.Image != nil })
	tm.Type("/match a cat on a sofa | a husky in the snow | two people riding bicycles")
	tm.Send(enter)
	scr.has(t, "93.0%")
	tm.Type("/labels cat, dog, car")
	tm.Send(enter)
	scr.has(t, "ITC 1.000")
	tm.Send(ctrlC)
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*Model)
	a.Close()
	screen := ansi.Strip(fm.render())
	// The charts: best first, each bar as long as its value (14 cells
	// in this pane).
	at := -1
	for _, want := range []string{
		"a husky in the snow    █████████████░ 93.0%  ITC 0.465",
		"two people riding bic… ███████░░░░░░░ 51.0%  ITC 0.255",
		"a cat on a sofa        █░░░░░░░░░░░░░  4.0%  ITC 0.020",
		"dog ██████████░░░░ 72.8%  ITC 1.000",
		"car ██░░░░░░░░░░░░ 10.9%  ITC 0.050",
	} {
		i := strings.Index(screen, want)
		if i < 0 || i < at {
			t.Errorf("the screen lacks %q after the line above", want)
		}
		at = i
	}
	golden.RequireEqual(t, []byte(screen))
}

// TestBarsLayout: labels are shortened to leave the bar its room (a path
// in its middle), and a narrow pane puts each label above its bar.
func TestBarsLayout(t *testing.T) {
	m := &Model{sty: newStyles(lipgloss.NewRenderer(io.Discard))}
	bs := []app.Bar{
		{Label: "1. /home/me/photos/2024/summer/holidays/beach/dog.jpg", Fraction: 1, Value: "0.312"},
		{Label: "2. /home/me/photos/cat.jpg", Fraction: 0.5, Value: "0.156"},
	}
	lines := m.bars(bs, 2, 60)
	for i, l := range lines {
		l = ansi.Strip(l)
		if ansi.StringWidth(l) > 60 {
			t.Errorf("line %d is %d wide: %q", i, ansi.StringWidth(l), l)
		}
	}
	if first := ansi.Strip(lines[0]); !strings.Contains(first, "dog.jpg") || !strings.Contains(first, "…") || !strings.HasSuffix(first, "0.312") {
		t.Errorf("first line %q", first)
	}
	narrow := m.bars(bs, 2, 24)
	if len(narrow) < 4 || !strings.Contains(ansi.Strip(strings.Join(narrow, "\n")), "cat.jpg") {
		t.Errorf("narrow: %q", narrow)
	}
	for _, l := range narrow {
		if w := ansi.StringWidth(ansi.Strip(l)); w > 24 {
			t.Errorf("narrow line %q is %d wide", ansi.Strip(l), w)
		}
	}
}
