package app

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestSessionFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	f, err := CreateSession(dir, "/models/x", false, now)
	if err != nil {
		t.Fatal(err)
	}
	set := Settings{Temperature: 0.7, MaxTokens: 5, Seed: 1, Template: "{prompt}", Threads: 1, TopP: 1}
	recs := []Record{
		{Type: "image", Path: "/a.jpg"},
		{Type: "turn", Turn: &Turn{Question: "q1", Answer: "a1", Stop: StopEnd}, Settings: &set},
		{Type: "turn", Turn: &Turn{Question: "q1", Answer: "a1 again", Stop: StopCancelled}, Retry: true},
		{Type: "reset"},
		{Type: "turn", Turn: &Turn{Caption: true, Answer: "a cat", Stop: StopMaxTokens}},
		{Type: "image", Path: "/b.jpg"},
		{Type: "turn", Turn: &Turn{Question: "q3", Answer: "a3"}},
	}
	for i, r := range recs {
		if err := f.Append(r, now.Add(time.Duration(i+1)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	s, err := LoadSession(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != f.ID || s.Model != "/models/x" || s.Image != "/b.jpg" || !s.Created.Equal(now) || !s.Updated.Equal(now.Add(7*time.Second)) {
		t.Errorf("session %+v", s)
	}
	if len(s.Turns) != 1 || s.Turns[0].Answer != "a3" {
		t.Errorf("turns since the last image: %+v", s.Turns)
	}
	want := []string{"a1 again", "a cat", "a3"}
	if len(s.All) != 3 {
		t.Fatalf("all turns %+v", s.All)
	}
	for i, w := range want {
		if s.All[i].Answer != w {
			t.Errorf("turn %d answer %q, want %q", i, s.All[i].Answer, w)
		}
	}
	if s.Settings == nil || *s.Settings != set {
		t.Errorf("settings %+v", s.Settings)
	}

	// Continue it (once closed), then list and find.
	if _, _, err := ReopenSession(s); !errors.Is(err, ErrSessionOpen) {
		t.Errorf("reopened while open: %v", err)
	}
	f.Close()
	g, _, err := ReopenSession(s)
	if err != nil {
		t.Fatal(err)
	}
	g.Append(Record{Type: "turn", Turn: &Turn{Question: "q4", Answer: "a4"}}, now.Add(time.Minute))
	defer g.Close()
	// Ids have a one-second resolution and sort by creation.
	other, _ := CreateSession(dir, "/models/y", true, now.Add(time.Hour))
	list, errs := ListSessions(dir)
	if len(errs) != 0 || len(list) != 2 || list[0].ID != other.ID || len(list[1].All) != 4 {
		t.Fatalf("ListSessions: %d sessions, errors %v", len(list), errs)
	}
	if got, err := FindSession(dir, ""); err != nil || got.ID != other.ID {
		t.Errorf("latest = %v, %v", got, err)
	}
	if got, err := FindSession(dir, f.ID[:18]); err != nil || got.ID != f.ID {
		t.Errorf("by prefix = %v, %v", got, err)
	}
	if _, err := FindSession(dir, "2"); err == nil || !strings.Contains(err.Error(), "matches 2") {
		t.Errorf("ambiguous prefix: %v", err)
	}
	if _, err := FindSession(dir, "nope"); err == nil {
		t.Error("unknown id found")
	}
}

func TestParseSessionDamage(t *testing.T) {
	good := `{"type":"session","id":"x","time":"2026-01-01T00:00:00Z"}
{"type":"image","path":"/a.jpg"}
{"type":"turn","turn":{"question":"q","answer":"a"}}
`
	s, err := ParseSession([]byte(good))
	if err != nil || len(s.Turns) != 1 {
		t.Fatalf("good file: %v", err)
	}
	// A torn last line (an old-style append cut by a crash) is ignored.
	torn := good + `{"type":"turn","turn":{"quest`
	if s, err := ParseSession([]byte(torn)); err != nil || len(s.Turns) != 1 {
		t.Errorf("torn last line: %v", err)
	}
	// Damage in the middle is skipped, and named.
	bad := strings.Replace(good, `{"type":"image"`, `{"type":image"`, 1)
	if s, err := ParseSession([]byte(bad)); err != nil || len(s.Turns) != 1 || s.Image != "" || s.DamageNote() != "line 2 is damaged and was skipped" {
		t.Errorf("damaged line: %v %+v", err, s)
	}
	for _, s := range []string{"", "\n", "{}", `{"type":"turn"}`, "not json"} {
		if _, err := ParseSession([]byte(s)); err == nil {
			t.Errorf("ParseSession(%q) accepted", s)
		}
	}
}

func FuzzParseSession(f *testing.F) {
	f.Add([]byte(`{"type":"session","id":"x"}` + "\n" + `{"type":"turn","retry":true,"turn":{"answer":"a"}}` + "\n"))
	f.Add([]byte(`{"type":"session","id":"x"}` + "\n" + `{"type":"image","path":"p"}` + "\n" + `{"type":"reset"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSession(data)
		if err == nil && (s.ID == "" || len(s.Records) == 0) {
			t.Fatal("accepted a session without its header")
		}
	})
}

// TestSessionWriteFailureKeepsRecords: a record whose write fails (a full
// disk; here a read-only descriptor) leaves no torn line and goes out,
// in order, with the next write that works.
func TestSessionWriteFailureKeepsRecords(t *testing.T) {
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	f, err := CreateSession(t.TempDir(), "/models/x", false, now)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rw := f.f
	ro, err := os.Open(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	f.f = ro
	if err := f.Append(Record{Type: "turn", Turn: &Turn{Question: "q1", Answer: "a1"}}, now); err == nil || !strings.Contains(err.Error(), f.Path) {
		t.Fatalf("write on a read-only descriptor: %v", err)
	}
	if s, err := LoadSession(f.Path); err != nil || len(s.All) != 0 || len(s.Damaged) != 0 {
		t.Fatalf("after the failed write: %v %+v", err, s)
	}
	f.f = rw
	if err := f.Append(Record{Type: "turn", Turn: &Turn{Question: "q2", Answer: "a2"}}, now); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSession(f.Path)
	if err != nil || len(s.All) != 2 || s.All[0].Question != "q1" || s.All[1].Question != "q2" || len(s.Damaged) != 0 {
		t.Fatalf("after the write that works: %v %+v", err, s)
	}
}
