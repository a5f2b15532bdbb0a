// Package ui is blip2chat's terminal interface (Bubble Tea): an image pane,
// a scrolling transcript where answers stream in, an input box, a status
// line and key help.
//
// It renders app.State and sends the user's intents to app.App (Submit,
// Cancel); everything slow runs in app, or in a tea.Cmd, off the UI loop,
// so the screen never freezes. Update changes the Model; View only draws
// it.
package ui

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/spinner"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/blip2chat/blip2chat/app"
)

// Options configure the interface.
type Options struct {
	ImageMode ImageMode // how the image is drawn at first (Ctrl+T toggles)
	NoColor   bool      // no colours (also when NO_COLOR is set)
	Version   string    // shown in the header
	// Now is the clock for elapsed times (tests); nil means time.Now.
	Now func() time.Time
}

// Layout threshold: below stackWidth columns the image goes above the
// chat instead of beside it.
const stackWidth = 80

// hintWait starts the hints that last while the app is busy.
const hintWait = "wait: "

// closeWait is how long Run waits, after the interface is gone, for the
// work in progress to stop. An answer stops at its next token and an image
// encoding at its next layer; loading a model cannot be interrupted, and the
// process ends without waiting for it.
const closeWait = 2 * time.Second

// changedMsg says the app's state changed.
type changedMsg struct{}

// failedMsg says that a job of the app panicked (app.Failed): the
// interface quits, so that the terminal is put back before the report.
type failedMsg struct{}

// crashMsg is a panic in one of the interface's own commands.
type crashMsg struct{ err *app.PanicError }

// completedMsg carries the completions of line (Tab), looked up off the
// UI loop: completing a path reads a folder.
type completedMsg struct {
	line        string
	completions []string
}

// Model is the Bubble Tea model of the app's screen.
type Model struct {
	app  *app.App
	opts Options
	st   app.State
	r    *lipgloss.Renderer
	sty  styles
	prof termenv.Profile
	keys keyMap

	help help.Model
	chat transcript
	hv   viewport.Model // the full help (?), over the panes
	ta   *editor
	spin spinner.Model

	w, h     int
	mode     ImageMode
	spinning bool
	hint     string // a transient line in place of the help (completions)
	quitting bool
	// following: the transcript keeps its end in view (until the user
	// scrolls up).
	following bool
	// completing: a Tab's completions are being looked up; the keys typed
	// meanwhile wait in typeahead, so that they apply after them.
	completing bool
	typeahead  []tea.KeyMsg

	history []string
	histPos int    // len(history) when not browsing
	draft   string // the input before browsing history

	chatW    int // the transcript's width
	changed  int // the first entry changed since the transcript was set
	imgKey   string
	imgLines []string

	crash *app.PanicError // a command of the interface panicked
}

// New makes the interface for a. Its styles use a renderer of its own on
// standard output, the terminal Run draws on.
func New(a *app.App, o Options) *Model {
	if o.Now == nil {
		o.Now = time.Now
	}
	r := lipgloss.NewRenderer(os.Stdout)
	if o.NoColor {
		r.SetColorProfile(termenv.Ascii)
	}
	m := &Model{app: a, opts: o, r: r, sty: newStyles(r), prof: r.ColorProfile(), keys: newKeyMap(), mode: o.ImageMode}

	m.help = help.New()
	m.help.ShortSeparator = " · "
	m.help.Styles.ShortKey = m.sty.muted.Bold(true)
	m.help.Styles.ShortDesc = m.sty.faint
	m.help.Styles.ShortSeparator = m.sty.faint
	m.help.Styles.FullKey = m.sty.muted.Bold(true)
	m.help.Styles.FullDesc = m.sty.faint
	m.help.Styles.FullSeparator = m.sty.faint

	m.hv = viewport.New(40, 10)
	m.hv.MouseWheelEnabled = true
	m.hv.KeyMap = viewport.KeyMap{}

	m.ta = newEditor(m.sty)

	m.spin = spinner.New(spinner.WithSpinner(spinner.MiniDot), spinner.WithStyle(m.sty.spinner))
	m.w, m.h = 80, 24
	m.following = true
	m.pull(false)
	return m
}

// Run runs the interface on the terminal until the user quits, then closes
// the app. Ctrl+C, a termination signal and a hang-up are a normal exit.
// Whatever ends it, the terminal is put back as it was (the normal screen,
// no mouse reporting, the cursor shown, cooked mode) before Run returns or
// the process ends: a panic in a job of the app or in the interface is
// reported after that, with its trace, as an error.
func Run(a *app.App, o Options) error {
	m := New(a, o)
	// Ask the terminal for its background colour now, before Bubble Tea
	// reads the keyboard (the renderer would ask on first use, mid-program).
	m.r.HasDarkBackground()
	return runProgram(a, m)
}

