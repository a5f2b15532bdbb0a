package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The tests below drive the real engine (engine/model + engine/chat over
// llama.cpp) on the demo model: no part of the engine is mocked.

func TestAskStreamsAndRecordsTurns(t *testing.T) {
	a, _ := newTestApp(t, nil)
	st := a.Snapshot()
	if st.Settings.Seed != 7 || st.Settings.MaxTokens != 24 {
		t.Errorf("settings not applied: %+v", st.Settings)
	}
	if st.ImagePath == "" || st.Image == nil {
		t.Fatalf("sample image not loaded: %s", transcript(st))
	}
	if !st.Demo || !strings.Contains(st.DemoLabel, "random weights") {
		t.Errorf("demo label missing: %+v", st.DemoLabel)
	}

	// The answer streams: the entry grows while Streaming.
	a.Submit("/set max_tokens 300")
	waitIdle(t, a)
	var seen []string
	a.Submit("What is in the picture?")
	for {
		st = a.Snapshot()
		if e, ok := lastOf(st, EntryAnswer); ok && e.Streaming && e.Text != "" {
			if len(seen) == 0 || seen[len(seen)-1] != e.Text {
				seen = append(seen, e.Text)
			}
		}
		if !st.Phase.Busy() {
			break
		}
		time.Sleep(time.Millisecond)
	}
	ans, _ := lastOf(st, EntryAnswer)
	if ans.Streaming || ans.Text == "" || ans.Stats == nil || ans.Stats.Tokens == 0 {
		t.Fatalf("answer = %+v", ans)
	}
	if len(seen) < 2 {
		t.Errorf("saw %d partial answers, want the answer to grow token by token", len(seen))
	}
	for _, s := range seen {
		if !strings.HasPrefix(ans.Text, s) {
			t.Errorf("partial answer %q is not a prefix of %q", s, ans.Text)
		}
	}
	if ans.Stop != StopEnd && ans.Stop != StopMaxTokens {
		t.Errorf("stop = %q", ans.Stop)
	}
	if st.Last == nil || st.Last.TokensPerSec <= 0 || st.Last.FirstToken <= 0 {
		t.Errorf("no speed numbers: %+v", st.Last)
	}
	if st.CtxUsed <= 32 || st.CtxTotal < st.CtxUsed {
		t.Errorf("context %d/%d: want the 32 soft tokens and the turn counted", st.CtxUsed, st.CtxTotal)
	}
	t.Logf("answer %q: %d tokens, %.0f tok/s, first token %v", ans.Text, ans.Stats.Tokens, ans.Stats.TokensPerSec, ans.Stats.FirstToken)

	// A second turn, then the session file has both, in order.
	a.Submit("And what colour is it?")
	st = waitIdle(t, a)
	s := sessionOf(t, a)
	if len(s.Turns) != 2 || s.Turns[0].Question != "What is in the picture?" || s.Turns[1].Question != "And what colour is it?" {
		t.Fatalf("session turns = %+v", s.Turns)
	}
	if s.Turns[0].Answer != ans.Text {
		t.Errorf("recorded answer %q, shown %q", s.Turns[0].Answer, ans.Text)
	}
	if s.Image != st.ImagePath || s.Settings == nil || s.Settings.Seed != 7 {
		t.Errorf("session image %q settings %+v", s.Image, s.Settings)
	}
}

func TestCancelKeepsPartialAnswer(t *testing.T) {
	a, _ := newTestApp(t, nil)
	a.Submit("/set max_tokens 100000")
	waitIdle(t, a)
	a.Submit("Describe everything in great detail.")
	waitFor(t, a, "some text", func(s State) bool {
		e, ok := lastOf(s, EntryAnswer)
		return ok && len(e.Text) > 10
	})
	if !a.Cancel() {
		t.Fatal("Cancel found nothing to stop")
	}
	st := waitIdle(t, a)
	ans, _ := lastOf(st, EntryAnswer)
	if ans.Stop != StopCancelled || ans.Text == "" || ans.Streaming {
		t.Fatalf("after Esc: %+v", ans)
	}
	if e, ok := lastOf(st, EntryError); ok {
		t.Errorf("cancel reported an error: %s", e.Text)
	}
	s := sessionOf(t, a)
	if n := len(s.Turns); n != 1 || s.Turns[0].Stop != StopCancelled || s.Turns[0].Answer != ans.Text {
		t.Fatalf("session after cancel: %+v", s.Turns)
	}
	// Nothing to cancel now; the conversation goes on.
	if a.Cancel() {
		t.Error("Cancel while idle reported a job")
	}
	a.Submit("/set max_tokens 8")
	waitIdle(t, a)
	a.Submit("Go on.")
	st = waitIdle(t, a)
	if e, _ := lastOf(st, EntryAnswer); e.Stop == StopCancelled || e.Text == "" {
		t.Errorf("the turn after a cancel: %+v", e)
	}
}

func TestRetryReplacesLastAnswer(t *testing.T) {
	a, _ := newTestApp(t, nil)
	a.Submit("/retry")
	if e, _ := lastOf(a.Snapshot(), EntryError); !strings.Contains(e.Text, "nothing to retry") {
		t.Errorf("/retry before a question: %q", e.Text)
	}
	a.Submit("/set seed -1") // a new draw each answer
	waitIdle(t, a)
	a.Submit("What is it?")
	st := waitIdle(t, a)
	n := len(st.Entries)
	first, _ := lastOf(st, EntryAnswer)
	a.Submit("/retry")
	st = waitIdle(t, a)
	if len(st.Entries) != n {
		t.Fatalf("/retry added entries: %s", transcript(st))
	}
	again, _ := lastOf(st, EntryAnswer)
	if again.Retries != 1 || again.Text == "" {
		t.Fatalf("retried answer = %+v", again)
	}
	t.Logf("first %q, retry %q", first.Text, again.Text)
	s := sessionOf(t, a)
	if len(s.All) != 1 || s.All[0].Answer != again.Text || s.All[0].Question != "What is it?" {
		t.Fatalf("session after retry: %+v", s.All)
	}
	var retries int
	for _, r := range s.Records {
		if r.Type == "turn" && r.Retry {
			retries++
		}
	}
	if retries != 1 {
		t.Errorf("%d retry records, want 1", retries)
	}
}

func TestKillMidAnswerLosesNoCompletedTurn(t *testing.T) {
	a, _ := newTestApp(t, nil)
	questions := []string{"first?", "second?"}
	for _, q := range questions {
		a.Submit(q)
		waitIdle(t, a)
	}
	a.Submit("/set max_tokens 100000")
	waitIdle(t, a)
	a.Submit("third, never finished?")
	waitFor(t, a, "the third answer streaming", func(s State) bool {
		e, ok := lastOf(s, EntryAnswer)
		return ok && e.Streaming && e.Text != ""
	})
	// A kill now leaves the file as it is on disk: copy it mid-answer.
	path := a.Snapshot().SessionPath
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a.Cancel()
	waitIdle(t, a)

	s, err := ParseSession(data)
	if err != nil {
		t.Fatalf("session file mid-answer does not parse: %v\n%s", err, data)
	}
	if len(s.Turns) != len(questions) {
		t.Fatalf("mid-answer file holds %d turns, want the %d completed ones", len(s.Turns), len(questions))
	}
	for i, q := range questions {
		if s.Turns[i].Question != q || s.Turns[i].Answer == "" {
			t.Errorf("turn %d = %+v", i, s.Turns[i])
		}
	}
	// Every line is whole JSON ending in a newline, and no temporary file
	// is left beside it.
	if !strings.HasSuffix(string(data), "\n") {
		t.Error("file does not end with a newline")
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file %s left in the sessions folder", e.Name())
		}
	}
}

