package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/app"
)

func TestSessionsCommand(t *testing.T) {
	data := t.TempDir()
	t.Setenv("XDG_DATA_HOME", data)
	var out, errb bytes.Buffer
	if code := run([]string{"sessions"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "No sessions yet") {
		t.Fatalf("empty list: exit %d, %q %q", code, out.String(), errb.String())
	}
	dir := app.SessionsDir(filepath.Join(data, "blip2chat"))
	now := time.Now()
	f, err := app.CreateSession(dir, "/models/blip2-opt", false, now)
	if err != nil {
		t.Fatal(err)
	}
	f.Append(app.Record{Type: "image", Path: "/pics/cat.jpg"}, now)
	f.Append(app.Record{Type: "turn", Turn: &app.Turn{Question: "What is   in\nthe picture, in every little detail please?", Answer: "a cat"}}, now)
	out.Reset()
	if code := run([]string{"sessions"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	s := out.String()
	for _, w := range []string{"ID", f.ID, "blip2-opt", "cat.jpg", "What is in the picture, in every little…", "1 session(s)", "--resume=ID"} {
		if !strings.Contains(s, w) {
			t.Errorf("sessions output lacks %q:\n%s", w, s)
		}
	}
	// Control characters in a file name or a question are not printed.
	g, err := app.CreateSession(dir, "/models/evil\x1b[2J", false, now)
	if err != nil {
		t.Fatal(err)
	}
	g.Append(app.Record{Type: "image", Path: "/pics/c\x1b[31mat\x07.jpg"}, now)
	g.Append(app.Record{Type: "turn", Turn: &app.Turn{Question: "ring \x07 clear \x1b[2J", Answer: "x"}}, now)
	out.Reset()
	if code := run([]string{"sessions"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if s := out.String(); strings.ContainsAny(s, "\x1b\x07") || !strings.Contains(s, "c\uFFFD[31mat\uFFFD.jpg") || !strings.Contains(s, "ring \uFFFD clear \uFFFD[2J") {
		t.Errorf("sessions output with control characters:\n%q", s)
	}
	if code := run([]string{"sessions", "extra"}, &out, &errb); code != 2 {
		t.Errorf("extra argument: exit %d", code)
	}
}

func TestChatNeedsTerminalAndChecksArgs(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	for _, c := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"chat"}, "needs a terminal", 1},
		{[]string{}, "needs a terminal", 1}, // chat is the default command
		{[]string{"demo"}, "needs a terminal", 1},
		{[]string{"chat", "/no/such.jpg"}, "no such image file", 1},
		{[]string{"chat", "-m", "/no/such/model"}, "no such model folder", 1},
		{[]string{"chat", "--resume"}, "no sessions", 1},
		{[]string{"chat", "--image-style", "sixel"}, "--image-style", 1},
		{[]string{"chat", "a.jpg", "b.jpg"}, "usage: blip2chat chat", 2},
	} {
		var out, errb bytes.Buffer
		code := run(c.args, &out, &errb)
		if code != c.code || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", c.args, code, errb.String(), c.code, c.want)
		}
	}
}

func TestResumeFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		set  bool
		id   string
	}{
		{[]string{"--resume"}, true, ""},
		{[]string{"--resume=abc"}, true, "abc"},
		{[]string{"--resume=latest"}, true, ""},
		{[]string{}, false, ""},
	} {
		fs := newFlagSet(commands["chat"], &bytes.Buffer{})
		var r resumeFlag
		fs.Var(&r, "resume", "")
		if _, err := parseInterspersed(fs, c.args); err != nil {
			t.Fatal(err)
		}
		if r.set != c.set || r.id != c.id {
			t.Errorf("%q: set %v id %q", c.args, r.set, r.id)
		}
	}
}
