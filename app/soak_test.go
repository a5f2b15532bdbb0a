package app_test

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/goleak"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/app/apptest"
	"github.com/blip2chat/blip2chat/engine/lm"
)

// soakTurns is how many questions TestSoak asks.
const soakTurns = 500

// TestSoak runs 500 turns on the demo model through the real engine
// (llama.cpp): the context overflows again and again (the engine drops
// the oldest turns to fit; every 100th answer runs until the context is
// full, and /reset starts again), the image changes every 50 turns, every 7th turn is retried,
// every 11th is stopped with Esc mid-answer. After a warm-up of 100 turns
// the Go heap and the process's resident memory must stay flat: the slope
// of a least-squares line through them, the heap's net of what the
// transcript itself holds. The session file must read back whole, every
// turn in it, and closing the app must leave no goroutine behind. It takes
// a few minutes: -short skips it.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("a 500-turn soak (a few minutes); run without -short")
	}
	start := time.Now()
	sessDir := t.TempDir()
	images := []string{otherImage(t), apptest.WritePNG(t, t.TempDir(), "dog.png", 80, 60)}
	a := newDemoApp(t, sessDir, nil)
	set := func(line string) {
		t.Helper()
		a.Submit(line)
		if st := waitIdle(t, a); st.Entries[len(st.Entries)-1].Kind == app.EntryError {
			t.Fatalf("%s: %s", line, st.Entries[len(st.Entries)-1].Text)
		}
	}
	set("/set max_tokens 48")

	type sample struct {
		turn       int
		heap, rss  float64 // bytes
		goRes      float64 // bytes of the process the Go runtime holds (RSS at most)
		transcript float64 // bytes of text in the transcript
		goroutines int
	}
	var samples []sample
	var full, dropped, retries, stops, imageSwitches int
	maxUsed := 0
	for turn := 0; turn < soakTurns; turn++ {
		used := a.Snapshot().CtxUsed
		if turn > 0 && turn%50 == 0 {
			set("/image " + images[(turn/50)%2])
			imageSwitches++
		}
		n := len(a.Snapshot().Entries)
		switch {
		case turn%100 == 99:
			// Greedy, with the end token held back (min_new_tokens, as
			// transformers' processor does), the random demo model's
			// answer runs until the context is full.
			set("/set max_tokens 100000")
			set("/set min_new_tokens 100000")
			set("/set temperature 0")
			a.Submit("Tell me everything, and go on.")
			waitIdle(t, a)
			set("/set temperature 0.8")
			set("/set min_new_tokens 0")
			set("/set max_tokens 48")
		case turn%7 == 6:
			a.Submit("/retry")
			retries++
		case turn%11 == 10:
			set("/set max_tokens 400")
			a.Submit(fmt.Sprintf("Describe everything in great detail, turn %d.", turn))
			waitFor(t, a, "some text", func(s app.State) bool {
				e, ok := lastOf(s, app.EntryAnswer)
				return !s.Phase.Busy() || ok && e.Streaming && len(e.Text) > 8
			})
			if a.Cancel() {
				stops++
			}
			waitIdle(t, a)
			set("/set max_tokens 48")
		default:
			a.Submit(fmt.Sprintf("What is in the picture, question %d?", turn))
		}
		st := waitIdle(t, a)
		for _, x := range st.Entries[n:] {
			if x.Kind == app.EntryError && !strings.Contains(x.Text, "nothing to retry") {
				t.Fatalf("turn %d: %s", turn, x.Text)
			}
		}
		maxUsed = max(maxUsed, st.CtxUsed)
		if e, _ := lastOf(st, app.EntryAnswer); e.Stop == lm.StopContextFull {
			// The context is full: start again.
			full++
			set("/reset")
		} else if st.CtxUsed < used && turn%50 != 0 {
			dropped++ // the engine left the oldest turns out to fit
		}
		if turn%10 == 9 {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			// What the transcript holds: each entry, its revision, its
			// text and an answer's numbers.
			text := len(st.Entries) * int(unsafe.Sizeof(app.Entry{})+8)
			for _, x := range st.Entries {
				text += len(x.Text)
				if x.Stats != nil {
					text += int(unsafe.Sizeof(app.Answer{}))
				}
				for _, tok := range x.Tokens { // an answer's token probabilities
					text += int(unsafe.Sizeof(tok)) + len(tok.Text) + len(tok.Top)*int(unsafe.Sizeof(app.Alternative{}))
					for _, alt := range tok.Top {
						text += len(alt.Text)
					}
				}
			}
			samples = append(samples, sample{turn + 1, float64(ms.HeapAlloc), float64(rss()), float64(ms.Sys - ms.HeapReleased), float64(text), runtime.NumGoroutine()})
		}
	}
	elapsed := time.Since(start)

	// Flat after the warm-up: the slopes per turn, heap net of the
	// transcript's own growth.
	var xs, heap, res, native, text []float64
	maxG := 0
	for _, s := range samples {
		if s.turn > 100 {
			xs = append(xs, float64(s.turn))
			heap = append(heap, s.heap)
			res = append(res, s.rss)
			native = append(native, s.rss-s.goRes)
			text = append(text, s.transcript)
			maxG = max(maxG, s.goroutines)
		}
	}
	hs, rs, ns, ts := slope(xs, heap), slope(xs, res), slope(xs, native), slope(xs, text)
	first, last := samples[0], samples[len(samples)-1]
	t.Logf("%d turns in %v (%.0f ms/turn): the context full %d times (then /reset), the oldest turns dropped to fit %d times (context used up to %d of %d), %d retries, %d stopped with Esc, %d image switches",
		soakTurns, elapsed.Round(time.Second), float64(elapsed.Milliseconds())/soakTurns, full, dropped, maxUsed, a.Snapshot().CtxTotal, retries, stops, imageSwitches)
	t.Logf("heap %.2f MB at turn %d, %.2f MB at %d; slope after turn 100: %.0f B/turn, of which the transcript %.0f B/turn",
		first.heap/1e6, first.turn, last.heap/1e6, last.turn, hs, ts)
	if rs != 0 || last.rss != 0 {
		t.Logf("RSS %.1f MB at turn %d, %.1f MB at %d; slope after turn 100: %.0f B/turn, of which outside the Go runtime (llama.cpp, mapped files) %.0f B/turn",
			first.rss/1e6, first.turn, last.rss/1e6, last.turn, rs, ns)
		for _, s := range samples {
			if s.turn%50 == 0 {
				t.Logf("  turn %3d: heap %.2f MB, RSS %.1f MB (Go %.1f MB), %d goroutines", s.turn, s.heap/1e6, s.rss/1e6, s.goRes/1e6, s.goroutines)
			}
		}
	}
	t.Logf("goroutines: at most %d after the warm-up, %d at the end", maxG, last.goroutines)
	// The transcript keeps every entry; its slice grows by doubling, so
	// that it may hold twice its length. What grows beyond that and 1 KB
	// a turn is a leak.
	if hs > 2*ts+1024 {
		t.Errorf("the heap grows %.0f B/turn after the warm-up, the transcript %.0f B/turn", hs, ts)
	}
	// The resident memory holds the transcript too (answers keep their
	// token probabilities, some KB a turn), up to twice its size between
	// collections (GOGC 100): net of that, more than 16 KB a turn is a leak.
	if rs-2*ts > 16<<10 {
		t.Errorf("the resident memory grows %.0f KB/turn after the warm-up (the transcript %.0f KB/turn)", rs/1024, ts/1024)
	}
	if full == 0 || dropped == 0 {
		t.Errorf("the context never overflowed: full %d times, turns dropped %d times", full, dropped)
	}
	if maxG > first.goroutines+4 {
		t.Errorf("goroutines grew from %d to %d", first.goroutines, maxG)
	}

	// The session file reads back whole: every answer in the transcript is
	// a turn in it, in order.
	st := a.Snapshot()
	s, err := app.FindSession(sessDir, st.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Damaged) != 0 {
		t.Errorf("session file: %s", s.DamageNote())
	}
	var answers []string
	for _, e := range st.Entries {
		if e.Kind == app.EntryAnswer {
			answers = append(answers, e.Text)
		}
	}
	if len(s.All) != len(answers) {
		t.Fatalf("the session file holds %d turns, the transcript %d answers", len(s.All), len(answers))
	}
	for i, tr := range s.All {
		if tr.Answer != answers[i] || tr.Stop == lm.StopInterrupted {
			t.Fatalf("turn %d in the file: %+v, in the transcript %q", i, tr, answers[i])
		}
	}
	fi, _ := os.Stat(s.Path)
	t.Logf("session file: %d turns, %d records, %.1f KB", len(s.All), len(s.Records), float64(fi.Size())/1024)

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, goleak.IgnoreCurrent(), goleak.IgnoreTopFunction("github.com/blip2chat/blip2chat/engine/kernels.(*pool).worker"))
}

// slope is the least-squares slope of ys over xs.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	return (n*sxy - sx*sy) / (n*sxx - sx*sx)
}

// rss is the process's resident memory in bytes (Linux; 0 elsewhere).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}
