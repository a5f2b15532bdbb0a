package app_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/app/apptest"
	"github.com/blip2chat/blip2chat/engine/lm"
)

// The tests below drive the state machine on apptest.Engine, which needs
// no model and no library: they run everywhere. demo_test.go runs the
// real engine on the demo model end to end.

// testSettings sample (the creative preset) with a fixed seed.
var testSettings = func() app.Settings {
	s := apptest.DefaultSettings
	s.MaxTokens, s.Seed = 24, 7
	s.EOS = nil // the model's (the demo's vocabulary is small)
	return s
}()

// sampleName is the image every test app starts with.
const sampleName = "sample.png"

// otherImage writes the image the tests switch to: small, so that
// decoding it is quick even under the race detector.
func otherImage(t *testing.T) string { return apptest.WritePNG(t, t.TempDir(), "cat.png", 64, 48) }

var (
	waitIdle = apptest.WaitIdle
	waitFor  = apptest.WaitFor
	lastOf   = apptest.Last
)

func transcript(st app.State) string { return apptest.Transcript(st) }

// newTestApp starts an app on a fake demo-labelled engine with a sample
// image and testSettings, and waits until it is ready. It is closed at the
// end of the test.
func newTestApp(t *testing.T, mod func(*app.Options)) (*app.App, *apptest.Engine, string) {
	t.Helper()
	eng := apptest.NewEngine()
	data := t.TempDir()
	sess := filepath.Join(data, "sessions")
	s := testSettings
	o := app.Options{Model: eng.DemoSource(filepath.Join(data, "model"), apptest.WritePNG(t, data, sampleName, 40, 30)),
		SessionsDir: sess, Settings: &s, SaveDir: t.TempDir()}
	if mod != nil {
		mod(&o)
	}
	a := app.New(o)
	t.Cleanup(func() { a.Close() })
	a.Start()
	waitIdle(t, a)
	if st := a.Snapshot(); !st.HasModel {
		t.Fatalf("model not loaded: %s", transcript(st))
	}
	return a, eng, sess
}

