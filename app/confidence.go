package app

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// whyDefault is how many tokens /why lists when not told.
const whyDefault = 5

// why lists the least certain tokens of the last answer (the one /retry
// would replace, else the last shown), least certain first, each with the
// alternatives the model weighed.
func (a *App) why(arg string) {
	n := whyDefault
	if arg != "" {
		v, err := strconv.Atoi(arg)
		if err != nil || v < 1 {
			a.errorf("usage: /why [N]: N tokens, at least 1")
			return
		}
		n = v
	}
	a.mu.Lock()
	var toks []TokenConfidence
	for i := len(a.st.Entries) - 1; i >= 0; i-- {
		if e := a.st.Entries[i]; e.Kind == EntryAnswer && !e.Streaming {
			toks = e.Tokens
			break
		}
	}
	a.mu.Unlock()
	if len(toks) == 0 {
		a.errorf("no token probabilities: /why explains an answer given in this session by a model that generates")
		return
	}
	order := make([]int, len(toks))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int {
		switch {
		case toks[i].P < toks[j].P:
			return -1
		case toks[i].P > toks[j].P:
			return 1
		}
		return 0
	})
	order = order[:min(n, len(order))]
	rows := make([]Row, 0, len(order))
	for _, i := range order {
		t := toks[i]
		var alts []string
		for _, alt := range t.Top {
			alts = append(alts, fmt.Sprintf("%s %s", quoteToken(alt.Text), percent(alt.P)))
		}
		rows = append(rows, Row{Label: fmt.Sprintf("#%d %s", i+1, quoteToken(tokenText(toks, i))),
			Value: percent(t.P), Remark: strings.Join(alts, " · ")})
	}
	a.add(Entry{Kind: EntryNote, Text: fmt.Sprintf("The %d least certain of %d tokens (probability; the model's top choices):", len(rows), len(toks)), Rows: rows})
}

// tokenText is what token i adds to the answer; a token that only starts
// a character shows the character it starts.
func tokenText(toks []TokenConfidence, i int) string {
	for j := i; j < len(toks); j++ {
		if toks[j].Text != "" {
			return toks[j].Text
		}
	}
	return ""
}

// quoteToken shows a token's text so that its spaces show.
func quoteToken(s string) string { return strconv.Quote(s) }

func percent(p float64) string {
	if p < 0.001 {
		return "<0.1%"
	}
	return fmt.Sprintf("%.1f%%", 100*p)
}

// toggleConfidence switches the tint of answers by token probability.
func (a *App) toggleConfidence() {
	a.mu.Lock()
	a.st.Confidence = !a.st.Confidence
	on := a.st.Confidence
	a.mu.Unlock()
	if on {
		a.add(Entry{Kind: EntryNote, Text: "Answers are tinted by how sure the model was of each token: yellow below 80%, red below 40% (/why lists the least certain; /confidence again turns it off)."})
	} else {
		a.add(Entry{Kind: EntryNote, Text: "Answers are no longer tinted."})
	}
}
