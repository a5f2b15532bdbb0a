package app

import (
	"context"
	"strings"
	"time"
)

// ask puts a question about the image to the model.
func (a *App) ask(q string) {
	if !a.ready(true) {
		return
	}
	a.answer(Entry{Kind: EntryQuestion, Text: q}, func(ctx context.Context, on func(string)) (Answer, error) {
		return a.eng.Ask(ctx, q, on)
	}, Turn{Question: q}, false)
}

func (a *App) caption() {
	if !a.ready(true) {
		return
	}
	a.answer(Entry{Kind: EntryQuestion, Text: "/caption", Caption: true}, func(ctx context.Context, on func(string)) (Answer, error) {
		return a.eng.Caption(ctx, on)
	}, Turn{Caption: true}, false)
}

func (a *App) retry() {
	if !a.ready(true) {
		return
	}
	a.mu.Lock()
	last := a.lastAnswer
	var q Entry
	if last > 0 {
		q = a.st.Entries[last-1]
	}
	a.mu.Unlock()
	if last < 0 {
		a.errorf("nothing to retry: ask a question first")
		return
	}
	a.answer(Entry{}, func(ctx context.Context, on func(string)) (Answer, error) {
		return a.eng.Retry(ctx, on)
	}, Turn{Question: q.Text, Caption: q.Caption}, true)
}

// streamSave is how often the text of an answer being generated goes to
// the session file: what a kill -9 can lose of it.
const streamSave = time.Second

// answer runs one turn: it shows the question (unless retrying), streams
// the answer into its entry, and records the turn: the question as it is
// asked, the answer as it streams (every streamSave) and once finished.
func (a *App) answer(q Entry, gen func(context.Context, func(string)) (Answer, error), turn Turn, retry bool) {
	if turn.Caption {
		turn.Question = ""
	}
	a.run(Generating, "answering", func(ctx context.Context) {
		a.mu.Lock()
		now := a.opts.Now()
		var idx int
		var old Entry
		if retry {
			idx = a.lastAnswer
			old = a.st.Entries[idx]
			e := a.entryLocked(idx)
			e.Text, e.Streaming, e.Stop, e.Stats, e.Time = "", true, "", nil, now
			e.Retries++
		} else {
			q.Time = now
			a.pushLocked(q, Entry{Kind: EntryAnswer, Streaming: true, Time: now})
			idx = len(a.st.Entries) - 1
		}
		a.st.Activity = "answering"
		a.mu.Unlock()
		a.notify()
		a.record(Record{Type: "ask", Turn: &Turn{Question: turn.Question, Caption: turn.Caption}, Retry: retry})

		var unsaved strings.Builder
		saved := time.Now()
		onText := func(s string) {
			a.mu.Lock()
			a.entryLocked(idx).Text += s
			a.mu.Unlock()
			a.notify()
			unsaved.WriteString(s)
			if time.Since(saved) >= streamSave {
				a.record(Record{Type: "more", Text: unsaved.String()})
				unsaved.Reset()
				saved = time.Now()
			}
		}
		ans, err := gen(ctx, onText)

		a.mu.Lock()
		e := a.entryLocked(idx)
		e.Streaming = false
		if err != nil && ans.Text == "" && e.Text == "" {
			// Nothing came: drop the empty answer (and the question).
			if retry {
				*e = old
			} else {
				a.truncateLocked(idx - 1)
			}
			a.mu.Unlock()
			a.errorf("%v", err)
			a.record(Record{Type: "dropped"})
			return
		}
		if ans.Text != "" {
			e.Text = ans.Text
		}
		if ans.Stop == "" && ctx.Err() != nil {
			ans.Stop = StopCancelled
		}
		e.Stop = ans.Stop
		stats := ans
		e.Stats = &stats
		a.st.Last = &stats
		a.lastAnswer = idx
		if a.eng != nil {
			a.refreshUsageLocked()
		}
		set := a.st.Settings
		turn.Answer, turn.Stop = e.Text, e.Stop
		a.mu.Unlock()
		a.notify()
		if err != nil {
			a.errorf("%v", err)
		}
		a.record(Record{Type: "turn", Turn: &turn, Retry: retry, Settings: &set})
	})
}
