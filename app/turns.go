package app

import (
	"context"
	"strings"
	"time"

	"github.com/blip2chat/blip2chat/engine/generate"
	"github.com/blip2chat/blip2chat/engine/lm"
)

// ask puts a question about the image to the model.
func (a *App) ask(q string) {
	if !a.ready(true) {
		return
	}
	a.answer(Entry{Kind: EntryQuestion, Text: q}, func(ctx context.Context, out generate.Stream) (Answer, error) {
		return a.eng.Ask(ctx, q, out)
	}, Turn{Question: q}, false)
}

func (a *App) caption() {
	if !a.ready(true) {
		return
	}
	a.answer(Entry{Kind: EntryQuestion, Text: "/caption", Caption: true}, func(ctx context.Context, out generate.Stream) (Answer, error) {
		return a.eng.Caption(ctx, out)
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
	a.answer(Entry{}, func(ctx context.Context, out generate.Stream) (Answer, error) {
		return a.eng.Retry(ctx, out)
	}, Turn{Question: q.Text, Caption: q.Caption}, true)
}

// streamSave is how often the text of an answer being generated goes to
// the session file: what a kill -9 can lose of it.
const streamSave = time.Second

// answer runs one turn: it shows the question (unless retrying), streams
// the answer into its entry (beam search: its best hypothesis, replaced at
// each step), and records the turn: the question as it is asked, the answer
// as it streams (every streamSave: the new text, or beam search's best
// hypothesis) and once finished.
func (a *App) answer(q Entry, gen func(context.Context, generate.Stream) (Answer, error), turn Turn, retry bool) {
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
			e.Text, e.Streaming, e.Hypothesis, e.Stop, e.Stats, e.Time, e.Tokens = "", true, false, lm.StopNone, nil, now, nil
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
		onBest := func(s string) {
			a.mu.Lock()
			e := a.entryLocked(idx)
			e.Text, e.Hypothesis = s, true
			a.mu.Unlock()
			a.notify()
			if time.Since(saved) >= streamSave {
				a.record(Record{Type: "best", Text: s})
				saved = time.Now()
			}
		}
		ans, err := gen(ctx, generate.Stream{Text: onText, Best: onBest})

		a.mu.Lock()
		e := a.entryLocked(idx)
		e.Streaming, e.Hypothesis = false, false
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
		if ans.Stop == lm.StopNone && ctx.Err() != nil {
			ans.Stop = lm.StopCancelled
		}
		e.Stop = ans.Stop
		e.Tokens = ans.Confidence
		stats := ans
		e.Stats = &stats
		a.st.Last = &stats
		a.lastAnswer = idx
		if a.eng != nil {
			a.refreshUsageLocked()
		}
		set := a.st.Settings
		turn.Answer, turn.Stop, turn.Tokens = e.Text, e.Stop, ans.Confidence
		a.mu.Unlock()
		a.notify()
		if err != nil {
			a.errorf("%v", err)
		}
		a.record(Record{Type: "turn", Turn: &turn, Retry: retry, Settings: &set})
	})
}
