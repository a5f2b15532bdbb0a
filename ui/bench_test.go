package ui

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/app/apptest"
)

// BenchmarkStreamToken measures what one streamed token costs the screen:
// the app appends the token to the answer, the Model takes the change
// (Update) and draws the frame (View), with a transcript of 50 or 500
// earlier turns. The cost must not grow with the number of turns.
func BenchmarkStreamToken(b *testing.B) {
	for _, turns := range []int{50, 500} {
		b.Run(fmt.Sprintf("turns=%d", turns), func(b *testing.B) { benchStreamToken(b, turns) })
	}
}

func benchStreamToken(b *testing.B, turns int) {
	dir := b.TempDir()
	img := apptest.WritePNG(b, dir, "img.png", 64, 48)
	eng := apptest.NewEngine()
	a := app.New(app.Options{Model: eng.Source(filepath.Join(dir, "model"), img)})
	defer a.Close()
	m := New(a, Options{})
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	m.Init()
	waitApp(b, a, "the image", func(s app.State) bool { return idle(s) && s.Image != nil })
	words := strings.Fields("a small grey cat sits on a wooden table next to a cup of tea while the morning light comes through the window and falls on a pile of old books")
	for i := range turns {
		eng.Answer = strings.Join(words[i%7:], " ")
		a.Submit(fmt.Sprintf("question %d: what is in the picture?", i))
		waitApp(b, a, "an answer", func(s app.State) bool { return idle(s) && answers(s) == i+1 })
	}
	m.Update(changedMsg{})

	// The streamed answer restarts (/retry) every 32 tokens so that its own
	// length, which is re-wrapped at every token, stays the same.
	start := func() {
		eng.Stream, eng.Streamed = make(chan string), make(chan struct{})
		a.Submit("/retry")
		waitApp(b, a, "streaming", func(s app.State) bool { return s.Phase == app.Generating })
	}
	stop := func() {
		close(eng.Stream)
		waitApp(b, a, "the end of the answer", idle)
		eng.Stream, eng.Streamed = nil, nil
	}
	start()
	b.ResetTimer()
	for i := range b.N {
		if i > 0 && i%32 == 0 {
			b.StopTimer()
			stop()
			start()
			b.StartTimer()
		}
		eng.Stream <- words[i%len(words)] + " "
		<-eng.Streamed
		m.Update(changedMsg{})
		_ = m.View()
	}
	b.StopTimer()
	stop()
}

func answers(s app.State) int {
	n := 0
	for _, e := range s.Entries {
		if e.Kind == app.EntryAnswer {
			n++
		}
	}
	return n
}