func TestImageCommandRestartsConversation(t *testing.T) {
	a, _ := newTestApp(t, nil)
	a.Submit("What is it?")
	waitIdle(t, a)
	before := a.Snapshot().CtxUsed

	a.Submit("/image /no/such/file.jpg")
	if e, _ := lastOf(a.Snapshot(), EntryError); !strings.Contains(e.Text, "no such file") {
		t.Errorf("missing file: %q", e.Text)
	}
	a.Submit("/image " + t.TempDir())
	if e, _ := lastOf(a.Snapshot(), EntryError); !strings.Contains(e.Text, "folder") {
		t.Errorf("folder: %q", e.Text)
	}
	bad := filepath.Join(t.TempDir(), "bad.jpg")
	os.WriteFile(bad, []byte("not an image"), 0o644)
	a.Submit("/image " + bad)
	st := waitIdle(t, a)
	if e, _ := lastOf(st, EntryError); !strings.Contains(e.Text, "bad.jpg") {
		t.Errorf("bad image error %q should name the file", e.Text)
	}
	if filepath.Base(st.ImagePath) != "sample.jpg" {
		t.Errorf("a bad image replaced the current one: %s", st.ImagePath)
	}

	other := filepath.Join("..", "testdata", "golden", "images", "cat.jpg")
	a.Submit("/image " + other)
	st = waitIdle(t, a)
	if filepath.Base(st.ImagePath) != "cat.jpg" || st.Image == nil {
		t.Fatalf("image now %q: %s", st.ImagePath, transcript(st))
	}
	if img, _ := lastOf(st, EntryImage); filepath.Base(img.Text) != "cat.jpg" {
		t.Errorf("no image entry for cat.jpg")
	}
	if st.CtxUsed >= before {
		t.Errorf("context used %d after a new image, was %d: the conversation should restart", st.CtxUsed, before)
	}
	a.Submit("/retry")
	if e, _ := lastOf(a.Snapshot(), EntryError); !strings.Contains(e.Text, "nothing to retry") {
		t.Errorf("/retry after /image: %q", e.Text)
	}
	s := sessionOf(t, a)
	if filepath.Base(s.Image) != "cat.jpg" || len(s.Turns) != 0 || len(s.All) != 1 {
		t.Errorf("session: image %s, %d turns since, %d in all", s.Image, len(s.Turns), len(s.All))
	}
}