// sessionOf reads the app's session file back.
func sessionOf(t *testing.T, a *app.App) *app.Session {
	t.Helper()
	st := a.Snapshot()
	if st.SessionPath == "" {
		t.Fatal("no session file")
	}
	s, err := app.LoadSession(st.SessionPath)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// stream starts streaming answers from eng: pieces are then given with
// give, and end closes the stream. Call it while the app is idle.
func stream(eng *apptest.Engine) (give func(string), end func()) {
	eng.Stream, eng.Streamed = make(chan string), make(chan struct{})
	s, ack := eng.Stream, eng.Streamed
	give = func(p string) {
		s <- p
		<-ack
	}
	return give, func() { close(s) }
}

// stopStreaming goes back to whole answers once the app is idle.
func stopStreaming(eng *apptest.Engine) { eng.Stream, eng.Streamed = nil, nil }

func TestAskStreamsAndRecordsTurns(t *testing.T) {
	a, eng, _ := newTestApp(t, nil)
	st := a.Snapshot()
	if st.Settings.Seed != 7 || st.Settings.MaxTokens != 24 {
		t.Errorf("settings not applied: %+v", st.Settings)
	}
	if filepath.Base(st.ImagePath) != sampleName || st.Image == nil {
		t.Fatalf("sample image not loaded: %s", transcript(st))
	}
	if !st.Demo || !strings.Contains(st.DemoLabel, "synthetic shapes") {
		t.Errorf("demo label missing: %+v", st.DemoLabel)
	}

	// The answer streams: the entry grows while Streaming.
	give, end := stream(eng)
	a.Submit("What is in the picture?")
	var seen []string
	for _, p := range []string{"a", " cat", " on", " a", " mat"} {
		give(p)
		if e, ok := lastOf(a.Snapshot(), app.EntryAnswer); ok && e.Streaming {
			seen = append(seen, e.Text)
		}
	}
	end()
	st = waitIdle(t, a)
	stopStreaming(eng)
	ans, _ := lastOf(st, app.EntryAnswer)
	if ans.Streaming || ans.Text != "a cat on a mat" || ans.Stats == nil || ans.Stats.Tokens != 5 {
		t.Fatalf("answer = %+v", ans)
	}
	if len(seen) != 5 {
		t.Errorf("saw %d partial answers, want the answer to grow token by token", len(seen))
	}
	for _, s := range seen {
		if !strings.HasPrefix(ans.Text, s) {
			t.Errorf("partial answer %q is not a prefix of %q", s, ans.Text)
		}
	}
	if ans.Stop != lm.StopEOG {
		t.Errorf("stop = %q", ans.Stop)
	}
	if st.Last == nil || st.Last.TokensPerSec <= 0 || st.Last.FirstToken <= 0 {
		t.Errorf("no speed numbers: %+v", st.Last)
	}
	if st.CtxUsed <= 32 || st.CtxTotal < st.CtxUsed {
		t.Errorf("context %d/%d: want the 32 soft tokens and the turn counted", st.CtxUsed, st.CtxTotal)
	}

	// A second turn (cut at max_tokens), then the session file has both,
	// in order.
	a.Submit("/set max_tokens 3")
	waitIdle(t, a)
	a.Submit("And what colour is it?")
	st = waitIdle(t, a)
	if e, _ := lastOf(st, app.EntryAnswer); e.Stop != lm.StopMaxTokens || e.Text != "a small grey" {
		t.Errorf("answer cut at max_tokens: %+v", e)
	}
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
	a, eng, _ := newTestApp(t, nil)
	give, _ := stream(eng)
	a.Submit("Describe everything in great detail.")
	give("There is")
	give(" a lot")
	if !a.Cancel() {
		t.Fatal("Cancel found nothing to stop")
	}
	st := waitIdle(t, a)
	stopStreaming(eng)
	ans, _ := lastOf(st, app.EntryAnswer)
	if ans.Stop != lm.StopCancelled || ans.Text != "There is a lot" || ans.Streaming {
		t.Fatalf("after Esc: %+v", ans)
	}
	if e, ok := lastOf(st, app.EntryError); ok {
		t.Errorf("cancel reported an error: %s", e.Text)
	}
	s := sessionOf(t, a)
	if n := len(s.Turns); n != 1 || s.Turns[0].Stop != lm.StopCancelled || s.Turns[0].Answer != ans.Text {
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
	if e, _ := lastOf(st, app.EntryAnswer); e.Stop == lm.StopCancelled || e.Text == "" {
		t.Errorf("the turn after a cancel: %+v", e)
	}
}

func TestRetryReplacesLastAnswer(t *testing.T) {
	a, eng, _ := newTestApp(t, nil)
	a.Submit("/retry")
	if e, _ := lastOf(a.Snapshot(), app.EntryError); !strings.Contains(e.Text, "nothing to retry") {
		t.Errorf("/retry before a question: %q", e.Text)
	}
	a.Submit("/set seed -1") // a new draw each answer
	waitIdle(t, a)
	a.Submit("What is it?")
	st := waitIdle(t, a)
	n := len(st.Entries)
	eng.Answer = "a different draw"
	a.Submit("/retry")
	st = waitIdle(t, a)
	if len(st.Entries) != n {
		t.Fatalf("/retry added entries: %s", transcript(st))
	}
	again, _ := lastOf(st, app.EntryAnswer)
	if again.Retries != 1 || again.Text != "a different draw" {
		t.Fatalf("retried answer = %+v", again)
	}
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
	a, eng, _ := newTestApp(t, nil)
	questions := []string{"first?", "second?"}
	for _, q := range questions {
		a.Submit(q)
		waitIdle(t, a)
	}
	give, _ := stream(eng)
	a.Submit("third, never finished?")
	give("half an")
	// A kill now leaves the file as it is on disk: copy it mid-answer.
	path := a.Snapshot().SessionPath
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a.Cancel()
	waitIdle(t, a)
	stopStreaming(eng)

	s, err := app.ParseSession(data)
	if err != nil {
		t.Fatalf("session file mid-answer does not parse: %v\n%s", err, data)
	}
	// The completed turns, and the question being answered (its answer is
	// saved every second as it streams: TestD6KillMidAnswer).
	if len(s.Turns) != len(questions)+1 {
		t.Fatalf("mid-answer file holds %d turns, want the %d completed ones and the one asked", len(s.Turns), len(questions))
	}
	for i, q := range questions {
		if s.Turns[i].Question != q || s.Turns[i].Answer == "" {
			t.Errorf("turn %d = %+v", i, s.Turns[i])
		}
	}
	if last := s.Turns[2]; last.Question != "third, never finished?" || last.Stop != lm.StopInterrupted {
		t.Errorf("the turn in progress = %+v", last)
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
	other := otherImage(t)
	a, _, _ := newTestApp(t, nil)
	a.Submit("What is it?")
	waitIdle(t, a)
	before := a.Snapshot().CtxUsed

	a.Submit("/image /no/such/file.jpg")
	if e, _ := lastOf(a.Snapshot(), app.EntryError); !strings.Contains(e.Text, "no such file") {
		t.Errorf("missing file: %q", e.Text)
	}
	a.Submit("/image " + t.TempDir())
	if e, _ := lastOf(a.Snapshot(), app.EntryError); !strings.Contains(e.Text, "folder") {
		t.Errorf("folder: %q", e.Text)
	}
	bad := filepath.Join(t.TempDir(), "bad.jpg")
	os.WriteFile(bad, []byte("not an image"), 0o644)
	a.Submit("/image " + bad)
	st := waitIdle(t, a)
	if e, _ := lastOf(st, app.EntryError); !strings.Contains(e.Text, "bad.jpg") {
		t.Errorf("bad image error %q should name the file", e.Text)
	}
	if filepath.Base(st.ImagePath) != sampleName {
		t.Errorf("a bad image replaced the current one: %s", st.ImagePath)
	}

	a.Submit("/image " + other)
	st = waitIdle(t, a)
	if filepath.Base(st.ImagePath) != "cat.png" || st.Image == nil {
		t.Fatalf("image now %q: %s", st.ImagePath, transcript(st))
	}
	img, _ := lastOf(st, app.EntryImage)
	if filepath.Base(img.Text) != "cat.png" || img.Encoding == nil || img.Encoding.Tokens != apptest.SoftTokens {
		t.Errorf("image entry for cat.png: %+v", img)
	}
	if st.CtxUsed >= before {
		t.Errorf("context used %d after a new image, was %d: the conversation should restart", st.CtxUsed, before)
	}
	a.Submit("/retry")
	if e, _ := lastOf(a.Snapshot(), app.EntryError); !strings.Contains(e.Text, "nothing to retry") {
		t.Errorf("/retry after /image: %q", e.Text)
	}
	s := sessionOf(t, a)
	if filepath.Base(s.Image) != "cat.png" || len(s.Turns) != 0 || len(s.All) != 1 {
		t.Errorf("session: image %s, %d turns since, %d in all", s.Image, len(s.Turns), len(s.All))
	}
}

func TestCommandsAndHints(t *testing.T) {
	a, _, _ := newTestApp(t, nil)
	errorOf := func(line string) string {
		t.Helper()
		n := len(a.Snapshot().Entries)
		a.Submit(line)
		st := waitIdle(t, a)
		for _, e := range st.Entries[n:] {
			if e.Kind == app.EntryError {
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
			if e.Kind == app.EntryNote {
				return apptest.NoteText(e)
			}
			if e.Kind == app.EntryError {
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
	if st := a.Snapshot(); !reflect.DeepEqual(st.Settings, testSettings) {
		t.Errorf("bad values changed the settings: %+v", st.Settings)
	}

	list := noteOf("/set")
	for _, k := range app.SettingKeys {
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
	if !strings.Contains(tok, "[image ×32]") || !strings.Contains(tok, `"▁Q:"`) || !strings.Contains(tok, `"▁hello"`) {
		t.Errorf("/tokens: %s", tok)
	}
	noteOf("/template reset")
	if got := a.Snapshot().Settings.Template; got != "Question: {prompt} Answer:" {
		t.Errorf("template after reset %q", got)
	}
	info := noteOf("/info")
	for _, w := range []string{"Model fake", "Library none", "Context", "synthetic shapes", "Image", "(encoded in 1ms)"} {
		if !strings.Contains(info, w) {
			t.Errorf("/info lacks %q:\n%s", w, info)
		}
	}
	// The interface shows the help: it owns the keys.
	n := len(a.Snapshot().Entries)
	if r := a.Submit("/help"); !r.ShowHelp || len(a.Snapshot().Entries) != n {
		t.Errorf("/help: %+v", r)
	}
	if r := a.Submit("/he"); !r.ShowHelp {
		t.Errorf("/he: %+v", r)
	}
	if r := a.Submit("/quit"); !r.Quit {
		t.Error("/quit does not quit")
	}
	if r := a.Submit("/q"); !r.Quit {
		t.Error("a unique prefix (/q) does not run /quit")
	}
}

// TestReadOnlyWhileBusy: while an answer streams, the read-only commands
// run (a unique prefix too), the others are refused.
func TestReadOnlyWhileBusy(t *testing.T) {
	a, eng, _ := newTestApp(t, nil)
	give, end := stream(eng)
	a.Submit("What is it?")
	give("a")
	if !app.ReadOnly("/inf") {
		t.Error("/inf is not read-only")
	}
	a.Submit("/inf")
	if e, _ := lastOf(a.Snapshot(), app.EntryNote); !strings.Contains(apptest.NoteText(e), "Context") {
		t.Errorf("/inf while answering: %+v", e)
	}
	out := filepath.Join(t.TempDir(), "mid.md")
	a.Submit("/sa " + out)
	waitFor(t, a, "the save", func(s app.State) bool {
		e, _ := lastOf(s, app.EntryNote)
		return strings.HasPrefix(e.Text, "Saved the transcript to")
	})
	if md, err := os.ReadFile(out); err != nil || !strings.Contains(string(md), "**You:** What is it?") {
		t.Errorf("saved mid-answer: %v\n%s", err, md)
	}
	a.Submit("/reset")
	if e, _ := lastOf(a.Snapshot(), app.EntryError); !strings.Contains(e.Text, "busy answering") {
		t.Errorf("/reset while answering: %q", e.Text)
	}
	end()
	waitIdle(t, a)
}

func TestCaptionAndResetAndSave(t *testing.T) {
	a, _, _ := newTestApp(t, nil)
	a.Submit("/caption")
	st := waitIdle(t, a)
	q := st.Entries[len(st.Entries)-2]
	if !q.Caption || q.Kind != app.EntryQuestion {
		t.Fatalf("caption question entry = %+v", q)
	}
	a.Submit("Is it a dog?")
	st = waitIdle(t, a)
	used := st.CtxUsed
	a.Submit("/reset")
	st = waitIdle(t, a)
	if e, _ := lastOf(st, app.EntryReset); !strings.Contains(e.Text, "restarted") {
		t.Errorf("reset entry %q", e.Text)
	}
	if st.CtxUsed >= used {
		t.Errorf("context %d after reset (was %d)", st.CtxUsed, used)
	}
	a.Submit("Again?")
	st = waitIdle(t, a)
	s := sessionOf(t, a)
	if len(s.Turns) != 1 || len(s.All) != 3 || !s.All[0].Caption {
		t.Errorf("session: %d turns since reset, all %+v", len(s.Turns), s.All)
	}

	saved := func(line string) string {
		t.Helper()
		n := len(a.Snapshot().Entries)
		a.Submit(line)
		st := waitFor(t, a, "the save", func(s app.State) bool {
			for _, e := range s.Entries[n:] {
				if e.Kind == app.EntryError || strings.HasPrefix(e.Text, "Saved the transcript to ") {
					return true
				}
			}
			return false
		})
		e := st.Entries[len(st.Entries)-1]
		if e.Kind == app.EntryError {
			t.Fatalf("%s: %s", line, e.Text)
		}
		return strings.TrimPrefix(e.Text, "Saved the transcript to ")
	}
	out := filepath.Join(t.TempDir(), "chat.md")
	saved("/save " + out)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	md := string(data)
	ans, _ := lastOf(a.Snapshot(), app.EntryAnswer)
	for _, w := range []string{"# blip2chat transcript", st.ImagePath, "| temperature |", "| seed | `7` |",
		"**You:** Is it a dog?", "**You:** Again?", "synthetic shapes", "Conversation restarted", strings.TrimSpace(ans.Text)} {
		if !strings.Contains(md, w) {
			t.Errorf("saved Markdown lacks %q:\n%s", w, md)
		}
	}
	if p := saved("/save"); p == "" {
		t.Error("/save without a name")
	} else if _, err := os.Stat(p); err != nil {
		t.Errorf("/save without a name: %v", err)
	}
	dir := t.TempDir()
	n := len(a.Snapshot().Entries)
	a.Submit("/save " + dir)
	st = waitFor(t, a, "the refusal", func(s app.State) bool { return len(s.Entries) > n })
	if e := st.Entries[n]; e.Kind != app.EntryError || !strings.Contains(e.Text, "is a folder") {
		t.Errorf("/save FOLDER: %+v", e)
	}
}

func TestNoModelExplainsAndOffersDemo(t *testing.T) {
	eng := apptest.NewEngine()
	dir := t.TempDir()
	src := eng.DemoSource(filepath.Join(dir, "demo"), apptest.WritePNG(t, dir, sampleName, 40, 30))
	a := app.New(app.Options{Demo: func() *app.ModelSource { return src }, SessionsDir: t.TempDir()})
	defer a.Close()
	a.Start()
	st := a.Snapshot()
	if st.Phase != app.NoModel {
		t.Fatalf("phase %v", st.Phase)
	}
	help, _ := lastOf(st, app.EntryNote)
	for _, w := range []string{"blip2chat pull blip2-flan-t5-xl", "blip2chat models", "blip2chat convert", "-m", "/demo"} {
		if !strings.Contains(help.Text, w) {
			t.Errorf("no-model help lacks %q:\n%s", w, help.Text)
		}
	}
	a.Submit("hello?")
	if e, _ := lastOf(a.Snapshot(), app.EntryError); !strings.Contains(e.Text, "no model") || !strings.Contains(e.Text, "/demo") {
		t.Errorf("question without a model: %q", e.Text)
	}
	a.Submit("/demo")
	st = waitIdle(t, a)
	if !st.HasModel || !st.Demo || st.ImagePath == "" || st.Phase != app.Idle {
		t.Fatalf("after /demo: %+v\n%s", st.Phase, transcript(st))
	}
	for _, c := range a.Commands() {
		if c.Name == "/demo" {
			t.Error("/demo still offered with a model loaded")
		}
	}
}

func TestLoadErrorIsOneLine(t *testing.T) {
	dir := t.TempDir()
	src := &app.ModelSource{Dir: dir, Open: func(ctx context.Context, status func(string)) (app.Engine, error) {
		return app.OpenEngine(ctx, dir, app.OpenOptions{})
	}}
	a := app.New(app.Options{Model: src})
	defer a.Close()
	a.Start()
	st := waitIdle(t, a)
	e, ok := lastOf(st, app.EntryError)
	if !ok || !strings.Contains(e.Text, "vision.gguf") || st.Phase != app.NoModel || st.HasModel {
		t.Fatalf("load error: %+v phase %v", e, st.Phase)
	}
}

func TestResumeRestoresTranscript(t *testing.T) {
	a, eng, sessDir := newTestApp(t, nil)
	a.Submit("What is it?")
	waitIdle(t, a)
	a.Submit("Where?")
	waitIdle(t, a)
	id := a.Snapshot().SessionID
	want := a.Snapshot().Entries
	a.Close()
	if !eng.Closed() {
		t.Error("Close did not close the engine")
	}

	s, err := app.FindSession(sessDir, id[:10])
	if err != nil {
		t.Fatal(err)
	}
	b := resume(t, s, sessDir)
	st := waitIdle(t, b)
	if st.SessionID != id || filepath.Base(st.ImagePath) != sampleName {
		t.Fatalf("resumed session %s image %s", st.SessionID, st.ImagePath)
	}
	var qs []string
	for _, e := range st.Entries {
		if e.Kind == app.EntryQuestion {
			qs = append(qs, e.Text)
		}
	}
	if strings.Join(qs, "|") != "What is it?|Where?" {
		t.Errorf("resumed questions %q", qs)
	}
	wantA, _ := lastOf(app.State{Entries: want}, app.EntryAnswer)
	gotA, _ := lastOf(st, app.EntryAnswer)
	if wantA.Text != gotA.Text {
		t.Errorf("resumed answer %q, want %q", gotA.Text, wantA.Text)
	}
	if st.Settings.Seed != 7 {
		t.Errorf("resumed settings %+v", st.Settings)
	}
	if e, ok := lastOf(st, app.EntryError); ok {
		t.Errorf("resume reported: %s", e.Text)
	}
	if n, _ := lastOf(st, app.EntryNote); !strings.Contains(n.Text, "2 earlier turn(s) are back") {
		t.Errorf("resume note %q", n.Text)
	}
	// The restored turns are in the next prompt: the context holds them.
	b.Submit("/tokens x")
	st = waitIdle(t, b)
	var ntok int
	n, _ := lastOf(st, app.EntryNote)
	fmt.Sscanf(n.Text[strings.Index(n.Text, " is ")+4:], "%d", &ntok)
	if ntok < 30 { // "Question: x Answer:" alone is under 10
		t.Errorf("the next prompt is %d tokens: it lacks the restored turns (%s)", ntok, n.Text)
	}
	b.Submit("/retry")
	st = waitIdle(t, b)
	if e, _ := lastOf(st, app.EntryAnswer); e.Retries != 1 {
		t.Errorf("/retry after resume: %+v", e)
	}
	b.Submit("And then?")
	waitIdle(t, b)
	s2 := sessionOf(t, b)
	if len(s2.All) != 3 || s2.Path != s.Path {
		t.Errorf("resumed session file has %d turns (want 3) at %s", len(s2.All), s2.Path)
	}
}

// resume continues session s, as a new process would: a new engine on the
// same model folder.
func resume(t *testing.T, s *app.Session, sessDir string) *app.App {
	t.Helper()
	b := app.New(app.Options{Model: apptest.NewEngine().DemoSource(s.Model, ""), SessionsDir: sessDir, Resume: s})
	t.Cleanup(func() { b.Close() })
	b.Start()
	return b
}

// TestResumeAfterReset: a resumed transcript shows the reset, and only the
// turns after it go back into the context.
func TestResumeAfterReset(t *testing.T) {
	a, _, sessDir := newTestApp(t, nil)
	for _, line := range []string{"What is it?", "/reset", "After the reset?"} {
		a.Submit(line)
		waitIdle(t, a)
	}
	a.Close()
	s, err := app.FindSession(sessDir, "")
	if err != nil {
		t.Fatal(err)
	}
	st := waitIdle(t, resume(t, s, sessDir))
	var kinds []app.EntryKind
	for _, e := range st.Entries {
		if e.Kind == app.EntryQuestion || e.Kind == app.EntryReset {
			kinds = append(kinds, e.Kind)
		}
	}
	if fmt.Sprint(kinds) != fmt.Sprint([]app.EntryKind{app.EntryQuestion, app.EntryReset, app.EntryQuestion}) {
		t.Errorf("resumed transcript:\n%s", transcript(st))
	}
	if n, _ := lastOf(st, app.EntryNote); !strings.Contains(n.Text, "1 earlier turn(s) are back") {
		t.Errorf("resume note %q", n.Text)
	}
}

// TestEscCancelsEncoding: Esc (Cancel) while the image encodes stops it;
// the transcript says the image loading was cancelled, the previous image,
// conversation and session stay, the conversation goes on and the image
// loads when asked again.
func TestEscCancelsEncoding(t *testing.T) {
	other := otherImage(t)
	a, eng, _ := newTestApp(t, nil)
	a.Submit("What is it?")
	waitIdle(t, a)
	before := a.Snapshot()

	eng.Block = make(chan struct{})
	a.Submit("/image " + other)
	waitFor(t, a, "the encoding", func(s app.State) bool {
		return s.Phase == app.Encoding && strings.Contains(s.Progress, "encoding")
	})
	if !a.Cancel() {
		t.Fatal("Cancel found nothing to stop while encoding")
	}
	st := waitIdle(t, a)
	eng.Block = nil
	added := st.Entries[len(before.Entries):]
	if len(added) != 1 || added[0].Kind != app.EntryNote || !strings.Contains(strings.ToLower(added[0].Text), "image loading cancelled") ||
		!strings.Contains(added[0].Text, filepath.Base(before.ImagePath)) {
		t.Fatalf("entries after the cancel:\n%s", transcript(app.State{Entries: added}))
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
	if ans, _ := lastOf(st, app.EntryAnswer); ans.Retries != 1 || ans.Text == "" {
		t.Errorf("/retry after the cancel: %+v\n%s", ans, transcript(st))
	}
	if e, ok := lastOf(st, app.EntryError); ok {
		t.Errorf("error: %s", e.Text)
	}
	// Not interrupted, the image loads.
	a.Submit("/image " + other)
	st = waitIdle(t, a)
	if img, ok := lastOf(st, app.EntryImage); !ok || filepath.Base(img.Text) != "cat.png" || filepath.Base(st.ImagePath) != "cat.png" {
		t.Fatalf("image after the cancel:\n%s", transcript(st))
	}
}

// TestCloseStopsEncoding: closing the app (Ctrl+C) while an image encodes
// cancels it instead of waiting for the encoder.
func TestCloseStopsEncoding(t *testing.T) {
	other := otherImage(t)
	a, eng, _ := newTestApp(t, nil)
	eng.Block = make(chan struct{})
	defer close(eng.Block)
	a.Submit("/image " + other)
	waitFor(t, a, "the encoding", func(s app.State) bool {
		return s.Phase == app.Encoding && strings.Contains(s.Progress, "encoding")
	})
	done := make(chan error)
	go func() { done <- a.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the encoding")
	}
	if !eng.Closed() {
		t.Error("the engine was not closed")
	}
}

// TestImageDecodedOnce: the app gives the engine the image it decoded for
// the display (ToRGB's *image.NRGBA), once per image.
func TestImageDecodedOnce(t *testing.T) {
	other := otherImage(t)
	a, eng, _ := newTestApp(t, nil)
	if d := eng.Decoded.Load(); d != 1 {
		t.Errorf("the sample image: handed over %d times, want 1", d)
	}
	a.Submit("/image " + other)
	st := waitIdle(t, a)
	if d := eng.Decoded.Load(); d != 2 {
		t.Errorf("after /image: %d images handed over, want 2", d)
	}
	if eng.NotRGB.Load() {
		t.Error("SetImage got an image that is not ToRGB's *image.NRGBA")
	}
	if filepath.Base(st.ImagePath) != "cat.png" {
		t.Fatalf("image %s:\n%s", st.ImagePath, transcript(st))
	}
}

// TestRefresh: Refresh brings an old state up to the app's, whatever
// happened in between (a streamed token, a retried answer, a failed one
// dropped), and says from which entry on it changed.
func TestRefresh(t *testing.T) {
	a, eng, _ := newTestApp(t, nil)
	st := a.Snapshot()
	check := func(what string, wantFirst int) {
		t.Helper()
		first := a.Refresh(&st)
		want := a.Snapshot()
		if !reflect.DeepEqual(st, want) {
			t.Fatalf("%s: refreshed state differs:\n%s\nwant\n%s", what, transcript(st), transcript(want))
		}
		if first != wantFirst {
			t.Errorf("%s: first changed entry %d, want %d", what, first, wantFirst)
		}
	}
	n := len(st.Entries)
	check("nothing", n)
	give, end := stream(eng)
	a.Submit("What is it?")
	give("a")
	check("a new question and answer", n)
	give(" cat")
	check("a token", n+1)
	end()
	waitIdle(t, a)
	stopStreaming(eng)
	check("the end of the answer", n+1)
	a.Submit("/info")
	check("a note", n+2)
	a.Submit("/retry")
	waitIdle(t, a)
	check("a retried answer, a note after it", n+1)
	eng.Fail = errors.New("the model fell over")
	a.Submit("Again?")
	waitIdle(t, a)
	check("a failed answer dropped, an error", n+3)
	a.Submit("/retry")
	waitIdle(t, a)
	check("a failed retry: the answer as it was, an error", n+1)
}

// TestGPULayers: a GPU build that fell back to the CPU says so in one line
// once the model is loaded; /set lists where the language model runs;
// /set gpu_layers N|all says it applies at the next load (llama.cpp places
// layers when it loads), refuses other values, and is refused for a
// language model in Go (no device).
func TestGPULayers(t *testing.T) {
	const notice = "the CUDA build of llama.cpp could not load (no driver); the language model runs on the CPU"
	a, _, _ := newTestApp(t, func(o *app.Options) {
		eng := apptest.NewEngine()
		eng.Device, eng.Notice = "CPU", notice
		o.Model = eng.Source(o.Model.Dir, o.Model.Image)
	})
	st := a.Snapshot()
	var notes []string
	for _, e := range st.Entries {
		if e.Kind == app.EntryNote && strings.Contains(apptest.NoteText(e), notice) {
			notes = append(notes, apptest.NoteText(e))
		}
	}
	if len(notes) != 1 || strings.Contains(notes[0], "\n") {
		t.Errorf("fallback notice shown %d times (want one line once): %q\n%s", len(notes), notes, transcript(st))
	}
	last := func(line string) app.Entry {
		t.Helper()
		a.Submit(line)
		st := waitIdle(t, a)
		return st.Entries[len(st.Entries)-1]
	}
	if e := last("/set"); !strings.Contains(apptest.NoteText(e), "gpu_layers") {
		t.Errorf("/set does not list gpu_layers:\n%s", apptest.NoteText(e))
	}
	for _, c := range []struct {
		line string
		kind app.EntryKind
		want string
	}{
		{"/set gpu_layers 20", app.EntryNote, "gpu_layers = 20 applies when the model is loaded next: start the chat with --gpu-layers 20 (now: CPU)"},
		{"/set gpu_layers all", app.EntryNote, "--gpu-layers all"},
		{"/set gpu_layers", app.EntryNote, "gpu_layers: CPU"},
		{"/set gpu_layers -1", app.EntryError, "takes a number of layers"},
		{"/set gpu_layers many", app.EntryError, "takes a number of layers"},
	} {
		e := last(c.line)
		text := e.Text
		if e.Kind == app.EntryNote {
			text = apptest.NoteText(e)
		}
		if e.Kind != c.kind || !strings.Contains(text, c.want) {
			t.Errorf("%s: %v %q, want %v containing %q", c.line, e.Kind, text, c.kind, c.want)
		}
	}

	// The Go backend (no device) has no offload.
	g, _, _ := newTestApp(t, nil)
	g.Submit("/set gpu_layers 4")
	st = waitIdle(t, g)
	if e := st.Entries[len(st.Entries)-1]; e.Kind != app.EntryError || !strings.Contains(e.Text, "CPU only") {
		t.Errorf("/set gpu_layers on the Go backend: %v %q", e.Kind, e.Text)
	}
	if got := app.Complete("/set gp"); len(got) != 1 || got[0] != "/set gpu_layers " {
		t.Errorf("Complete(/set gp) = %q", got)
	}
}
