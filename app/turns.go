package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"
)

// Submit handles one line of input: a question, or a slash command. Quick
// commands are done before it returns; slow work (answers, images) starts
// in the background. Errors and hints go to the transcript as one line.
func (a *App) Submit(line string) Result {
	c := ParseLine(line)
	if c.Name == "" {
		if c.Text == "" {
			return Result{}
		}
		a.ask(c.Text)
		return Result{}
	}
	info, ok := lookupCommand(c.Name)
	if !ok {
		if c.Name == "/demo" {
			a.startDemo()
			return Result{}
		}
		a.errorf("unknown command %s; /help lists the commands", c.Name)
		return Result{}
	}
	switch info.Name {
	case "/quit":
		return Result{Quit: true}
	case "/help":
		a.note(helpText())
	case "/image":
		a.image(c.Arg)
	case "/caption":
		a.caption()
	case "/retry":
		a.retry()
	case "/reset":
		a.reset()
	case "/set":
		a.set(c.Arg)
	case "/template":
		return a.template(c.Arg)
	case "/tokens":
		a.tokens(c.Arg)
	case "/save":
		a.save(c.Arg)
	case "/info":
		a.info()
	}
	return Result{}
}

// Keys lists the keys of the interface for /help (the interface shows
// the same with ?).
var Keys = [][2]string{
	{"Enter", "send"},
	{"Alt+Enter, Ctrl+J", "new line"},
	{"Tab", "complete a command, setting or path"},
	{"↑ / ↓", "input history"},
	{"Esc", "stop the answer or the image encoding · close help"},
	{"PgUp / PgDn, wheel", "scroll the transcript (also Ctrl+B / Ctrl+F)"},
	{"Ctrl+Home / Ctrl+End", "top / bottom of the transcript"},
	{"Ctrl+T", "image style: ascii or half-block"},
	{"Ctrl+L", "redraw the screen"},
	{"?", "all keys and commands (when the input is empty)"},
	{"Ctrl+C", "quit"},
}

// helpText lists the commands and keys.
func helpText() string {
	var b strings.Builder
	b.WriteString("Commands:\n")
	for _, c := range Commands {
		fmt.Fprintf(&b, "  %-24s  %s\n", strings.TrimSpace(c.Name+" "+c.Args), c.Summary)
	}
	b.WriteString("Type a question to ask about the image; start it with // to ask something that begins with /.\n")
	b.WriteString("Keys:\n")
	for _, k := range Keys {
		// Pad by characters: the arrows are several bytes.
		fmt.Fprintf(&b, "  %s%s  %s\n", k[0], strings.Repeat(" ", max(0, 24-utf8.RuneCountInString(k[0]))), k[1])
	}
	b.WriteString("Editing: Ctrl+A/E line start/end · Alt+←/→ word · Ctrl+W/Alt+Backspace delete word · Ctrl+U/Ctrl+K delete to start/end of line")
	return b.String()
}

// ready checks that a model (and, if image, an image) is there and nothing
// runs, saying what is missing.
func (a *App) ready(image bool) bool {
	a.mu.Lock()
	has, busy, activity, img := a.st.HasModel, a.st.Phase.Busy(), a.st.Activity, a.st.ImagePath
	a.mu.Unlock()
	switch {
	case busy:
		a.errorf("busy %s: wait, or press Esc to stop it", activity)
	case !has:
		a.errorf("no model loaded%s", map[bool]string{true: "; type /demo to try the demo model", false: ""}[a.opts.Demo != nil])
	case image && img == "":
		a.errorf("no image yet: load one with /image PATH")
	default:
		return true
	}
	return false
}

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

