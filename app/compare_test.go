package app_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/app"
)

// TestCompare: /compare answers the last question again under each
// setting and shows the answers as columns, titled by setting; the
// conversation's answer and the settings stay as they were; bad settings
// and a missing question say what to do.
func TestCompare(t *testing.T) {
	a, eng, _ := newTestApp(t, nil)
	a.Submit("/compare max_tokens=2")
	st := waitIdle(t, a)
	if e, _ := lastOf(st, app.EntryError); !strings.Contains(e.Text, "ask a question first") {
		t.Errorf("before a question: %q", e.Text)
	}
	a.Submit("what is it?")
	st = waitIdle(t, a)
	before := st.Settings
	answer, _ := lastOf(st, app.EntryAnswer)
	a.Submit("/compare max_tokens=2 vqa+max_tokens=4 max_tokens=3")
	st = waitIdle(t, a)
	e, _ := lastOf(st, app.EntryNote)
	words := strings.Fields(eng.Answer)
	want := []app.Column{
		{Title: "max_tokens=2", Text: strings.Join(words[:2], " ")},
		{Title: "vqa+max_tokens=4", Text: strings.Join(words[:4], " ")},
		{Title: "max_tokens=3", Text: strings.Join(words[:3], " ")},
	}
	if len(e.Columns) != len(want) || !strings.Contains(e.Text, "what is it?") {
		t.Fatalf("compare note %+v", e)
	}
	for i, c := range e.Columns {
		if c.Title != want[i].Title || c.Text != want[i].Text {
			t.Errorf("column %d: %q %q, want %q %q", i, c.Title, c.Text, want[i].Title, want[i].Text)
		}
	}
	if after, _ := lastOf(st, app.EntryAnswer); after.Text != answer.Text {
		t.Errorf("the conversation's answer changed: %q, was %q", after.Text, answer.Text)
	}
	if !reflect.DeepEqual(st.Settings, before) || !reflect.DeepEqual(eng.Settings(), before) {
		t.Errorf("settings changed: %+v, were %+v", st.Settings, before)
	}
	for _, c := range []struct{ line, want string }{
		{"/compare", "usage: /compare"},
		{"/compare fast", `no preset "fast"`},
		{"/compare max_tokens=0", "max_tokens must be at least 1"},
		{"/compare a b c d e f g", "at most 6"},
	} {
		a.Submit(c.line)
		st := waitIdle(t, a)
		if e, _ := lastOf(st, app.EntryError); !strings.Contains(e.Text, c.want) {
			t.Errorf("%s: %q, want %q", c.line, e.Text, c.want)
		}
	}
}
