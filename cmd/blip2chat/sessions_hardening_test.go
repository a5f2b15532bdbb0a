package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/app"
)

// sessionsDir points the data folder at a new temporary folder and
// returns its sessions folder.
func sessionsDir(t *testing.T) string {
	data := t.TempDir()
	t.Setenv("XDG_DATA_HOME", data)
	return app.SessionsDir(filepath.Join(data, "blip2chat"))
}

func runArgs(args ...string) (code int, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, errb.String()
}

// TestD1ResumeRefusesOpenSession: 'chat --resume' on a session that
// another blip2chat has open refuses with one line that gives the way to
// a copy (--fork) or a look (--read-only); those get past the check (to
// the terminal check, here).
func TestD1ResumeRefusesOpenSession(t *testing.T) {
	dir := sessionsDir(t)
	f, err := app.CreateSession(dir, "", true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, args := range [][]string{{"chat", "--resume=" + f.ID}, {"chat", "--resume", f.ID[:17]}, {"chat", "--resume"}} {
		code, msg := runArgs(args...)
		if code != 1 || !strings.Contains(msg, "is open in another blip2chat") || !strings.Contains(msg, "--resume="+f.ID+" --fork") ||
			!strings.Contains(msg, "--read-only") || strings.Count(msg, "\n") != 1 {
			t.Errorf("%q: exit %d, %q", args, code, msg)
		}
	}
	for _, args := range [][]string{{"chat", "--resume=" + f.ID, "--fork"}, {"chat", "--resume=" + f.ID, "--read-only"}} {
		if code, msg := runArgs(args...); code != 1 || !strings.Contains(msg, "needs a terminal") {
			t.Errorf("%q: exit %d, %q", args, code, msg)
		}
	}
	for _, args := range [][]string{{"chat", "--fork"}, {"chat", "--resume", "--fork", "--read-only"}} {
		if code, msg := runArgs(args...); code != 2 || !strings.Contains(msg, "go with --resume") {
			t.Errorf("%q: exit %d, %q", args, code, msg)
		}
	}
	// Closed, it resumes (past the check).
	f.Close()
	if code, msg := runArgs("chat", "--resume="+f.ID); code != 1 || !strings.Contains(msg, "needs a terminal") {
		t.Errorf("closed session: exit %d, %q", code, msg)
	}
}

// TestD2ResumeNeverSwitchesSessions: an ambiguous prefix, given either way,
// is an error listing the sessions; a damaged latest session is an error
// naming it, not the next one resumed; 'sessions' names the damaged
// lines.
func TestD2ResumeNeverSwitchesSessions(t *testing.T) {
	dir := sessionsDir(t)
	now := time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 2 {
		f, err := app.CreateSession(dir, "", true, now.Add(time.Duration(i)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		f.Append(app.Record{Type: "turn", Turn: &app.Turn{Question: "q", Answer: "a"}}, now)
		f.Append(app.Record{Type: "turn", Turn: &app.Turn{Question: "q2", Answer: "a2"}}, now)
		f.Close()
		ids = append(ids, f.ID)
	}
	for _, args := range [][]string{{"chat", "--resume=20261202"}, {"chat", "--resume", "20261202"}} {
		code, msg := runArgs(args...)
		if code != 1 || !strings.Contains(msg, "matches 2 sessions") || !strings.Contains(msg, ids[0]) || !strings.Contains(msg, ids[1]) {
			t.Errorf("%q: exit %d, %q", args, code, msg)
		}
	}
	// A garbage line in the newest: it resumes, and 'sessions' says so.
	p := filepath.Join(dir, ids[1]+".jsonl")
	data, _ := os.ReadFile(p)
	lines := strings.SplitAfter(string(data), "\n")
	os.WriteFile(p, []byte(lines[0]+lines[1]+"{garbage\n"+lines[2]), 0o644)
	var out, errb bytes.Buffer
	if code := run([]string{"sessions"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "line 3 is damaged and was skipped") ||
		!strings.Contains(out.String(), "2 session(s)") {
		t.Errorf("sessions: exit %d, %q %q", code, out.String(), errb.String())
	}
	if code, msg := runArgs("chat", "--resume"); code != 1 || !strings.Contains(msg, "needs a terminal") {
		t.Errorf("damaged line: exit %d, %q", code, msg)
	}
	// Its first line damaged: unreadable, and said so.
	os.WriteFile(p, []byte("\x00"+string(data[1:])), 0o644)
	for _, args := range [][]string{{"chat", "--resume"}, {"chat", "--resume=" + ids[1]}} {
		code, msg := runArgs(args...)
		if code != 1 || !strings.Contains(msg, ids[1]+" cannot be read") {
			t.Errorf("%q: exit %d, %q", args, code, msg)
		}
	}
}
