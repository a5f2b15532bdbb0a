package app

import (
	"context"
	"fmt"
	"strings"
)

// info shows the model, the library, the image and the timings as a
// table (Entry.Rows).
func (a *App) info() {
	a.mu.Lock()
	st := a.st
	a.mu.Unlock()
	if !st.HasModel {
		a.errorf("no model loaded")
		return
	}
	a.add(Entry{Kind: EntryNote, Rows: infoRows(st)})
}

func infoRows(st State) []Row {
	var rows []Row
	row := func(label, f string, args ...any) {
		rows = append(rows, Row{Label: label, Value: fmt.Sprintf(f, args...)})
	}
	m := st.Model
	row("Model", "%s", m.Name)
	if m.Desc != "" {
		row("", "%s", m.Desc)
	}
	if st.Demo {
		row("", "%s", st.DemoLabel)
	}
	row("Folder", "%s", TildePath(m.Dir))
	if m.Backend != "" {
		row("Library", "%s", m.Backend)
	}
	for _, d := range m.Details {
		row(d.Label, "%s", d.Value)
	}
	row("Loaded in", "%s", roundDur(m.LoadTime))
	if st.ImagePath != "" {
		img := TildePath(st.ImagePath)
		for i := len(st.Entries) - 1; i >= 0; i-- {
			if e := st.Entries[i]; e.Kind == EntryImage && e.Encoding != nil {
				img += fmt.Sprintf(" (encoded in %s)", roundDur(e.Encoding.Encode))
				break
			}
		}
		row("Image", "%s", img)
	}
	row("Context", "%d of %d tokens used", st.CtxUsed, st.CtxTotal)
	if l := st.Last; l != nil {
		row("Last", "%d prompt + %d generated tokens, first token after %s, %.1f tokens/s, %s in all",
			l.PromptTokens, l.Tokens, roundDur(l.FirstToken), l.TokensPerSec, roundDur(l.Elapsed))
	}
	if st.SessionPath != "" {
		row("Session", "%s", TildePath(st.SessionPath))
	}
	return rows
}

// tokens shows how the next prompt, with arg as the question, tokenizes.
func (a *App) tokens(arg string) {
	if !a.ready(false) {
		return
	}
	q := arg
	if q == "" {
		q = "What is in the picture?"
	}
	a.run(Working, "tokenizing", func(ctx context.Context) {
		toks, err := a.eng.Tokens(q)
		if err != nil {
			a.errorf("tokens: %v", err)
			return
		}
		var b strings.Builder
		n, soft := 0, 0
		for _, t := range toks {
			if t.Soft {
				soft++
				continue
			}
			n++
		}
		fmt.Fprintf(&b, "The next prompt with %q is %d text token(s)", q, n)
		if soft > 0 {
			fmt.Fprintf(&b, " after %d image token(s)", soft)
		}
		b.WriteString(":\n")
		for i, t := range toks {
			if t.Soft {
				if i == 0 || !toks[i-1].Soft {
					fmt.Fprintf(&b, "[image ×%d] ", soft)
				}
				continue
			}
			fmt.Fprintf(&b, "%d:%q ", t.ID, t.Piece)
		}
		a.note(strings.TrimRight(b.String(), " "))
	})
}
