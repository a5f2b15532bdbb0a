package app

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/blip2chat/blip2chat/internal/safefile"
)

// CommandInfo describes one slash command: for /help, completion, and
// whether it may run beside a job.
type CommandInfo struct {
	Name    string // with the slash
	Args    string
	Summary string
	// ReadOnly commands only read the state: they run even while a job
	// (an answer, an image) runs.
	ReadOnly bool
	// Hidden commands are left out of completion and found by their whole
	// name only; App.Commands lists them where they apply.
	Hidden bool
}

// Commands lists the slash commands in /help order.
var Commands = []CommandInfo{
	{Name: "/image", Args: "PATH|N", Summary: "load another image, or hit N of the last /search (the conversation restarts)"},
	{Name: "/caption", Summary: "describe the image"},
	{Name: "/retry", Summary: "generate the last answer again"},
	{Name: "/reset", Summary: "forget the conversation, keep the image"},
	{Name: "/set", Args: "[KEY VALUE]", Summary: "list the settings, or change one"},
	{Name: "/preset", Args: "[NAME]", Summary: "list the decoding presets, or switch to one"},
	{Name: "/compare", Args: "SETTING ...", Summary: "answer the last question again under each setting (a preset, KEY=VALUE, vqa+max_tokens=5), side by side"},
	{Name: "/template", Args: "[TEXT|edit|reset]", Summary: "show, change or edit the prompt template"},
	{Name: "/tokens", Args: "[TEXT]", Summary: "how the next prompt tokenizes"},
	{Name: "/match", Args: "TEXT | TEXT ...", Summary: "how well texts describe the image (a retrieval model)"},
	{Name: "/labels", Args: "A, B, ...", Summary: "zero-shot labels for the image (a retrieval model)"},
	{Name: "/search", Args: "QUERY", Summary: "find images in the folders made searchable with 'blip2chat index'"},
	{Name: "/attention", Args: "[N]", Summary: "show where the model looks in the image (all queries, or query N); again to hide"},
	{Name: "/why", Args: "[N]", Summary: "the N (default 5) least certain tokens of the last answer, with the alternatives", ReadOnly: true},
	{Name: "/confidence", Summary: "tint answers by how sure the model was of each token (toggle)", ReadOnly: true},
	{Name: "/save", Args: "[FILE.md]", Summary: "save the transcript as Markdown", ReadOnly: true},
	{Name: "/info", Summary: "model, library and timings", ReadOnly: true},
	{Name: "/help", Summary: "commands and keys", ReadOnly: true},
	{Name: "/quit", Summary: "leave (also Ctrl+C)", ReadOnly: true},
	{Name: "/demo", Summary: "try the interface on a tiny demo model (no model loaded)", Hidden: true},
}

// Command is a parsed line of input.
type Command struct {
	Name string // "" for a question; else the command with its slash
	Arg  string // the rest of the line, trimmed
	Text string // the question (Name == "")
}

// ParseLine splits a line of input into a command or a question. A line
// starting with "//" is a question that starts with "/".
func ParseLine(line string) Command {
	t := strings.TrimSpace(line)
	if strings.HasPrefix(t, "//") {
		return Command{Text: t[1:]}
	}
	if !strings.HasPrefix(t, "/") {
		return Command{Text: t}
	}
	name, arg, _ := strings.Cut(t, " ")
	if i := strings.IndexAny(name, "\n\t"); i >= 0 {
		name, arg = name[:i], t[i+1:]
	}
	return Command{Name: strings.ToLower(name), Arg: strings.TrimSpace(arg)}
}

// lookupCommand finds a command by name or unique prefix ("/cap").
func lookupCommand(name string) (CommandInfo, bool) {
	var found []CommandInfo
	for _, c := range Commands {
		if c.Name == name {
			return c, true
		}
		if !c.Hidden && strings.HasPrefix(c.Name, name) {
			found = append(found, c)
		}
	}
	if len(found) == 1 {
		return found[0], true
	}
	return CommandInfo{}, false
}

// ReadOnly reports whether line is a command that only reads the state
// (CommandInfo.ReadOnly), found as Submit finds it: "/he" is /help.
func ReadOnly(line string) bool {
	c := ParseLine(line)
	if c.Name == "" {
		return false
	}
	info, ok := lookupCommand(c.Name)
	return ok && info.ReadOnly
}