// wedged is how long the interface has to quit once a job of the app has
// panicked before the terminal is put back regardless and the process
// ends: the panicking job may have left the app's lock held, on which the
// interface then waits forever.
const wedged = 3 * time.Second

// runProgram runs m, the interface of a (a *Model, or one around it in
// tests), as Run does.
func runProgram(a *app.App, m tea.Model) (err error) {
	term := saveTerminal(os.Stdin, os.Stdout)
	restored := false
	defer func() {
		// A panic in this function: the terminal goes back before it
		// ends the process.
		if !restored {
			term.restore()
		}
	}()
	p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithMouseCellMotion())
	stop := watch(a, p, term)
	fm, err := p.Run()
	stop()
	// Bubble Tea puts the terminal back once its event loop has run, after
	// a panic in Update, View or a command too, but not when it fails
	// earlier.
	restored = err == nil || errors.Is(err, tea.ErrProgramKilled) || errors.Is(err, tea.ErrInterrupted)
	if !restored {
		term.restore()
		restored = true
	}
	cerr := closeApp(a, closeWait)
	var crash *app.PanicError
	if c, ok := fm.(interface{ crashed() *app.PanicError }); ok {
		crash = c.crashed()
	}
	if e, ok := a.Err().(*app.PanicError); ok {
		crash = e
	}
	switch {
	case crash != nil:
		fmt.Fprintf(os.Stderr, "panic: %v\n\n%s\n", crash.Value, crash.Stack)
		return fmt.Errorf("%w (a bug: its trace is above; the session file keeps every turn)", crash)
	case errors.Is(err, tea.ErrProgramPanic):
		// Bubble Tea printed the trace once it had put the terminal back.
		return errors.New("internal error in the interface (a bug: its trace is above; the session file keeps every turn)")
	case errors.Is(err, tea.ErrInterrupted), errors.Is(err, tea.ErrProgramKilled):
		err = nil
	}
	if err != nil {
		return err
	}
	return cerr
}

// watch looks after the program while it runs: a hang-up (the terminal
// closed) ends it like Ctrl+C, and when a job of the app panics and the
// interface does not quit within wedged, it puts the terminal back,
// reports the panic and ends the process. stop ends the watch.
func watch(a *app.App, p *tea.Program, term *terminal) (stop func()) {
	done, ended := make(chan struct{}), make(chan struct{})
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer close(ended)
		defer signal.Stop(hup)
		select {
		case <-done:
			return
		case <-hup:
			p.Kill()
			return
		case <-a.Failed():
		}
		select {
		case <-done:
		case <-time.After(wedged):
			term.restore()
			crash, _ := a.Err().(*app.PanicError)
			fmt.Fprintf(os.Stderr, "panic: %v\n\n%s\nblip2chat: %v (a bug: its trace is above; the interface stopped answering, so the program ends here; the session file keeps every turn)\n",
				crash.Value, crash.Stack, crash)
			os.Exit(2)
		}
	}()
	return func() {
		close(done)
		<-ended
	}
}

// closeApp closes the app, waiting at most wait (or until a second
// interrupt) for its work to stop: quitting is never held up by a model
// that is still loading. What is left running
// ends with the process; the session file is only ever replaced whole.
func closeApp(a *app.App, wait time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- a.Close() }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
	case <-sig:
	}
	return nil
}

// waitChange waits for the app to change (or to close, or fail).
func (m *Model) waitChange() tea.Cmd {
	ch, done, failed := m.app.Changed(), m.app.Done(), m.app.Failed()
	return func() tea.Msg {
		select {
		case <-failed:
			return failedMsg{}
		case <-ch:
			return changedMsg{}
		case <-done:
			return nil
		}
	}
}

// guard makes a panic in the command c a crashMsg: the interface then
// quits, and the panic is reported once the terminal is back (Bubble
// Tea's own recovery would print it on the alternate screen, where it is
// lost).
func guard(job string, c tea.Cmd) tea.Cmd {
	return func() (msg tea.Msg) {
		defer func() {
			if r := recover(); r != nil {
				msg = crashMsg{&app.PanicError{Job: job, Value: r, Stack: debug.Stack()}}
			}
		}()
		return c()
	}
}

// crashed is the panic of one of the interface's commands, nil if none.
func (m *Model) crashed() *app.PanicError { return m.crash }

// Init starts the app and listens for its changes.
func (m *Model) Init() tea.Cmd {
	m.app.Start()
	return tea.Batch(m.waitChange(), m.spin.Tick)
}

// State is the last state rendered (tests).
func (m *Model) State() app.State { return m.st }