func TestCommandsAndHints(t *testing.T) {
	a, _ := newTestApp(t, nil)
	errorOf := func(line string) string {
		t.Helper()
		n := len(a.Snapshot().Entries)
		a.Submit(line)
		st := waitIdle(t, a)
		for _, e := range st.Entries[n:] {
			if e.Kind == EntryError {
				if strings.Contains(e.Text, "\n") {
					t.Errorf("%s: error is not one line: %q", line, e.Text)
				}
				return e.Text
			}
		}
		return ""
	}
	noteOf := func(line string) string {
		t.Helper()
		n := len(a.Snapshot().Entries)
		a.Submit(line)
		st := waitIdle(t, a)
		for _, e := range st.Entries[n:] {
			if e.Kind == EntryNote {
				return e.Text
			}
			if e.Kind == EntryError {
				t.Errorf("%s: %s", line, e.Text)
			}
		}
		t.Fatalf("%s: no note", line)
		return ""
	}
	for _, c := range []struct{ line, want string }{
		{"/frobnicate", "unknown command /frobnicate"},
		{"/set temperature hot", "temperature takes a number"},
		{"/set temperature 9", "between 0 and 5"},
		{"/set top_p 0", "top_p must be"},
		{"/set top_k -3", "top_k must be"},
		{"/set max_tokens 0", "max_tokens must be"},
		{"/set seed x", "seed takes a whole number"},
		{"/set threads 0", "threads must be"},
		{"/set colour blue", "unknown setting"},
		{"/template Tell me:", "must contain {prompt}"},
		{"/image", "usage: /image PATH"},
	} {
		if got := errorOf(c.line); !strings.Contains(got, c.want) {
			t.Errorf("%s: error %q, want %q", c.line, got, c.want)
		}
	}
	if st := a.Snapshot(); st.Settings != testSettings {
		t.Errorf("bad values changed the settings: %+v", st.Settings)
	}

	list := noteOf("/set")
	for _, k := range SettingKeys {
		if !strings.Contains(list, k) {
			t.Errorf("/set list lacks %s:\n%s", k, list)
		}
	}
	if got := noteOf("/set top_k 5"); got != "top_k = 5" {
		t.Errorf("/set top_k 5: %q", got)
	}
	if got := noteOf("/set temperature 0"); got != "temperature = 0" {
		t.Errorf("/set temperature 0: %q", got)
	}
	if st := a.Snapshot(); st.Settings.TopK != 5 || st.Settings.Temperature != 0 {
		t.Errorf("settings now %+v", st.Settings)
	}
	if r := a.Submit("/template edit"); r.Prefill != "/template Question: {prompt} Answer:" {
		t.Errorf("/template edit prefill %q", r.Prefill)
	}
	noteOf("/template Q: {prompt} A:")
	if got := a.Snapshot().Settings.Template; got != "Q: {prompt} A:" {
		t.Errorf("template now %q", got)
	}
	tok := noteOf("/tokens hello there")
	if !strings.Contains(tok, "[image ×32]") || !strings.Contains(tok, `"▁Q"`) && !strings.Contains(tok, "Q") {
		t.Errorf("/tokens: %s", tok)
	}
	noteOf("/template reset")
	if got := a.Snapshot().Settings.Template; got != "Question: {prompt} Answer:" {
		t.Errorf("template after reset %q", got)
	}
	info := noteOf("/info")
	for _, w := range []string{"Model", "llama.cpp", "Context", "random weights"} {
		if !strings.Contains(info, w) {
			t.Errorf("/info lacks %q:\n%s", w, info)
		}
	}
	if h := noteOf("/help"); !strings.Contains(h, "/caption") || !strings.Contains(h, "Ctrl+C") {
		t.Errorf("/help: %s", h)
	}
	if r := a.Submit("/quit"); !r.Quit {
		t.Error("/quit does not quit")
	}
	if r := a.Submit("/q"); !r.Quit {
		t.Error("a unique prefix (/q) does not run /quit")
	}
}

