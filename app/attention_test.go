package app_test

import (
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/app"
)

// TestAttentionOverlay: /attention lays the queries' average (scaled so
// that its peak is 1) over the image, /attention N one query, /attention
// again takes it off; a bad N and an engine without attention say so; a
// new image drops the overlay.
func TestAttentionOverlay(t *testing.T) {
	a, eng, _ := newTestApp(t, nil)
	// Two queries over a 2x2 grid.
	eng.Attn = &app.Attention{Grid: 2, Queries: [][]float64{{0.1, 0.2, 0.3, 0.4}, {0.5, 0.3, 0.1, 0.1}}}
	a.Submit("/attention")
	st := waitIdle(t, a)
	if st.Overlay == nil || st.Overlay.Grid != 2 || !near(st.Overlay.Cells, []float64{1, 0.25 / 0.3, 0.2 / 0.3, 0.25 / 0.3}) {
		t.Fatalf("overlay %+v", st.Overlay)
	}
	a.Submit("/attention 2")
	st = waitIdle(t, a)
	if st.Overlay == nil || !near(st.Overlay.Cells, []float64{1, 0.6, 0.2, 0.2}) || !strings.Contains(st.Overlay.Label, "query 2 of 2") {
		t.Fatalf("/attention 2: overlay %+v", st.Overlay)
	}
	a.Submit("/attention")
	if st = waitIdle(t, a); st.Overlay != nil {
		t.Errorf("/attention again left %+v", st.Overlay)
	}
	for arg, want := range map[string]string{"3": "query 3 of 2", "0": "usage: /attention", "x": "usage: /attention"} {
		a.Submit("/attention " + arg)
		st = waitIdle(t, a)
		if e, ok := lastOf(st, app.EntryError); !ok || !strings.Contains(e.Text, want) || st.Overlay != nil {
			t.Errorf("/attention %s: %q, overlay %v", arg, e.Text, st.Overlay)
		}
	}
	a.Submit("/attention 1")
	if st = waitIdle(t, a); st.Overlay == nil {
		t.Fatal("no overlay")
	}
	a.Submit("/image " + st.ImagePath)
	if st = waitIdle(t, a); st.Overlay != nil {
		t.Errorf("a new image kept the old one's overlay")
	}
	eng.Attn = nil
	a.Submit("/attention")
	st = waitIdle(t, a)
	if e, ok := lastOf(st, app.EntryError); !ok || !strings.Contains(e.Text, "no attention") {
		t.Errorf("engine without attention: %q", e.Text)
	}
}

func near(got, want []float64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if d := got[i] - want[i]; d > 1e-12 || d < -1e-12 {
			return false
		}
	}
	return true
}
