package app_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/app/apptest"
)

// The tests in this file are named after the defects of the reliability
// probe they keep out (issue 12).

// ask submits a question and waits for its answer.
func ask(t *testing.T, a *app.App, q string) app.State {
	t.Helper()
	a.Submit(q)
	return waitIdle(t, a)
}

// questions lists the questions of a session's turns, in order.
func questions(s *app.Session) []string {
	var qs []string
	for _, t := range s.All {
		qs = append(qs, t.Question)
	}
	return qs
}

// TestD1TwoAppsOneSession: two apps resuming one session (two terminals
// running 'chat --resume'). The second finds the session open and says
// that it saves nothing; every turn the first records is in the file, and
// no turn is lost without a word.
func TestD1TwoAppsOneSession(t *testing.T) {
	a, _, sessDir := newTestApp(t, nil)
	ask(t, a, "newest one")
	id := a.Snapshot().SessionID
	a.Close()
	s, err := app.FindSession(sessDir, id)
	if err != nil {
		t.Fatal(err)
	}
	first := resume(t, s, sessDir)
	waitIdle(t, first)
	second := resume(t, s, sessDir)
	waitIdle(t, second)
	ask(t, first, "from A 1")
	stB := ask(t, second, "from B 1")
	ask(t, first, "from A 2")

	got, err := app.FindSession(sessDir, id)
	if err != nil {
		t.Fatal(err)
	}
	saved := strings.Join(questions(got), "|")
	warned := false
	for _, e := range stB.Entries {
		if e.Kind == app.EntryError && strings.Contains(e.Text, "open in another blip2chat") {
			warned = true
		}
	}
	switch {
	case saved == "newest one|from A 1|from B 1|from A 2" || saved == "newest one|from A 1|from A 2|from B 1":
		// Both were saved (an implementation that merges writers).
	case saved == "newest one|from A 1|from A 2" && warned:
		// The second said it saves nothing.
	default:
		t.Fatalf("session holds %q; the second app warned: %v\n%s", saved, warned, transcript(stB))
	}
	if warned && stB.SessionID != "" {
		t.Errorf("the read-only app shows session %s as its own", stB.SessionID)
	}
	// Once the first is closed, the session can be continued again.
	first.Close()
	second.Close()
	third := resume(t, got, sessDir)
	waitIdle(t, third)
	st := ask(t, third, "from C")
	if s, _ := app.FindSession(sessDir, id); !strings.HasSuffix(strings.Join(questions(s), "|"), "from A 2|from C") {
		t.Errorf("after the others closed: %q\n%s", questions(s), transcript(st))
	}
}

