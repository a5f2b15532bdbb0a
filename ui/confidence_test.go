package ui

import (
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/app/apptest"
)

// TestConfidenceTint: /confidence draws each token of an answer in the
// colour of the model's confidence (text, warning below 80%, error below
// 40%), the text unchanged; again draws it plain; /why lists the least
// certain tokens with their alternatives.
func TestConfidenceTint(t *testing.T) {
	eng := apptest.NewEngine()
	eng.Answer = "a cat sits"
	eng.Confidence = []app.TokenConfidence{
		{Text: "a", P: 0.31, Top: []app.Alternative{{Text: "the", P: 0.52}, {Text: "a", P: 0.31}}},
		{Text: " cat", P: 0.97, Top: []app.Alternative{{Text: " cat", P: 0.97}}},
		{Text: " sits", P: 0.62, Top: []app.Alternative{{Text: " sits", P: 0.62}, {Text: " lies", P: 0.2}}},
	}
	a, m := fakeScreen(t, eng, apptest.WritePNG(t, t.TempDir(), "cat.png", 40, 30), 100, 30)
	m.r.SetColorProfile(termenv.ANSI256)
	m.sty = newStyles(m.r)
	waitApp(t, a, "the image", func(s app.State) bool { return idle(s) && s.Image != nil })
	typeLine(m, "What is it?")
	waitApp(t, a, "the answer", func(s app.State) bool { return idle(s) && lastAnswer(s).Text == "a cat sits" })
	m.sync()
	plain := m.sty.text.Render("a cat sits")
	if screen := m.render(); !strings.Contains(screen, plain) {
		t.Fatalf("the answer is not plain text before /confidence:\n%q", screen)
	}
	typeLine(m, "/confidence")
	waitApp(t, a, "the tint", func(s app.State) bool { return idle(s) && s.Confidence })
	m.sync()
	screen := m.render()
	tinted := m.sty.error.Render("a") + " " + m.sty.text.Render("cat") + " " + m.sty.warn.Render("sits")
	if !strings.Contains(screen, tinted) || strings.Contains(screen, plain) {
		t.Errorf("the answer is not tinted by confidence:\n%q", screen)
	}
	typeLine(m, "/why")
	waitApp(t, a, "/why", func(s app.State) bool {
		n, ok := apptest.Last(s, app.EntryNote)
		return idle(s) && ok && strings.Contains(n.Text, "least certain")
	})
	m.sync()
	text := ansi.Strip(m.render())
	for _, want := range []string{`#1 "a"`, "31.0%", `"the" 52.0%`, `#3 " sits"`, `" lies" 20.0%`} {
		if !strings.Contains(text, want) {
			t.Errorf("/why: the screen lacks %q:\n%s", want, text)
		}
	}
	typeLine(m, "/confidence")
	waitApp(t, a, "no tint", func(s app.State) bool { return idle(s) && !s.Confidence })
	m.sync()
	if screen := m.render(); !strings.Contains(screen, plain) {
		t.Errorf("the answer is still tinted after /confidence again:\n%q", screen)
	}
}