func TestCaptionAndResetAndSave(t *testing.T) {
	a, _ := newTestApp(t, nil)
	a.Submit("/caption")
	st := waitIdle(t, a)
	q := st.Entries[len(st.Entries)-2]
	if !q.Caption || q.Kind != EntryQuestion {
		t.Fatalf("caption question entry = %+v", q)
	}
	a.Submit("Is it a dog?")
	st = waitIdle(t, a)
	used := st.CtxUsed
	a.Submit("/reset")
	st = waitIdle(t, a)
	if e, _ := lastOf(st, EntryNote); !strings.Contains(e.Text, "restarted") {
		t.Errorf("reset note %q", e.Text)
	}
	a.Submit("Again?")
	st = waitIdle(t, a)
	if st.CtxUsed >= used+5 {
		t.Logf("context %d after reset (was %d)", st.CtxUsed, used)
	}
	s := sessionOf(t, a)
	if len(s.Turns) != 1 || len(s.All) != 3 || !s.All[0].Caption {
		t.Errorf("session: %d turns since reset, all %+v", len(s.Turns), s.All)
	}

	out := filepath.Join(t.TempDir(), "chat.md")
	a.Submit("/save " + out)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	md := string(data)
	ans, _ := lastOf(a.Snapshot(), EntryAnswer)
	for _, w := range []string{"# blip2chat transcript", st.ImagePath, "| temperature |", "| seed | `7` |",
		"**You:** Is it a dog?", "**You:** Again?", "random weights", "Conversation restarted", strings.TrimSpace(ans.Text)} {
		if !strings.Contains(md, w) {
			t.Errorf("saved Markdown lacks %q:\n%s", w, md)
		}
	}
	a.Submit("/save")
	note, _ := lastOf(a.Snapshot(), EntryNote)
	saved := strings.TrimPrefix(note.Text, "Saved the transcript to ")
	if _, err := os.Stat(saved); err != nil {
		t.Errorf("/save without a name: %q: %v", note.Text, err)
	}
}