// Commands lists the commands that apply now, in /help order: the hidden
// ones only where they apply (/demo while there is no model).
func (a *App) Commands() []CommandInfo {
	a.mu.Lock()
	demo := a.opts.Demo != nil && !a.st.HasModel
	a.mu.Unlock()
	out := make([]CommandInfo, 0, len(Commands))
	for _, c := range Commands {
		if c.Hidden && !(c.Name == "/demo" && demo) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// Submit handles one line of input: a question, or a slash command. Quick
// commands are done before it returns; slow work (answers, images, file
// writes) starts in the background. Errors and hints go to the transcript
// as one line.
func (a *App) Submit(line string) Result {
	c := ParseLine(line)
	if c.Name == "" {
		if c.Text != "" {
			a.ask(c.Text)
		}
		return Result{}
	}
	info, ok := lookupCommand(c.Name)
	if !ok {
		a.errorf("unknown command %s; /help lists the commands", c.Name)
		return Result{}
	}
	switch info.Name {
	case "/quit":
		return Result{Quit: true}
	case "/help":
		return Result{ShowHelp: true}
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
	case "/preset":
		a.preset(c.Arg)
	case "/compare":
		a.compare(c.Arg)
	case "/template":
		return a.template(c.Arg)
	case "/tokens":
		a.tokens(c.Arg)
	case "/match":
		a.match(c.Arg)
	case "/labels":
		a.labels(c.Arg)
	case "/search":
		a.searchImages(c.Arg)
	case "/attention":
		a.attention(c.Arg)
	case "/why":
		a.why(c.Arg)
	case "/confidence":
		a.toggleConfidence()
	case "/save":
		a.save(c.Arg)
	case "/info":
		a.info()
	case "/demo":
		a.startDemo()
	}
	return Result{}
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
	case !has && a.opts.Demo != nil:
		a.errorf("no model loaded; type /demo to try the demo model")
	case !has:
		a.errorf("no model loaded")
	case image && img == "":
		a.errorf("no image yet: load one with /image PATH")
	default:
		return true
	}
	return false
}

func (a *App) image(arg string) {
	if arg == "" {
		a.errorf("usage: /image PATH (Tab completes the path)")
		return
	}
	if hit, ok := a.hitPath(arg); ok {
		arg = hit
	}
	path := expandHome(strings.Trim(arg, `"'`))
	if _, err := safefile.Regular(path); err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			a.errorf("%s: no such file", path)
		case errors.Is(err, safefile.ErrNotRegular):
			a.errorf("%v; give an image file", err)
		default:
			a.errorf("%v", err)
		}
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
		a.add(Entry{Kind: EntryReset, Text: "Conversation restarted: the model forgets the turns above (the image stays)."})
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
		rows := settingRows(cur)
		a.mu.Lock()
		dev := a.st.Model.Device
		a.mu.Unlock()
		if dev != "" {
			rows = append(rows, Row{Label: gpuLayersKey, Value: dev, Remark: gpuLayersHelp})
		}
		a.add(Entry{Kind: EntryNote, Text: "Settings (change with /set KEY VALUE):", Rows: rows})
		return
	}
	key, val, _ := strings.Cut(arg, " ")
	key = strings.ToLower(strings.TrimSpace(key))
	if key == "preset" && strings.TrimSpace(val) != "" {
		a.preset(val)
		return
	}
	if key == gpuLayersKey {
		a.setGPULayers(strings.TrimSpace(val))
		return
	}
	if strings.TrimSpace(val) == "" {
		if v, ok := settingValue(cur, key); ok {
			a.notef("%s = %s (%s)", key, v, settingHelp[key])
		} else {
			a.errorf("unknown setting %q; settings: %s", key, strings.Join(SettingKeys, ", "))
		}
		return
	}
	next, err := withSetting(cur, key, val)
	if err != nil {
		a.errorf("%v", err)
		return
	}
	a.applySettings(next, key)
}

// settingRows lists the settings for /set: key, value, what it does.
func settingRows(s Settings) []Row {
	rows := make([]Row, len(SettingKeys))
	for i, k := range SettingKeys {
		v, _ := settingValue(s, k)
		rows[i] = Row{Label: k, Value: v, Remark: settingHelp[k]}
	}
	return rows
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
		a.setSettingsLocked(a.eng.Settings())
		v, _ := settingValue(a.st.Settings, key)
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
		n, err := withSetting(next, "template", arg)
		if err != nil {
			a.errorf("%v", err)
			return Result{}
		}
		a.applySettings(n, "template")
	}
	return Result{}
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

// gpuLayersKey is /set's key for the language model's GPU offload: a load
// option (llama.cpp places the layers when it loads the model), not a
// conversation setting.
const gpuLayersKey = "gpu_layers"

const gpuLayersHelp = "language-model layers on the GPU: N or all (applies when the model is loaded: --gpu-layers)"

// setGPULayers answers /set gpu_layers N|all: llama.cpp places layers when
// it loads a model, so the value applies at the next load (the chat's
// --gpu-layers); it says where the model runs now.
func (a *App) setGPULayers(val string) {
	a.mu.Lock()
	has, dev := a.st.HasModel, a.st.Model.Device
	a.mu.Unlock()
	if !has {
		a.errorf("no model loaded: load one with --gpu-layers N|all")
		return
	}
	if dev == "" {
		a.errorf("%s: this model's language model runs in Go, on the CPU only", gpuLayersKey)
		return
	}
	if val == "" {
		a.notef("%s: %s (%s)", gpuLayersKey, dev, gpuLayersHelp)
		return
	}
	if n, err := strconv.Atoi(val); val != "all" && (err != nil || n < 0) {
		a.errorf("%s takes a number of layers (0: none) or all, not %q", gpuLayersKey, val)
		return
	}
	a.notef("%s = %s applies when the model is loaded next: start the chat with --gpu-layers %s (now: %s)", gpuLayersKey, val, val, dev)
}