// answer runs one turn: it shows the question (unless retrying), streams
// the answer into its entry, and records the finished turn.
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
			e := &a.st.Entries[idx]
			e.Text, e.Streaming, e.Stop, e.Stats, e.Time = "", true, "", nil, now
			e.Retries++
		} else {
			q.Time = now
			a.st.Entries = append(a.st.Entries, q, Entry{Kind: EntryAnswer, Streaming: true, Time: now})
			idx = len(a.st.Entries) - 1
		}
		a.st.Activity = "answering"
		a.mu.Unlock()
		a.notify()

		onText := func(s string) {
			a.mu.Lock()
			a.st.Entries[idx].Text += s
			a.mu.Unlock()
			a.notify()
		}
		ans, err := gen(ctx, onText)

		a.mu.Lock()
		e := &a.st.Entries[idx]
		e.Streaming = false
		if err != nil && ans.Text == "" && e.Text == "" {
			// Nothing came: drop the empty answer (and the question).
			if retry {
				a.st.Entries[idx] = old
			} else {
				a.st.Entries = a.st.Entries[:idx-1]
			}
			a.mu.Unlock()
			a.errorf("%v", err)
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

func (a *App) image(arg string) {
	if arg == "" {
		a.errorf("usage: /image PATH (Tab completes the path)")
		return
	}
	path := expandHome(strings.Trim(arg, `"'`))
	st, err := os.Stat(path)
	switch {
	case err != nil:
		a.errorf("%s: no such file", path)
		return
	case st.IsDir():
		a.errorf("%s is a folder; give an image file", path)
		return
	}
	if !a.ready(false) {
		return
	}
	a.run(Encoding, "encoding image", func(ctx context.Context) { a.setImage(ctx, path, false) })
}

func (a *App) reset() {
	if !a.ready(false) {
		return
	}
	a.run(Working, "resetting", func(ctx context.Context) {
		if err := a.eng.Reset(); err != nil {
			a.errorf("reset: %v", err)
			return
		}
		a.mu.Lock()
		a.lastAnswer = -1
		a.refreshUsageLocked()
		a.mu.Unlock()
		a.note("Conversation restarted: the model forgets the turns above (the image stays).")
		a.record(Record{Type: "reset"})
	})
}

func (a *App) set(arg string) {
	a.mu.Lock()
	cur, has := a.st.Settings, a.st.HasModel
	a.mu.Unlock()
	if arg == "" {
		if !has {
			a.errorf("no model loaded: settings come with the model")
			return
		}
		var b strings.Builder
		b.WriteString("Settings (change with /set KEY VALUE):")
		for _, k := range SettingKeys {
			v, _ := cur.Get(k)
			fmt.Fprintf(&b, "\n  %-12s %-22s %s", k, v, settingHelp[k])
		}
		a.note(b.String())
		return
	}
	key, val, _ := strings.Cut(arg, " ")
	key = strings.ToLower(strings.TrimSpace(key))
	if strings.TrimSpace(val) == "" {
		if v, ok := cur.Get(key); ok {
			a.notef("%s = %s (%s)", key, v, settingHelp[key])
		} else {
			a.errorf("unknown setting %q; settings: %s", key, strings.Join(SettingKeys, ", "))
		}
		return
	}
	next, err := cur.With(key, val)
	if err != nil {
		a.errorf("%v", err)
		return
	}
	a.applySettings(next, key)
}

// applySettings hands new settings to the engine (a short job, so that it
// never runs beside an answer).
func (a *App) applySettings(next Settings, key string) {
	if !a.ready(false) {
		return
	}
	a.run(Working, "applying settings", func(ctx context.Context) {
		if err := a.eng.Apply(next); err != nil {
			a.errorf("%s: %v", key, err)
			return
		}
		a.mu.Lock()
		a.st.Settings = a.eng.Settings()
		v, _ := a.st.Settings.Get(key)
		set := a.st.Settings
		a.mu.Unlock()
		a.notef("%s = %s", key, v)
		a.record(Record{Type: "settings", Settings: &set})
	})
}

func (a *App) template(arg string) Result {
	a.mu.Lock()
	cur, def, has := a.st.Settings.Template, a.defaults.Template, a.st.HasModel
	a.mu.Unlock()
	if !has {
		a.errorf("no model loaded: the template comes with the model")
		return Result{}
	}
	switch arg {
	case "":
		a.notef("Prompt template: %q\n{prompt} is replaced by your text. /template edit puts it in the input box; /template reset restores %q.", cur, def)
	case "edit":
		return Result{Prefill: "/template " + cur}
	case "reset":
		a.mu.Lock()
		next := a.st.Settings
		a.mu.Unlock()
		next.Template = def
		a.applySettings(next, "template")
	default:
		a.mu.Lock()
		next := a.st.Settings
		a.mu.Unlock()
		n, err := next.With("template", arg)
		if err != nil {
			a.errorf("%v", err)
			return Result{}
		}
		a.applySettings(n, "template")
	}
	return Result{}
}

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

func (a *App) info() {
	a.mu.Lock()
	st := a.st
	a.mu.Unlock()
	if !st.HasModel {
		a.errorf("no model loaded")
		return
	}
	var b strings.Builder
	// One "Label     value" line per fact; the interface indents wrapped
	// lines under the value column.
	row := func(label, f string, args ...any) {
		fmt.Fprintf(&b, "%-9s %s\n", label, fmt.Sprintf(f, args...))
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
			if e := st.Entries[i]; e.Kind == EntryImage && e.Stats != nil {
				img += fmt.Sprintf(" (encoded in %s)", roundDur(e.Stats.Elapsed))
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
	a.note(strings.TrimSuffix(b.String(), "\n"))
}

// save writes the transcript as Markdown: the image, the model, the
// settings and the turns.
func (a *App) save(arg string) {
	a.mu.Lock()
	st := a.st
	st.Entries = append([]Entry(nil), a.st.Entries...)
	a.mu.Unlock()
	path := expandHome(strings.Trim(arg, `"'`))
	if path == "" {
		name := "blip2chat-" + a.opts.Now().Format("20060102-150405") + ".md"
		if st.SessionID != "" {
			name = "blip2chat-" + st.SessionID + ".md"
		}
		path = filepath.Join(a.opts.SaveDir, name)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		a.errorf("%s is a folder; give a file name", path)
		return
	}
	if err := writeAtomic(path, []byte(Markdown(st, a.opts.Now()))); err != nil {
		a.errorf("save: %v", err)
		return
	}
	abs, _ := filepath.Abs(path)
	a.notef("Saved the transcript to %s", abs)
}

// Markdown renders the transcript of st as a Markdown document.
func Markdown(st State, now time.Time) string {
	var b strings.Builder
	b.WriteString("# blip2chat transcript\n\n")
	fmt.Fprintf(&b, "- Saved: %s\n", now.Format("2006-01-02 15:04:05 MST"))
	if st.HasModel {
		fmt.Fprintf(&b, "- Model: %s (%s)", quoteMD(st.Model.Name), codeMD(st.Model.Dir))
		if st.Model.Desc != "" {
			fmt.Fprintf(&b, ", %s", quoteMD(st.Model.Desc))
		}
		b.WriteString("\n")
	}
	if st.Demo {
		fmt.Fprintf(&b, "- **%s**\n", quoteMD(st.DemoLabel))
	}
	if st.ImagePath != "" {
		fmt.Fprintf(&b, "- Image: %s\n", codeMD(st.ImagePath))
	}
	if st.SessionID != "" {
		fmt.Fprintf(&b, "- Session: %s\n", st.SessionID)
	}
	if st.HasModel {
		b.WriteString("\n## Settings\n\n| setting | value |\n| --- | --- |\n")
		for _, k := range SettingKeys {
			v, _ := st.Settings.Get(k)
			fmt.Fprintf(&b, "| %s | `%s` |\n", k, strings.ReplaceAll(v, "|", `\|`))
		}
	}
	b.WriteString("\n## Conversation\n")
	for _, e := range st.Entries {
		switch e.Kind {
		case EntryImage:
			fmt.Fprintf(&b, "\n![%s](%s)\n", altMD(filepath.Base(e.Text)), linkMD(e.Text))
		case EntryQuestion:
			fmt.Fprintf(&b, "\n**You:** %s\n", quoteMD(e.Text))
		case EntryAnswer:
			fmt.Fprintf(&b, "\n**BLIP-2:** %s", quoteMD(e.Text))
			if e.Stop == StopCancelled {
				b.WriteString(" *(stopped)*")
			} else if e.Stop == StopMaxTokens || e.Stop == StopContextFull {
				fmt.Fprintf(&b, " *(%s)*", e.Stop)
			}
			b.WriteString("\n")
		case EntryNote:
			if strings.HasPrefix(e.Text, "Conversation restarted") {
				b.WriteString("\n---\n*Conversation restarted.*\n")
			}
		}
	}
	return b.String()
}

// startDemo switches to the demo model (offered when there is no model).
func (a *App) startDemo() {
	a.mu.Lock()
	has, busy := a.st.HasModel, a.st.Phase.Busy()
	a.mu.Unlock()
	switch {
	case a.opts.Demo == nil:
		a.errorf("unknown command /demo; /help lists the commands")
	case has:
		a.errorf("a model is already loaded; run 'blip2chat demo' to try the demo model")
	case busy:
		a.errorf("busy: wait a moment")
	default:
		src := a.opts.Demo()
		a.mu.Lock()
		a.st.Demo, a.st.DemoLabel = src.Demo, src.Label
		a.st.Model.Dir, a.st.Model.Name = src.Dir, filepath.Base(src.Dir)
		a.mu.Unlock()
		a.load(src, "", nil)
	}
}
