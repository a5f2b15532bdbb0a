package app_test

import (
	"os"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/app"
)

// fakeConfidence is a three-token answer's confidence, "a" the least
// certain.
var fakeConfidence = []app.TokenConfidence{
	{ID: 5, Text: "a", P: 0.31, Top: []app.Alternative{{Text: "the", P: 0.52}, {Text: "a", P: 0.31}}},
	{ID: 6, Text: " cat", P: 0.97, Top: []app.Alternative{{Text: " cat", P: 0.97}}},
	{ID: 7, Text: " sits", P: 0.62, Top: []app.Alternative{{Text: " sits", P: 0.62}, {Text: " lies", P: 0.2}}},
}

// TestWhyAndConfidence: an answer's token probabilities reach its entry
// and the session file (and come back when it is resumed); /why lists the
// least certain tokens first with their alternatives; /confidence toggles
// the tint; an old session without them still loads.
func TestWhyAndConfidence(t *testing.T) {
	a, eng, sessDir := newTestApp(t, nil)
	eng.Answer, eng.Confidence = "a cat sits", fakeConfidence
	a.Submit("What is it?")
	st := waitIdle(t, a)
	ans, _ := lastOf(st, app.EntryAnswer)
	if len(ans.Tokens) != 3 || ans.Tokens[0].P != 0.31 {
		t.Fatalf("answer tokens %+v", ans.Tokens)
	}
	a.Submit("/why 2")
	st = waitIdle(t, a)
	n, _ := lastOf(st, app.EntryNote)
	if len(n.Rows) != 2 || !strings.Contains(n.Rows[0].Label, `"a"`) || n.Rows[0].Value != "31.0%" ||
		!strings.Contains(n.Rows[0].Remark, `"the" 52.0%`) || !strings.Contains(n.Rows[1].Label, `" sits"`) {
		t.Errorf("/why 2: %q %+v", n.Text, n.Rows)
	}
	a.Submit("/why x")
	st = waitIdle(t, a)
	if e, ok := lastOf(st, app.EntryError); !ok || !strings.Contains(e.Text, "usage: /why") {
		t.Errorf("/why x: %+v", e)
	}
	if st.Confidence {
		t.Fatal("tinted before /confidence")
	}
	a.Submit("/confidence")
	if st = waitIdle(t, a); !st.Confidence {
		t.Error("/confidence did not turn the tint on")
	}
	a.Submit("/confidence")
	if st = waitIdle(t, a); st.Confidence {
		t.Error("/confidence did not turn the tint off")
	}

	s := sessionOf(t, a)
	if len(s.All) != 1 || len(s.All[0].Tokens) != 3 || s.All[0].Tokens[2].Top[1].Text != " lies" {
		t.Fatalf("session turns %+v", s.All)
	}
	a.Close()
	b := resume(t, s, sessDir)
	st = waitIdle(t, b)
	if got, _ := lastOf(st, app.EntryAnswer); len(got.Tokens) != 3 || got.Tokens[1].Text != " cat" {
		t.Errorf("resumed answer tokens %+v", got.Tokens)
	}
	b.Close()

	// A session written before tokens were recorded.
	old := strings.Join([]string{
		`{"type":"session","time":"2026-01-01T00:00:00Z","id":"20260101-000000-abcdef","model":"m"}`,
		`{"type":"turn","time":"2026-01-01T00:00:01Z","turn":{"question":"q","answer":"an answer","stop":"end"}}`,
	}, "\n") + "\n"
	path := t.TempDir() + "/20260101-000000-abcdef.jsonl"
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	os1, err := app.LoadSession(path)
	if err != nil || len(os1.All) != 1 || os1.All[0].Answer != "an answer" || os1.All[0].Tokens != nil {
		t.Fatalf("old session: %+v, %v", os1, err)
	}
}

// TestDemoModelConfidenceAndAttention: on the real (demo) model an answer
// carries one probability per token, each in (0, 1] with its best
// alternatives in order, whose pieces spell the answer; /why lists them;
// /attention lays a 16x16 map over the image whose peak is 1.
func TestDemoModelConfidenceAndAttention(t *testing.T) {
	a := newDemoApp(t, t.TempDir(), nil)
	a.Submit("What is in the picture?")
	st := waitIdle(t, a)
	ans, _ := lastOf(st, app.EntryAnswer)
	if ans.Stats == nil || len(ans.Tokens) != ans.Stats.Tokens || len(ans.Tokens) == 0 {
		t.Fatalf("answer %q: %d tokens of confidence for %v", ans.Text, len(ans.Tokens), ans.Stats)
	}
	var text strings.Builder
	for i, tok := range ans.Tokens {
		text.WriteString(tok.Text)
		if !(tok.P > 0 && tok.P <= 1) || len(tok.Top) != 5 || tok.Top[0].P < tok.P {
			t.Errorf("token %d: %+v", i, tok)
		}
		for j := 1; j < len(tok.Top); j++ {
			if tok.Top[j].P > tok.Top[j-1].P {
				t.Errorf("token %d: alternatives not best first: %+v", i, tok.Top)
			}
		}
	}
	if got := strings.TrimLeft(text.String(), " "); got != ans.Text {
		t.Errorf("the tokens spell %q, the answer is %q", got, ans.Text)
	}
	a.Submit("/why")
	st = waitIdle(t, a)
	if n, _ := lastOf(st, app.EntryNote); len(n.Rows) == 0 || !strings.Contains(n.Text, "least certain") {
		t.Errorf("/why: %q %+v", n.Text, n.Rows)
	}
	a.Submit("/attention")
	st = waitIdle(t, a)
	if e, ok := lastOf(st, app.EntryError); ok {
		t.Fatalf("/attention: %s", e.Text)
	}
	hm := st.Overlay
	if hm == nil || len(hm.Cells) != hm.Grid*hm.Grid || hm.Grid < 2 {
		t.Fatalf("overlay %+v", hm)
	}
	peak := 0.0
	for _, v := range hm.Cells {
		peak = max(peak, v)
	}
	if peak != 1 {
		t.Errorf("overlay peak %g, want 1", peak)
	}
	t.Logf("%d tokens; attention grid %dx%d", len(ans.Tokens), hm.Grid, hm.Grid)
}