// writeSession writes a session file of raw lines in dir, named after
// its id.
func writeSession(t *testing.T, dir, id string, lines ...string) string {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	head := fmt.Sprintf(`{"type":"session","id":%q,"time":"2026-12-02T15:09:42Z","model":"/models/m"}`, id)
	p := filepath.Join(dir, id+".jsonl")
	if err := os.WriteFile(p, []byte(strings.Join(append([]string{head}, lines...), "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func turnLine(q, a string) string {
	return fmt.Sprintf(`{"type":"turn","time":"2026-12-02T15:10:00Z","turn":{"question":%q,"answer":%q}}`, q, a)
}

// TestD2DamagedLineSkipped: a garbage line in the middle and a NUL line at
// the end of the newest session: it still loads, without those lines,
// and says which lines were skipped; --resume (latest) picks it, not the
// older session; resuming it shows the warning.
func TestD2DamagedLineSkipped(t *testing.T) {
	dir := t.TempDir()
	writeSession(t, dir, "20261202-150000-aaaaaa", turnLine("older one", "x"))
	newest := "20261202-150942-063e0e"
	writeSession(t, dir, newest, turnLine("newest one", "a"), `{"type":"turn", garbage`, turnLine("newest two", "b"), "\x00\x00\x00")
	s, err := app.FindSession(dir, "")
	if err != nil {
		t.Fatalf("latest: %v", err)
	}
	if s.ID != newest || strings.Join(questions(s), "|") != "newest one|newest two" {
		t.Fatalf("latest = %s with %q", s.ID, questions(s))
	}
	if fmt.Sprint(s.Damaged) != "[3 5]" {
		t.Errorf("damaged lines %v, want [3 5]", s.Damaged)
	}
	if s2, err := app.FindSession(dir, newest); err != nil || s2.ID != newest {
		t.Errorf("by id: %v", err)
	}
	list, errs := app.ListSessions(dir)
	if len(list) != 2 || len(errs) != 0 {
		t.Errorf("list: %d sessions, errors %v", len(list), errs)
	}

	b := resume(t, s, dir)
	st := waitIdle(t, b)
	e, ok := lastOf(st, app.EntryError)
	if !ok || !strings.Contains(e.Text, "lines 3 and 5") || !strings.Contains(e.Text, "skipped") {
		t.Errorf("no warning about the damaged lines:\n%s", transcript(st))
	}
	if st.SessionID != newest {
		t.Errorf("resumed %q", st.SessionID)
	}
}

// TestD2AmbiguousPrefix: a prefix of several sessions is an error that
// lists them, never one picked silently.
func TestD2AmbiguousPrefix(t *testing.T) {
	dir := t.TempDir()
	ids := []string{"20261202-150000-aaaaaa", "20261202-150942-063e0e", "20261203-090000-bbbbbb"}
	for _, id := range ids {
		writeSession(t, dir, id, turnLine("q", "a"))
	}
	_, err := app.FindSession(dir, "20261202")
	if err == nil || !strings.Contains(err.Error(), ids[0]) || !strings.Contains(err.Error(), ids[1]) || strings.Contains(err.Error(), ids[2]) {
		t.Fatalf("ambiguous prefix: %v", err)
	}
	if s, err := app.FindSession(dir, "20261203"); err != nil || s.ID != ids[2] {
		t.Errorf("unique prefix: %v", err)
	}
	if _, err := app.FindSession(dir, "2027"); !errorsIsNoSession(err) {
		t.Errorf("unknown id: %v", err)
	}
}

// TestU3CorruptSessionIsNotAbsent (D2/U3): a session that cannot be read
// at all (its first line is damaged) is reported as damaged, by id and as
// the latest, instead of "no session" or the next session down.
func TestU3CorruptSessionIsNotAbsent(t *testing.T) {
	dir := t.TempDir()
	writeSession(t, dir, "20261202-150000-aaaaaa", turnLine("older one", "x"))
	bad := "20261202-150942-063e0e"
	p := writeSession(t, dir, bad, turnLine("newest one", "a"))
	data, _ := os.ReadFile(p)
	os.WriteFile(p, append([]byte("\x00garbage"), data[10:]...), 0o644)
	for _, id := range []string{"", "latest", bad, bad[:15]} {
		s, err := app.FindSession(dir, id)
		if err == nil {
			t.Errorf("FindSession(%q) = %s; want an error about %s", id, s.ID, bad)
			continue
		}
		if errorsIsNoSession(err) || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "cannot be read") {
			t.Errorf("FindSession(%q): %v", id, err)
		}
	}
}

func errorsIsNoSession(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no session")
}

// TestD6KillMidAnswer: kill -9 while an answer streams. The question is in
// the session file, with the part of the answer that had streamed a
// second or more before the kill, marked as interrupted; a resumed
// session shows it and puts it back in the context.
func TestD6KillMidAnswer(t *testing.T) {
	if os.Getenv("BLIP2CHAT_TEST_D6_CHILD") != "" {
		d6Child(t)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestD6KillMidAnswer$", "-test.v")
	cmd.Env = append(os.Environ(), "BLIP2CHAT_TEST_D6_CHILD="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The child says when the answer has started streaming.
	streaming := make(chan struct{})
	var out strings.Builder
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "STREAMING" {
				close(streaming)
				break
			}
			out.WriteString(sc.Text() + "\n")
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case <-streaming:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the child never streamed:\n%s", out.String())
	}
	time.Sleep(2500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	s, err := app.FindSession(filepath.Join(dir, "sessions"), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.All) != 2 {
		t.Fatalf("the killed session holds %d turns, want 2 (the second interrupted): %+v", len(s.All), s.All)
	}
	last := s.All[1]
	if last.Question != "q2 long" || last.Stop != app.StopInterrupted || !strings.HasPrefix(last.Answer, "word0 word1") {
		t.Fatalf("the interrupted turn = %+v", last)
	}
	if n := len(strings.Fields(last.Answer)); n < 20 {
		t.Errorf("only %d words of the answer were saved in 2.5 s of streaming", n)
	}

	b := resume(t, s, filepath.Join(dir, "sessions"))
	st := waitIdle(t, b)
	if e, _ := lastOf(st, app.EntryAnswer); e.Stop != app.StopInterrupted || e.Text != last.Answer {
		t.Errorf("resumed answer %+v", e)
	}
	if n, _ := lastOf(st, app.EntryNote); !strings.Contains(n.Text, "2 earlier turn(s) are back") {
		t.Errorf("resume note %q", n.Text)
	}
	// The conversation goes on; the file stays readable.
	ask(t, b, "after the crash?")
	if s2, err := app.FindSession(filepath.Join(dir, "sessions"), s.ID); err != nil || len(s2.All) != 3 || s2.All[1].Stop != app.StopInterrupted {
		t.Errorf("after a new turn: %v %+v", err, s2)
	}
}

// d6Child asks one question, then streams a second answer a word every
// 20 ms until it is killed.
func d6Child(t *testing.T) {
	dir := os.Getenv("BLIP2CHAT_TEST_D6_CHILD")
	eng := apptest.NewEngine()
	s := testSettings
	a := app.New(app.Options{Model: eng.Source(filepath.Join(dir, "model"), apptest.WritePNG(t, dir, sampleName, 40, 30)),
		SessionsDir: filepath.Join(dir, "sessions"), Settings: &s})
	a.Start()
	waitIdle(t, a)
	ask(t, a, "q1")
	eng.Stream = make(chan string)
	a.Submit("q2 long")
	for i := 0; ; i++ {
		w := fmt.Sprintf("word%d", i)
		if i > 0 {
			w = " " + w
		}
		eng.Stream <- w
		if i == 0 {
			fmt.Println("STREAMING")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// panicky is an engine whose answers panic (a bug in the engine).
type panicky struct{ *apptest.Engine }

func (panicky) Ask(context.Context, string, func(string)) (app.Answer, error) {
	panic("boom in Ask")
}

// TestC7PanicInJobFails: a panic in a job does not end the process: the
// app closes Failed with the panic and its trace, stops its work, and
// closes; the session file keeps the question.
func TestC7PanicInJobFails(t *testing.T) {
	dir := t.TempDir()
	src := &app.ModelSource{Dir: filepath.Join(dir, "model"), Image: apptest.WritePNG(t, dir, sampleName, 40, 30),
		Open: func(context.Context, func(string)) (app.Engine, error) { return panicky{apptest.NewEngine()}, nil }}
	a := app.New(app.Options{Model: src, SessionsDir: filepath.Join(dir, "sessions")})
	defer a.Close()
	a.Start()
	waitIdle(t, a)
	if a.Err() != nil {
		t.Fatal(a.Err())
	}
	a.Submit("what?")
	select {
	case <-a.Failed():
	case <-time.After(time.Minute):
		t.Fatal("Failed never closed")
	}
	var pe *app.PanicError
	if !errors.As(a.Err(), &pe) || pe.Value != "boom in Ask" || pe.Job != "answering" || !strings.Contains(string(pe.Stack), "panicky.Ask") {
		t.Fatalf("Err = %v", a.Err())
	}
	if err := a.Close(); err != nil {
		t.Error(err)
	}
	s, err := app.FindSession(filepath.Join(dir, "sessions"), "")
	if err != nil || len(s.All) != 1 || s.All[0].Question != "what?" || s.All[0].Stop != app.StopInterrupted {
		t.Errorf("session after the panic: %v %+v", err, s)
	}
}

// TestD1ForkAndReadOnly: the ways to open a session another app holds: a
// fork continues a copy under a new id (the original is left as it is),
// read-only saves nothing.
func TestD1ForkAndReadOnly(t *testing.T) {
	a, _, sessDir := newTestApp(t, nil)
	ask(t, a, "original")
	s := sessionOf(t, a)
	open := func(mode app.ResumeMode) *app.App {
		b := app.New(app.Options{Model: apptest.NewEngine().DemoSource(s.Model, ""), SessionsDir: sessDir, Resume: s, ResumeAs: mode})
		t.Cleanup(func() { b.Close() })
		b.Start()
		waitIdle(t, b)
		return b
	}
	fork := open(app.ResumeFork)
	st := ask(t, fork, "in the fork")
	if st.SessionID == "" || st.SessionID == s.ID {
		t.Fatalf("fork session %q (original %s)", st.SessionID, s.ID)
	}
	if e, ok := lastOf(st, app.EntryError); ok {
		t.Errorf("fork: %s", e.Text)
	}
	f, err := app.FindSession(sessDir, st.SessionID)
	if err != nil || strings.Join(questions(f), "|") != "original|in the fork" || f.Fork != s.ID {
		t.Errorf("fork file: %v %+v", err, f)
	}
	ro := open(app.ResumeReadOnly)
	st = ask(t, ro, "read only")
	if st.SessionID != "" {
		t.Errorf("read-only session id %q", st.SessionID)
	}
	if !strings.Contains(transcript(st), "read-only: new turns are not saved") {
		t.Errorf("no word about read-only:\n%s", transcript(st))
	}
	ask(t, a, "original again")
	if o, _ := app.FindSession(sessDir, s.ID); strings.Join(questions(o), "|") != "original|original again" {
		t.Errorf("original: %q", questions(o))
	}
}