// Update handles one message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	var cmds []tea.Cmd
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.w, m.h = msg.Width, msg.Height
		m.layout()
		m.refresh(false)
	case failedMsg:
		// Nothing more from the app, whose lock the failed job may hold.
		m.quitting = true
		return m, tea.Quit
	case crashMsg:
		m.crash = msg.err
		m.quitting = true
		return m, tea.Quit
	case changedMsg:
		m.pull(false)
		cmds = append(cmds, m.waitChange())
		if m.st.Phase.Busy() && !m.spinning {
			m.spinning = true
			cmds = append(cmds, m.spin.Tick)
		}
	case spinner.TickMsg:
		if !m.st.Phase.Busy() {
			m.spinning = false
			break
		}
		m.spinning = true
		var c tea.Cmd
		m.spin, c = m.spin.Update(msg)
		m.refresh(false) // the streaming cursor and elapsed time move
		cmds = append(cmds, c)
	case completedMsg:
		m.completing = false
		if m.ta.Value() == msg.line {
			m.completed(msg.line, msg.completions)
		}
		for len(m.typeahead) > 0 && !m.completing {
			k := m.typeahead[0]
			m.typeahead = m.typeahead[1:]
			_, c := m.Update(k)
			cmds = append(cmds, c)
		}
	case tea.MouseMsg:
		if m.help.ShowAll {
			var c tea.Cmd
			m.hv, c = m.hv.Update(msg)
			cmds = append(cmds, c)
		} else {
			m.chat.wheel(msg)
			m.scrolled()
		}
	case tea.KeyMsg:
		switch {
		case m.st.Confirm != "":
			return m, m.confirmKey(msg)
		case m.completing && !m.matches(msg, m.keys.Quit):
			m.typeahead = append(m.typeahead, msg)
		case isText(msg):
			// Text never goes through the key bindings (isText).
			m.hint = ""
			h := m.ta.Height()
			if left := m.ta.insert(string(msg.Runes)); left > 0 {
				m.hint = fmt.Sprintf("the input holds at most %d characters, more than a prompt can be: %d were left out", maxInput, left)
			}
			m.resized(h)
		default:
			if c, handled := m.key(msg); handled {
				return m, c
			}
			if msg.Type == tea.KeyRunes && m.ta.Full() {
				m.hint = fmt.Sprintf("the input is full: it holds at most %d characters", maxInput)
			}
			h := m.ta.Height()
			cmds = append(cmds, m.ta.update(msg))
			m.resized(h)
		}
	}
	return m, tea.Batch(cmds...)
}

// pull brings the state up to the app's: the layout (the image pane's
// height depends on it), the input's placeholder and the transcript follow
// it.
func (m *Model) pull(follow bool) {
	m.changed = min(m.changed, m.app.Refresh(&m.st))
	if !m.st.Phase.Busy() && strings.HasPrefix(m.hint, hintWait) {
		m.hint = ""
	}
	m.layout()
	m.refresh(follow)
}

// matches reports whether k is a key (not text: isText) of one of the
// bindings.
func (m *Model) matches(k tea.KeyMsg, b ...key.Binding) bool {
	return !isText(k) && key.Matches(k, b...)
}

// confirmKey answers the app's question (State.Confirm) with a key: y
// says yes, n or Esc no; Ctrl+C quits. Other keys, text included, do
// nothing: the question waits.
func (m *Model) confirmKey(k tea.KeyMsg) tea.Cmd {
	one := k.Type == tea.KeyRunes && len(k.Runes) == 1 && !k.Paste && !k.Alt
	switch {
	case m.matches(k, m.keys.Quit):
		m.quitting = true
		return tea.Quit
	case one && (k.Runes[0] == 'y' || k.Runes[0] == 'Y'):
		m.app.Confirm(true)
	case one && (k.Runes[0] == 'n' || k.Runes[0] == 'N'), k.Type == tea.KeyEsc:
		m.app.Confirm(false)
	default:
		return nil
	}
	m.pull(false)
	return nil
}

// key handles the keys that are not typing; handled false passes the key
// on to the input box.
func (m *Model) key(k tea.KeyMsg) (tea.Cmd, bool) {
	if k.String() != "tab" {
		m.hint = ""
	}
	switch {
	case key.Matches(k, m.keys.Quit):
		m.quitting = true
		return tea.Quit, true
	case key.Matches(k, m.keys.Stop):
		switch {
		case m.help.ShowAll:
			m.help.ShowAll = false
		case m.app.Cancel():
		case m.st.Phase == app.Loading:
			m.hint = hintWait + "loading the model cannot be interrupted (Ctrl+C quits)"
		}
		return nil, true
	case key.Matches(k, m.keys.Send):
		return m.send(), true
	case key.Matches(k, m.keys.Complete):
		line := m.ta.Value()
		m.completing = true
		return guard("completing", func() tea.Msg { return completedMsg{line, app.Complete(line)} }), true
	case key.Matches(k, m.keys.ImageMode):
		if m.mode == ASCII {
			m.mode = HalfBlock
		} else {
			m.mode = ASCII
		}
		m.refresh(false)
		return nil, true
	case key.Matches(k, m.keys.ClearScreen):
		return tea.ClearScreen, true
	case key.Matches(k, m.keys.ScrollUp, m.keys.ScrollDown, m.keys.Top, m.keys.Bottom):
		m.scrollKey(k)
		return nil, true
	case key.Matches(k, m.keys.Help) && m.ta.Value() == "":
		if m.help.ShowAll {
			m.help.ShowAll = false
		} else {
			m.showHelp()
		}
		return nil, true
	case k.Type == tea.KeyUp && m.ta.OnFirstRow():
		m.browse(-1)
		return nil, true
	case k.Type == tea.KeyDown && m.ta.OnLastRow() && m.histPos < len(m.history):
		m.browse(+1)
		return nil, true
	}
	return nil, false
}