func TestNoModelExplainsAndOffersDemo(t *testing.T) {
	src := demoSource(t)
	a := New(Options{Demo: func() *ModelSource { return src }, SessionsDir: t.TempDir()})
	defer a.Close()
	a.Start()
	st := a.Snapshot()
	if st.Phase != NoModel {
		t.Fatalf("phase %v", st.Phase)
	}
	help, _ := lastOf(st, EntryNote)
	for _, w := range []string{"blip2chat convert", "-m", "/demo", "Salesforce/blip2"} {
		if !strings.Contains(help.Text, w) {
			t.Errorf("no-model help lacks %q:\n%s", w, help.Text)
		}
	}
	a.Submit("hello?")
	if e, _ := lastOf(a.Snapshot(), EntryError); !strings.Contains(e.Text, "no model") {
		t.Errorf("question without a model: %q", e.Text)
	}
	a.Submit("/demo")
	st = waitIdle(t, a)
	if !st.HasModel || !st.Demo || st.ImagePath == "" || st.Phase != Idle {
		t.Fatalf("after /demo: %+v\n%s", st.Phase, transcript(st))
	}
}

func TestLoadErrorIsOneLine(t *testing.T) {
	dir := t.TempDir()
	src := &ModelSource{Dir: dir, Open: func(ctx context.Context, status func(string)) (Engine, error) {
		return OpenEngine(ctx, dir, OpenOptions{})
	}}
	a := New(Options{Model: src})
	defer a.Close()
	a.Start()
	st := waitIdle(t, a)
	e, ok := lastOf(st, EntryError)
	if !ok || !strings.Contains(e.Text, "vision.gguf") || st.Phase != NoModel || st.HasModel {
		t.Fatalf("load error: %+v phase %v", e, st.Phase)
	}
}

func TestResumeRestoresTranscript(t *testing.T) {
	a, sessDir := newTestApp(t, nil)
	a.Submit("What is it?")
	waitIdle(t, a)
	a.Submit("Where?")
	waitIdle(t, a)
	id := a.Snapshot().SessionID
	want := a.Snapshot().Entries
	a.Close()

	s, err := FindSession(sessDir, id[:10])
	if err != nil {
		t.Fatal(err)
	}
	b := New(Options{Model: demoSource(t), SessionsDir: sessDir, Resume: s})
	defer b.Close()
	b.Start()
	st := waitIdle(t, b)
	if st.SessionID != id || filepath.Base(st.ImagePath) != "sample.jpg" {
		t.Fatalf("resumed session %s image %s", st.SessionID, st.ImagePath)
	}
	var qs []string
	for _, e := range st.Entries {
		if e.Kind == EntryQuestion {
			qs = append(qs, e.Text)
		}
	}
	if strings.Join(qs, "|") != "What is it?|Where?" {
		t.Errorf("resumed questions %q", qs)
	}
	wantA, _ := lastOf(State{Entries: want}, EntryAnswer)
	gotA, _ := lastOf(st, EntryAnswer)
	if wantA.Text != gotA.Text {
		t.Errorf("resumed answer %q, want %q", gotA.Text, wantA.Text)
	}
	if st.Settings.Seed != 7 {
		t.Errorf("resumed settings %+v", st.Settings)
	}
	if e, ok := lastOf(st, EntryError); ok {
		t.Errorf("resume reported: %s", e.Text)
	}
	if n, _ := lastOf(st, EntryNote); !strings.Contains(n.Text, "2 earlier turn(s) are back") {
		t.Errorf("resume note %q", n.Text)
	}
	// The restored turns are in the next prompt: the context holds them.
	b.Submit("/tokens x")
	st = waitIdle(t, b)
	var ntok int
	n, _ := lastOf(st, EntryNote)
	fmt.Sscanf(n.Text[strings.Index(n.Text, " is ")+4:], "%d", &ntok)
	if ntok < 30 { // "Question: x Answer:" alone is under 10
		t.Errorf("the next prompt is %d tokens: it lacks the restored turns (%s)", ntok, n.Text)
	}
	b.Submit("/retry")
	st = waitIdle(t, b)
	if e, _ := lastOf(st, EntryAnswer); e.Retries != 1 {
		t.Errorf("/retry after resume: %+v", e)
	}
	b.Submit("And then?")
	waitIdle(t, b)
	s2 := sessionOf(t, b)
	if len(s2.All) != 3 || s2.Path != s.Path {
		t.Errorf("resumed session file has %d turns (want 3) at %s", len(s2.All), s2.Path)
	}
}
