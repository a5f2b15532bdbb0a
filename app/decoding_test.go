package app_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/app/apptest"
	"github.com/blip2chat/blip2chat/engine/generate"
	"github.com/blip2chat/blip2chat/engine/lm"
)

// turnSettings are the settings each turn record of the session holds.
func turnSettings(t *testing.T, a *app.App) []app.Settings {
	t.Helper()
	var out []app.Settings
	for _, r := range sessionOf(t, a).Records {
		if r.Type == "turn" {
			if r.Settings == nil {
				t.Fatalf("turn record without settings: %+v", r)
			}
			out = append(out, *r.Settings)
		}
	}
	return out
}

// TestPresets: /preset lists the presets (the active one marked) and
// switches, keeping the template; /set preset does the same; a setting
// changed after shows beside the preset in the state and in /info, with
// the preset's notes; each turn's record holds the preset and settings it
// was answered with; /retry answers again with the settings now in use.
func TestPresets(t *testing.T) {
	a, _, _ := newTestApp(t, nil)
	noteOf := func(line string) string {
		t.Helper()
		a.Submit(line)
		st := waitIdle(t, a)
		e, _ := lastOf(st, app.EntryNote)
		return apptest.NoteText(e)
	}
	list := noteOf("/preset")
	for _, name := range generate.PresetNames() {
		if !strings.Contains(list, name) {
			t.Errorf("/preset lacks %s:\n%s", name, list)
		}
	}
	if !strings.Contains(list, "● creative") {
		t.Errorf("/preset does not mark the active preset (creative):\n%s", list)
	}

	a.Submit("What is it?")
	waitIdle(t, a)
	noteOf("/preset vqa")
	st := a.Snapshot()
	vqa := apptest.Preset("vqa").Params
	if st.Settings.Preset != "vqa" || st.Settings.Beams() != 5 || st.Settings.MaxTokens != vqa.MaxTokens || len(st.Changes) != 0 ||
		st.Settings.Template != testSettings.Template {
		t.Errorf("after /preset vqa: %+v, changes %v", st.Settings, st.Changes)
	}
	if got := noteOf("/set num_beams 3"); got != "num_beams = 3" {
		t.Errorf("/set num_beams 3: %q", got)
	}
	if st := a.Snapshot(); !slices.Equal(st.Changes, []string{"num_beams=3"}) {
		t.Errorf("changes %v, want num_beams=3", st.Changes)
	}
	info := noteOf("/info")
	for _, want := range []string{"preset vqa", "changed: num_beams=3", `note: stop token 50118 ("\n")`} {
		if !strings.Contains(info, want) {
			t.Errorf("/info lacks %q:\n%s", want, info)
		}
	}
	a.Submit("And the colour?")
	waitIdle(t, a)

	// Another preset, then /retry: the last answer again with it.
	noteOf("/set preset creative")
	if st := a.Snapshot(); st.Settings.Preset != "creative" || !st.Settings.Sampling() || len(st.Changes) != 0 {
		t.Errorf("after /set preset creative: %+v, changes %v", st.Settings, st.Changes)
	}
	a.Submit("/retry")
	st = waitIdle(t, a)
	if e, _ := lastOf(st, app.EntryAnswer); e.Retries != 1 || e.Text == "" {
		t.Errorf("retried answer %+v", e)
	}
	got := turnSettings(t, a)
	if len(got) != 3 {
		t.Fatalf("%d turn records, want 3", len(got))
	}
	if got[0].Preset != "creative" || got[1].Preset != "vqa" || got[1].NumBeams != 3 || got[2].Preset != "creative" || !got[2].Sampling() {
		t.Errorf("turn records' presets: %s (beams %d), %s (beams %d), %s", got[0].Preset, got[0].NumBeams, got[1].Preset, got[1].NumBeams, got[2].Preset)
	}

	for _, bad := range []struct{ line, want string }{
		{"/preset fast", `no preset "fast"`},
		{"/set preset fast", `no preset "fast"`},
		{"/set num_beams 0", "num_beams must be"},
		{"/set early_stopping soon", "early stopping"},
	} {
		a.Submit(bad.line)
		st := waitIdle(t, a)
		if e, _ := lastOf(st, app.EntryError); !strings.Contains(e.Text, bad.want) {
			t.Errorf("%s: error %q, want %q", bad.line, e.Text, bad.want)
		}
	}
}

// beams starts streaming beam hypotheses from eng (see stream).
func beams(eng *apptest.Engine) (give func(string), end func()) {
	eng.Beams, eng.Streamed = make(chan string), make(chan struct{})
	s, ack := eng.Beams, eng.Streamed
	return func(p string) { s <- p; <-ack }, func() { close(s) }
}