// scrollKey scrolls the transcript, or the full help when it shows.
func (m *Model) scrollKey(k tea.KeyMsg) {
	if m.help.ShowAll {
		switch {
		case key.Matches(k, m.keys.ScrollUp):
			m.hv.HalfPageUp()
		case key.Matches(k, m.keys.ScrollDown):
			m.hv.HalfPageDown()
		case key.Matches(k, m.keys.Top):
			m.hv.GotoTop()
		default:
			m.hv.GotoBottom()
		}
		return
	}
	switch {
	case key.Matches(k, m.keys.ScrollUp):
		m.chat.scroll(-m.chat.height / 2)
	case key.Matches(k, m.keys.ScrollDown):
		m.chat.scroll(m.chat.height / 2)
	case key.Matches(k, m.keys.Top):
		m.chat.scrollTo(0)
	default:
		m.chat.bottom()
	}
	m.scrolled()
}

// showHelp opens the full help over the panes.
func (m *Model) showHelp() {
	m.help.ShowAll = true
	m.hv.SetContent(m.helpContent(m.hv.Width))
	m.hv.GotoTop()
}

// send submits the input line to the app.
func (m *Model) send() tea.Cmd {
	text := m.ta.Value()
	if strings.TrimSpace(text) == "" {
		return nil
	}
	if m.pull(false); m.st.Phase.Busy() && !app.ReadOnly(text) {
		// Keep the text: it can be sent once the work is done.
		m.hint = hintWait + m.st.Activity + " (Esc stops an answer) — your text stays here"
		return nil
	}
	h := m.ta.Height()
	m.ta.Reset()
	m.resized(h)
	if n := len(m.history); n == 0 || m.history[n-1] != text {
		m.history = append(m.history, text)
	}
	m.histPos, m.draft = len(m.history), ""
	res := m.app.Submit(text)
	if res.Prefill != "" {
		m.setInput(res.Prefill)
	}
	m.pull(true)
	if res.ShowHelp {
		m.showHelp()
	}
	if res.Quit {
		m.quitting = true
		return tea.Quit
	}
	return nil
}

// browse moves through the input history.
func (m *Model) browse(d int) {
	if len(m.history) == 0 {
		return
	}
	if m.histPos == len(m.history) {
		m.draft = m.ta.Value()
	}
	m.histPos = max(0, min(len(m.history), m.histPos+d))
	if m.histPos == len(m.history) {
		m.setInput(m.draft)
		return
	}
	m.setInput(m.history[m.histPos])
}

// setInput replaces the input text.
func (m *Model) setInput(s string) {
	h := m.ta.Height()
	m.ta.SetValue(s)
	m.resized(h)
}

// resized lays the screen out again when the input box changed height
// from h.
func (m *Model) resized(h int) {
	if m.ta.Height() != h {
		m.layout()
		m.refresh(false)
	}
}

// completed puts the completions c of line in the input: the one, or
// what they share with the others listed in the hint.
func (m *Model) completed(line string, c []string) {
	switch len(c) {
	case 0:
		if strings.HasPrefix(line, "/") {
			m.hint = "no completion"
		}
		return
	case 1:
		m.setInput(c[0])
		return
	}
	if p := app.CommonPrefix(c); len(p) > len(line) {
		m.setInput(p)
	}
	names := make([]string, len(c))
	for i, s := range c {
		if _, arg, ok := strings.Cut(s, " "); ok && arg != "" {
			s = strings.TrimSuffix(arg, " ")
			if strings.HasSuffix(s, "/") {
				s = filepath.Base(s) + "/"
			} else if strings.Contains(s, "/") {
				s = filepath.Base(s)
			}
		}
		names[i] = printable(strings.TrimSpace(s))
	}
	m.hint = strings.Join(names, "  ")
}

// scrolled records whether the user left the end of the transcript.
func (m *Model) scrolled() {
	m.following = m.chat.atBottom()
}
