package app

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
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
		{"/s", []string{"/set ", "/search ", "/save "}},
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

// TestReadOnly: the commands that may run beside a job are found as
// Submit finds them, a unique prefix included.
func TestReadOnly(t *testing.T) {
	for line, want := range map[string]bool{
		"/help": true, "/he": true, "/HELP": true, "/info": true, "/save": true, "/save x.md": true,
		"/quit": true, "/q": true,
		"/image cat.jpg": false, "/caption": false, "/retry": false, "/re": false, "/set top_k 5": false,
		"/demo": false, "/frobnicate": false, "what is it?": false, "//help": false, "": false,
	} {
		if got := ReadOnly(line); got != want {
			t.Errorf("ReadOnly(%q) = %v, want %v", line, got, want)
		}
	}
}

// TestHiddenCommands: /demo is found by its whole name only, is not
// completed, and is listed only while it applies.
func TestHiddenCommands(t *testing.T) {
	if _, ok := lookupCommand("/demo"); !ok {
		t.Error("/demo is not found")
	}
	if c, ok := lookupCommand("/d"); ok {
		t.Errorf("/d finds %s", c.Name)
	}
	if got := Complete("/d"); got != nil {
		t.Errorf("Complete(/d) = %q", got)
	}
	has := func(cs []CommandInfo, name string) bool {
		for _, c := range cs {
			if c.Name == name {
				return true
			}
		}
		return false
	}
	offer := New(Options{Demo: func() *ModelSource { return nil }})
	defer offer.Close()
	if !has(offer.Commands(), "/demo") || !has(offer.Commands(), "/image") {
		t.Errorf("with no model and a demo: %+v", offer.Commands())
	}
	plain := New(Options{})
	defer plain.Close()
	if has(plain.Commands(), "/demo") {
		t.Error("/demo listed without a demo to offer")
	}
}

// TestResolve: the settings and the image a conversation starts with.
func TestResolve(t *testing.T) {
	def := Settings{Seed: 1}
	given := Settings{Seed: 2}
	sess := &Session{Settings: &Settings{Seed: 3}, Image: "/s.jpg"}
	for _, c := range []struct {
		given  *Settings
		resume *Session
		want   int64
	}{
		{nil, nil, 1}, {&given, nil, 2}, {&given, sess, 3}, {nil, sess, 3}, {&given, &Session{}, 2},
	} {
		if got := resolveSettings(def, c.given, c.resume); got.Seed != c.want {
			t.Errorf("resolveSettings(%v, %v) = seed %d, want %d", c.given, c.resume, got.Seed, c.want)
		}
	}
	src := &ModelSource{Image: "/demo.jpg"}
	for _, c := range []struct {
		asked   string
		resume  *Session
		src     *ModelSource
		want    string
		resumed bool
	}{
		{"/a.jpg", sess, src, "/a.jpg", false},
		{"/s.jpg", sess, src, "/s.jpg", true},
		{"", sess, src, "/s.jpg", true},
		{"", &Session{}, src, "/demo.jpg", false},
		{"", nil, src, "/demo.jpg", false},
		{"", nil, &ModelSource{}, "", false},
		{"", &Session{}, &ModelSource{}, "", false},
	} {
		if got, resumed := resolveImage(c.asked, c.resume, c.src); got != c.want || resumed != c.resumed {
			t.Errorf("resolveImage(%q, %v, %q) = %q, %v; want %q, %v", c.asked, c.resume, c.src.Image, got, resumed, c.want, c.resumed)
		}
	}
}