// TestBeamHypotheses: beam search's best hypothesis replaces the answer's
// text at each step, marked as a hypothesis while it streams; the final
// answer is not; Esc keeps the best hypothesis so far, stopped.
func TestBeamHypotheses(t *testing.T) {
	a, eng, _ := newTestApp(t, nil)
	give, end := beams(eng)
	a.Submit("What is it?")
	give("a")
	give("a cat")
	st := a.Snapshot()
	if e, _ := lastOf(st, app.EntryAnswer); e.Text != "a cat" || !e.Hypothesis || !e.Streaming {
		t.Errorf("while searching: %+v", e)
	}
	give("the grey cat")
	end()
	st = waitIdle(t, a)
	if e, _ := lastOf(st, app.EntryAnswer); e.Text != "the grey cat" || e.Hypothesis || e.Streaming || e.Stop != lm.StopEOG {
		t.Errorf("final answer: %+v", e)
	}

	give, _ = beams(eng)
	a.Submit("And then?")
	give("it")
	give("it sleeps")
	a.Cancel()
	st = waitIdle(t, a)
	eng.Beams, eng.Streamed = nil, nil
	if e, _ := lastOf(st, app.EntryAnswer); e.Text != "it sleeps" || e.Hypothesis || e.Stop != lm.StopCancelled {
		t.Errorf("after Esc: %+v", e)
	}
	if s := sessionOf(t, a); len(s.Turns) != 2 || s.Turns[1].Answer != "it sleeps" || s.Turns[1].Stop != lm.StopCancelled {
		t.Errorf("session turns %+v", s.Turns)
	}
}

// TestBeamAnswerSavedAsItStreams (D6 for beam search): the best
// hypothesis goes to the session file as it streams, replacing the one
// before, so that a session killed mid-search reads back with the latest
// one, interrupted; a forked copy keeps the interrupted turn.
func TestBeamAnswerSavedAsItStreams(t *testing.T) {
	a, eng, sess := newTestApp(t, nil)
	give, end := beams(eng)
	a.Submit("What is it?")
	give("a")
	time.Sleep(1100 * time.Millisecond) // past app.streamSave
	give("a grey cat")
	give("the grey cat") // within streamSave of the last save: not saved yet

	// Read while the search still runs, as after a kill -9.
	s, err := app.LoadSession(a.Snapshot().SessionPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Turns) != 1 || s.Turns[0].Question != "What is it?" || s.Turns[0].Answer != "a grey cat" || s.Turns[0].Stop != lm.StopInterrupted {
		t.Errorf("mid-search the session holds %+v, want the hypothesis saved last, interrupted", s.Turns)
	}
	f, err := app.ForkSession(s, sess, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if c, err := app.LoadSession(f.Path); err != nil || len(c.Turns) != 1 || c.Turns[0].Stop != lm.StopInterrupted || c.Turns[0].Answer != "a grey cat" {
		t.Errorf("the fork: %v %+v", err, c)
	}

	end()
	waitIdle(t, a)
	if s := sessionOf(t, a); len(s.Turns) != 1 || s.Turns[0].Answer != "the grey cat" || s.Turns[0].Stop != lm.StopEOG {
		t.Errorf("finished: %+v", s.Turns)
	}
}

// TestOldSessionLoads: a session written before presets (settings with the
// sampling fields only, stop reasons as text) loads, the fields it lacks at
// their defaults; a new one records the preset and the beam settings under
// generate()'s names and reads back the same.
func TestOldSessionLoads(t *testing.T) {
	old := `{"type":"session","time":"2026-03-04T10:00:00Z","id":"20260304-100000-abcdef","model":"/m"}
{"type":"image","time":"2026-03-04T10:00:01Z","path":"/a.jpg"}
{"type":"turn","time":"2026-03-04T10:00:02Z","turn":{"question":"q","answer":"a","stop":"stopped"},"settings":{"temperature":0.8,"top_p":0.95,"top_k":40,"max_tokens":48,"seed":-1,"template":"Question: {prompt} Answer:","threads":1}}
{"type":"turn","time":"2026-03-04T10:00:03Z","turn":{"question":"q2","answer":"b","stop":"max tokens"}}
`
	s, err := app.ParseSession([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Turns) != 2 || s.Turns[0].Stop != lm.StopCancelled || s.Turns[1].Stop != lm.StopMaxTokens {
		t.Errorf("turns %+v", s.Turns)
	}
	set := s.Settings
	if set == nil || set.Temperature != 0.8 || set.TopK != 40 || set.MaxTokens != 48 || set.Preset != "" ||
		set.RepetitionPenalty != 1 || set.LengthPenalty != 1 || set.Beams() != 1 || set.Validate() != nil {
		t.Errorf("old settings %+v", set)
	}

	a, _, _ := newTestApp(t, nil)
	a.Submit("/preset vqa")
	waitIdle(t, a)
	a.Submit("/set length_penalty -1")
	waitIdle(t, a)
	a.Submit("What is it?")
	waitIdle(t, a)
	got := turnSettings(t, a)
	if len(got) != 1 || got[0].Preset != "vqa" || got[0].Beams() != 5 || got[0].LengthPenalty != -1 || len(got[0].EOS) == 0 {
		t.Errorf("recorded %+v", got)
	}
}
