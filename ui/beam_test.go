package ui

import (
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/muesli/termenv"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/app/apptest"
	"github.com/blip2chat/blip2chat/engine/lm"
)

// beamStream makes eng stream beam hypotheses: give hands one to the app
// and waits until it has it.
func beamStream(eng *apptest.Engine) (give func(string), end func()) {
	eng.Beams, eng.Streamed = make(chan string), make(chan struct{})
	s, ack := eng.Beams, eng.Streamed
	return func(p string) { s <- p; <-ack }, func() { close(s) }
}

// TestBeamSearchScreen: on the terminal, beam search's best hypothesis
// grows in the transcript and the final answer replaces it; Esc keeps the
// best so far, marked stopped; the status line names the preset and what
// /set changed in it; /set preset creative then /retry answers again.
func TestBeamSearchScreen(t *testing.T) {
	dir := t.TempDir()
	eng := apptest.NewEngine()
	a := app.New(app.Options{Model: eng.Source(dir+"/model", apptest.WritePNG(t, dir, "cat.png", 40, 30)), SessionsDir: dir + "/sessions"})
	tm := teatest.NewTestModel(t, New(a, Options{ImageMode: ASCII}), teatest.WithInitialTermSize(120, 40))
	scr := &screen{tm: tm}
	t.Cleanup(func() { tm.Quit(); a.Close() })
	waitApp(t, a, "the image", func(s app.State) bool { return idle(s) && s.Image != nil })

	tm.Type("/preset vqa")
	tm.Send(enter)
	waitApp(t, a, "vqa", func(s app.State) bool { return idle(s) && s.Settings.Preset == "vqa" })
	scr.has(t, "preset vqa")
	tm.Type("/set num_beams 3")
	tm.Send(enter)
	waitApp(t, a, "3 beams", func(s app.State) bool { return idle(s) && s.Settings.NumBeams == 3 })
	scr.has(t, "preset vqa +num_beams=3")

	give, end := beamStream(eng)
	scr.mark()
	tm.Type("What is it?")
	tm.Send(enter)
	give("a")
	give("a grey cat")
	scr.has(t, "a grey cat▍")
	give("the grey cat")
	scr.has(t, "the grey cat▍")
	end()
	waitApp(t, a, "the answer", func(s app.State) bool { return idle(s) && lastAnswer(s).Text == "the grey cat" })

	give, _ = beamStream(eng)
	scr.mark()
	tm.Type("And then?")
	tm.Send(enter)
	give("it sleeps")
	scr.has(t, "it sleeps▍")
	tm.Send(esc)
	st := waitApp(t, a, "stopped", func(s app.State) bool { return idle(s) && lastAnswer(s).Stop == lm.StopCancelled })
	if e := lastAnswer(st); e.Text != "it sleeps" || e.Hypothesis {
		t.Errorf("after Esc: %+v", e)
	}
	scr.has(t, "■ stopped")

	// Another preset, then /retry: sampled text streams again.
	eng.Beams, eng.Streamed = nil, nil
	tm.Type("/set preset creative")
	tm.Send(enter)
	waitApp(t, a, "creative", func(s app.State) bool { return idle(s) && s.Settings.Preset == "creative" })
	scr.mark()
	tm.Type("/retry")
	tm.Send(enter)
	st = waitApp(t, a, "the retry", func(s app.State) bool { return idle(s) && lastAnswer(s).Retries == 1 })
	if e := lastAnswer(st); e.Text != eng.Answer || e.Stop != lm.StopEOG {
		t.Errorf("retried answer %+v", e)
	}
	scr.has(t, "preset creative")
	tm.Quit()
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
}

// TestHypothesisIsDimmed: a hypothesis is drawn in the faint colour, the
// final answer in the text colour.
func TestHypothesisIsDimmed(t *testing.T) {
	eng := apptest.NewEngine()
	a, m := fakeScreen(t, eng, apptest.WritePNG(t, t.TempDir(), "cat.png", 40, 30), 100, 30)
	m.r.SetColorProfile(termenv.ANSI256)
	m.sty = newStyles(m.r)
	waitApp(t, a, "the image", func(s app.State) bool { return idle(s) && s.Image != nil })
	give, end := beamStream(eng)
	typeLine(m, "What is it?")
	give("a grey cat")
	m.sync()
	if screen := m.render(); !strings.Contains(screen, m.sty.faint.Render("a grey cat▍")) {
		t.Errorf("the hypothesis is not dimmed:\n%q", ansi.Strip(screen))
	}
	end()
	waitApp(t, a, "the answer", func(s app.State) bool { return idle(s) && lastAnswer(s).Text == "a grey cat" })
	m.sync()
	screen := m.render()
	if !strings.Contains(screen, m.sty.text.Render("a grey cat")) || strings.Contains(screen, m.sty.faint.Render("a grey cat")) {
		t.Errorf("the final answer is not in the text colour:\n%q", screen)
	}
}
