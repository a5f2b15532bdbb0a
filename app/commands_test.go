package app

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseLine(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Command
	}{
		{"what is it?", Command{Text: "what is it?"}},
		{"  spaced  ", Command{Text: "spaced"}},
		{"", Command{}},
		{"/image cat.jpg", Command{Name: "/image", Arg: "cat.jpg"}},
		{"/IMAGE  my cat.jpg ", Command{Name: "/image", Arg: "my cat.jpg"}},
		{"/set top_k 5", Command{Name: "/set", Arg: "top_k 5"}},
		{"/retry", Command{Name: "/retry"}},
		{"//etc/passwd is a path?", Command{Text: "/etc/passwd is a path?"}},
		{"/template\nQ: {prompt}", Command{Name: "/template", Arg: "Q: {prompt}"}},
		{"multi\nline", Command{Text: "multi\nline"}},
	} {
		if got := ParseLine(c.in); got != c.want {
			t.Errorf("ParseLine(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestComplete(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"cat.jpg", "car.PNG", "notes.txt", ".hidden.jpg"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	os.Mkdir(filepath.Join(dir, "cats"), 0o755)
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"/ca", []string{"/caption"}},
		{"/im", []string{"/image "}},
		{"/s", []string{"/set ", "/save "}},
		{"/zz", nil},
		{"hello", nil},
		{"/set te", []string{"/set temperature ", "/set template "}},
		{"/set top_", []string{"/set top_p ", "/set top_k "}},
		{"/set top_k 4", nil},
		{"/template e", []string{"/template edit "}},
		{"/image " + dir + "/ca", []string{"/image " + dir + "/car.PNG", "/image " + dir + "/cat.jpg", "/image " + dir + "/cats/"}},
		{"/image " + dir + "/n", nil}, // not an image
		{"/save " + dir + "/n", []string{"/save " + dir + "/notes.txt"}},
		{"/image " + dir + "/.h", []string{"/image " + dir + "/.hidden.jpg"}},
		{"/image /no/such/dir/x", nil},
	} {
		got := Complete(c.in)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Complete(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if p := CommonPrefix([]string{"/image a/cat.jpg", "/image a/car.png"}); p != "/image a/ca" {
		t.Errorf("CommonPrefix = %q", p)
	}
	if p := CommonPrefix(nil); p != "" {
		t.Errorf("CommonPrefix(nil) = %q", p)
	}
}

func TestSettingsWith(t *testing.T) {
	base := Settings{Temperature: 0.5, TopP: 1, TopK: 0, MaxTokens: 10, Seed: -1, Template: "Q: {prompt} A:", Threads: 2}
	for _, c := range []struct {
		key, val string
		ok       bool
		check    func(Settings) bool
	}{
		{"temperature", "0", true, func(s Settings) bool { return s.Temperature == 0 }},
		{"temperature", "1.5", true, func(s Settings) bool { return s.Temperature == 1.5 }},
		{"temperature", "-1", false, nil},
		{"temperature", "NaN", false, nil},
		{"top_p", "0.9", true, func(s Settings) bool { return s.TopP == 0.9 }},
		{"top_p", "1.01", false, nil},
		{"top_k", "40", true, func(s Settings) bool { return s.TopK == 40 }},
		{"top_k", "4.5", false, nil},
		{"max_tokens", "256", true, func(s Settings) bool { return s.MaxTokens == 256 }},
		{"max_tokens", "0", false, nil},
		{"seed", "-1", true, func(s Settings) bool { return s.Seed == -1 }},
		{"seed", "4294967294", true, func(s Settings) bool { return s.Seed == 4294967294 }},
		{"seed", "4294967295", false, nil},
		{"template", `"Q: {prompt}\nA:"`, true, func(s Settings) bool { return s.Template == "Q: {prompt}\nA:" }},
		{"template", "{prompt}", true, func(s Settings) bool { return s.Template == "{prompt}" }},
		{"template", "no placeholder", false, nil},
		{"threads", "4", true, func(s Settings) bool { return s.Threads == 4 }},
		{"threads", "0", false, nil},
		{"nope", "1", false, nil},
	} {
		got, err := base.With(c.key, c.val)
		if (err == nil) != c.ok {
			t.Errorf("With(%s, %s): err %v, want ok=%v", c.key, c.val, err, c.ok)
			continue
		}
		if err != nil {
			if got != base {
				t.Errorf("With(%s, %s) failed but changed the settings", c.key, c.val)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			continue
		}
		if !c.check(got) {
			t.Errorf("With(%s, %s) = %+v", c.key, c.val, got)
		}
		v, _ := got.Get(c.key)
		if again, err := base.With(c.key, v); err != nil || again != got {
			t.Errorf("Get(%s) = %q does not parse back: %v", c.key, v, err)
		}
	}
}

func TestSessionFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	f, err := CreateSession(dir, "/models/x", false)
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
	for _, r := range recs {
		if err := f.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	s, err := LoadSession(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != f.ID || s.Model != "/models/x" || s.Image != "/b.jpg" {
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

	// Continue it, then list and find.
	g, err := ReopenSession(s)
	if err != nil {
		t.Fatal(err)
	}
	g.Append(Record{Type: "turn", Turn: &Turn{Question: "q4", Answer: "a4"}})
	time.Sleep(1100 * time.Millisecond) // ids have a one-second resolution
	other, _ := CreateSession(dir, "/models/y", true)
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
	// Damage in the middle is an error naming the line.
	bad := strings.Replace(good, `{"type":"image"`, `{"type":image"`, 1)
	if _, err := ParseSession([]byte(bad)); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("damaged line: %v", err)
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
