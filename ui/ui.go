// Package ui is blip2chat's terminal interface (Bubble Tea): an image pane,
// a scrolling transcript where answers stream in, an input box, a status
// line and key help.
//
// It renders app.State and sends the user's intents to app.App (Submit,
// Cancel); everything slow runs in app, off the UI loop, so the screen
// never freezes.
package ui

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/spinner"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
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

// Model is the Bubble Tea model of the app's screen.
type Model struct {
	app  *app.App
	opts Options
	st   app.State
	sty  styles
	prof termenv.Profile
	keys keyMap

	help help.Model
	vp   viewport.Model
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

	history []string
	histPos int    // len(history) when not browsing
	draft   string // the input before browsing history

	imgKey   string
	imgLines []string
	lastBody string
}

// New makes the interface for a.
func New(a *app.App, o Options) *Model {
	if o.Now == nil {
		o.Now = time.Now
	}
	prof := lipgloss.ColorProfile()
	if o.NoColor {
		prof = termenv.Ascii
		lipgloss.SetColorProfile(termenv.Ascii)
	}
	m := &Model{app: a, opts: o, sty: newStyles(), prof: prof, keys: newKeyMap(), mode: o.ImageMode}

	m.help = help.New()
	m.help.ShortSeparator = " · "
	m.help.Styles.ShortKey = m.sty.muted.Bold(true)
	m.help.Styles.ShortDesc = m.sty.faint
	m.help.Styles.ShortSeparator = m.sty.faint
	m.help.Styles.FullKey = m.sty.muted.Bold(true)
	m.help.Styles.FullDesc = m.sty.faint
	m.help.Styles.FullSeparator = m.sty.faint

	m.vp = viewport.New(40, 10)
	m.vp.MouseWheelEnabled = true
	m.vp.MouseWheelDelta = 3
	// The arrow keys belong to the input box; the transcript scrolls with
	// PgUp/PgDn and the wheel.
	m.vp.KeyMap = viewport.KeyMap{}

	m.hv = viewport.New(40, 10)
	m.hv.MouseWheelEnabled = true
	m.hv.KeyMap = viewport.KeyMap{}

	m.ta = newEditor(m.sty)

	m.spin = spinner.New(spinner.WithSpinner(spinner.MiniDot), spinner.WithStyle(m.sty.spinner))
	m.st = a.Snapshot()
	m.w, m.h = 80, 24
	m.following = true
	m.layout()
	return m
}

// Run runs the interface on the terminal until the user quits, then closes
// the app. Ctrl+C and a termination signal are a normal exit.
func Run(a *app.App, o Options) error {
	// Ask the terminal for its background colour now, before Bubble Tea
	// reads the keyboard (lipgloss would ask on first use, mid-program).
	lipgloss.HasDarkBackground()
	p := tea.NewProgram(New(a, o), tea.WithAltScreen(), tea.WithMouseCellMotion())
	_, err := p.Run()
	cerr := closeApp(a, closeWait)
	if errors.Is(err, tea.ErrInterrupted) || errors.Is(err, tea.ErrProgramKilled) {
		err = nil
	}
	if err != nil {
		return err
	}
	return cerr
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

// waitChange waits for the app to change (or to close).
func (m *Model) waitChange() tea.Cmd {
	ch, done := m.app.Changed(), m.app.Done()
	return func() tea.Msg {
		select {
		case <-ch:
			return changedMsg{}
		case <-done:
			return nil
		}
	}
}

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
	case changedMsg:
		m.st = m.app.Snapshot()
		if !m.st.Phase.Busy() && strings.HasPrefix(m.hint, hintWait) {
			m.hint = ""
		}
		m.layout() // the image pane's height depends on the state
		m.refresh(false)
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
	case tea.MouseMsg:
		var c tea.Cmd
		if m.help.ShowAll {
			m.hv, c = m.hv.Update(msg)
		} else {
			m.vp, c = m.vp.Update(msg)
			m.scrolled()
		}
		cmds = append(cmds, c)
	case tea.KeyMsg:
		if c, handled := m.key(msg); handled {
			return m, c
		}
		h := m.ta.Height()
		cmds = append(cmds, m.ta.update(msg))
		m.resized(h)
	}
	return m, tea.Batch(cmds...)
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
		m.complete()
		return nil, true
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
		vp := &m.vp
		if m.help.ShowAll {
			vp = &m.hv
		}
		switch {
		case key.Matches(k, m.keys.ScrollUp):
			vp.HalfPageUp()
		case key.Matches(k, m.keys.ScrollDown):
			vp.HalfPageDown()
		case key.Matches(k, m.keys.Top):
			vp.GotoTop()
		default:
			vp.GotoBottom()
		}
		if !m.help.ShowAll {
			m.scrolled()
		}
		return nil, true
	case key.Matches(k, m.keys.Help) && m.ta.Value() == "":
		m.help.ShowAll = !m.help.ShowAll
		if m.help.ShowAll {
			m.hv.SetContent(m.helpContent(m.hv.Width))
			m.hv.GotoTop()
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

// send submits the input line to the app.
func (m *Model) send() tea.Cmd {
	text := m.ta.Value()
	if strings.TrimSpace(text) == "" {
		return nil
	}
	if st := m.app.Snapshot(); st.Phase.Busy() && !anytime(text) {
		// Keep the text: it can be sent once the work is done.
		m.hint = hintWait + st.Activity + " (Esc stops an answer) — your text stays here"
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
	m.st = m.app.Snapshot()
	m.refresh(true)
	if res.Quit {
		m.quitting = true
		return tea.Quit
	}
	return nil
}

// anytime reports whether a line can be sent while the app is busy: the
// commands that only read the state.
func anytime(line string) bool {
	c := app.ParseLine(line)
	switch c.Name {
	case "/quit", "/q", "/help", "/info", "/save":
		return true
	}
	return false
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

// complete completes the input (commands, settings, paths).
func (m *Model) complete() {
	line := m.ta.Value()
	c := app.Complete(line)
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

// layout sizes the components for the window.
func (m *Model) layout() {
	m.ta.SetWidth(max(10, m.w-4))
	body := m.bodyHeight()
	var chatW, chatH int
	if m.stacked() {
		chatW, chatH = m.w, body-m.stackedImageHeight(body)
	} else {
		chatW, chatH = m.w-m.imageWidth(), body
	}
	m.vp.Width = max(1, chatW-4)
	m.vp.Height = max(1, chatH-2)
	// The full help takes the whole body, over both panes.
	if hw := max(1, m.w-4); m.hv.Width != hw {
		m.hv.SetContent(m.helpContent(hw))
		m.hv.Width = hw
	}
	m.hv.Height = max(1, body-2)
}

func (m *Model) stacked() bool { return m.w < stackWidth }

// footerHeight is the status line and the key help.
func (m *Model) footerHeight() int { return 2 }

func (m *Model) bodyHeight() int {
	return max(4, m.h-1-(m.ta.Height()+2)-m.footerHeight())
}

func (m *Model) imageWidth() int { return max(24, min(64, m.w*2/5)) }

// stackedImageHeight is the image pane's height above the chat: one line
// of text while there is no image to show.
func (m *Model) stackedImageHeight(body int) int {
	if m.st.Image == nil {
		return 3
	}
	return max(4, min(14, body*2/5))
}

// refresh re-renders the transcript into the viewport. Unless the user
// scrolled away, it follows the end: the bottom, or the top of a last
// entry taller than the pane (a long note is read from its start).
func (m *Model) refresh(follow bool) {
	content, lastStart := m.transcript(m.vp.Width)
	if follow {
		m.following = true
	}
	if content != m.lastBody {
		m.lastBody = content
		m.vp.SetContent(content)
	}
	if !m.following {
		return
	}
	m.vp.GotoBottom()
	if n := len(m.st.Entries); n > 0 {
		last := m.st.Entries[n-1]
		if last.Kind == app.EntryNote && m.vp.TotalLineCount()-lastStart > m.vp.Height {
			m.vp.SetYOffset(lastStart)
		}
	}
}

// scrolled records whether the user left the end of the transcript.
func (m *Model) scrolled() {
	m.following = m.vp.AtBottom()
}

// View draws the screen (nothing once quitting, so that no last frame
// flashes as the terminal is restored).
func (m *Model) View() string {
	if m.quitting {
		return ""
	}
	return m.render()
}

// render draws the screen.
func (m *Model) render() string {
	header := m.header()
	body := m.bodyHeight()
	var panes string
	switch {
	case m.help.ShowAll:
		panes = m.helpPane(m.w, body)
	case m.stacked():
		ih := m.stackedImageHeight(body)
		panes = lipgloss.JoinVertical(lipgloss.Left,
			m.imagePane(m.w, ih),
			m.chatPane(m.w, body-ih))
	default:
		iw := m.imageWidth()
		panes = lipgloss.JoinHorizontal(lipgloss.Top,
			m.imagePane(iw, body),
			m.chatPane(m.w-iw, body))
	}
	input := m.inputBox()
	return lipgloss.JoinVertical(lipgloss.Left, header, panes, input, m.status(), m.footer())
}

// header is the title line, with the demo label when the demo model runs.
func (m *Model) header() string {
	left := m.sty.title.Render("◆ blip2chat")
	if m.opts.Version != "" {
		left += m.sty.faint.Render(" " + m.opts.Version)
	}
	var right string
	if m.st.Demo {
		label := printable(m.st.DemoLabel)
		if label == "" {
			label = "demo model"
		}
		right = m.sty.demo.Render("DEMO  " + label)
		if lipgloss.Width(left)+lipgloss.Width(right)+1 > m.w {
			right = m.sty.demo.Render("DEMO: random weights")
		}
	} else if m.st.HasModel && m.st.Model.Desc != "" {
		right = m.sty.titleDim.Render(printable(m.st.Model.Desc))
	}
	gap := m.w - lipgloss.Width(left) - lipgloss.Width(right)
	if gap < 1 {
		return ansi.Truncate(left+" "+right, m.w, "…")
	}
	return left + strings.Repeat(" ", gap) + right
}

// pane draws a box of w x h cells with a rounded border and a title in the
// top edge; lines are cut or padded to fit.
func (m *Model) pane(title string, lines []string, w, h int, focus bool) string {
	bs, ts := m.sty.border, m.sty.paneTitle
	if focus {
		bs, ts = m.sty.borderFocus, m.sty.paneTitleFocus
	}
	iw, ih := max(0, w-2), max(0, h-2)
	title = ansi.Truncate(title, max(0, iw-4), "…")
	top := bs.Render("╭─") + ts.Render(" "+title+" ")
	top += bs.Render(strings.Repeat("─", max(0, w-3-lipgloss.Width(title)-2)) + "╮")
	if title == "" {
		top = bs.Render("╭" + strings.Repeat("─", iw) + "╮")
	}
	var b strings.Builder
	b.WriteString(top)
	side := bs.Render("│")
	for i := 0; i < ih; i++ {
		line := ""
		if i < len(lines) {
			line = lines[i]
		}
		lw := lipgloss.Width(line)
		if lw > iw {
			line = ansi.Truncate(line, iw, "")
			lw = lipgloss.Width(line)
		}
		b.WriteString("\n" + side + line + strings.Repeat(" ", iw-lw) + side)
	}
	b.WriteString("\n" + bs.Render("╰"+strings.Repeat("─", iw)+"╯"))
	return b.String()
}

// center places lines in the middle of a w x h area.
func center(lines []string, w, h int) []string {
	out := make([]string, 0, h)
	top := max(0, (h-len(lines))/2)
	for i := 0; i < top; i++ {
		out = append(out, "")
	}
	for _, l := range lines {
		pad := max(0, (w-lipgloss.Width(l))/2)
		out = append(out, strings.Repeat(" ", pad)+l)
	}
	return out
}

// imagePane draws the image, or what stands for it.
func (m *Model) imagePane(w, h int) string {
	iw, ih := w-2, h-2
	title := "image"
	if m.st.ImagePath != "" {
		title = printable(filepath.Base(m.st.ImagePath))
	}
	busy := m.st.Phase == app.Encoding
	var lines []string
	switch {
	case m.st.Image != nil:
		rows := ih
		if busy && rows > 2 {
			rows--
		}
		key := fmt.Sprintf("%p|%d|%d|%d|%d", m.st.Image, iw, rows, m.mode, m.prof)
		if key != m.imgKey {
			m.imgKey, m.imgLines = key, renderImage(m.st.Image, iw, rows, m.mode, m.prof)
		}
		lines = center(m.imgLines, iw, rows)
		if len(lines) > rows {
			lines = lines[:rows]
		}
		if busy {
			for len(lines) < rows {
				lines = append(lines, "")
			}
			lines = append(lines, center([]string{m.spin.View() + m.sty.muted.Render(" encoding "+m.elapsed())}, iw, 1)...)
		}
		title += m.sty.faint.Render(" · " + m.mode.String())
	case ih <= 1:
		// Stacked above the chat with nothing to show: one line.
		var l string
		switch {
		case m.st.Phase == app.Loading || busy:
			l = m.spin.View() + m.sty.muted.Render(" "+m.st.Activity+"… "+m.elapsed())
		case m.st.Phase == app.NoModel:
			l = m.sty.muted.Render("no model yet") + m.sty.faint.Render(" · the steps are below")
		default:
			l = m.sty.muted.Render("no image yet") + m.sty.faint.Render(" · /image PATH (Tab completes)")
		}
		lines = center([]string{l}, iw, ih)
	case m.st.Phase == app.Loading || busy:
		what := "loading the model…"
		if busy {
			what = "reading the image…"
		}
		lines = center([]string{m.spin.View() + m.sty.muted.Render(" "+what), m.sty.faint.Render(m.elapsed())}, iw, ih)
	case m.st.Phase == app.NoModel:
		lines = center([]string{
			m.sty.muted.Render("no model yet"),
			"",
			m.sty.faint.Render("/demo tries a demo model"),
			m.sty.faint.Render("or follow the steps →"),
		}, iw, ih)
	default:
		lines = center([]string{
			m.sty.muted.Render("no image yet"),
			"",
			m.sty.faint.Render("/image PATH"),
			m.sty.faint.Render("Tab completes the path"),
		}, iw, ih)
	}
	return m.pane(title, lines, w, h, busy)
}

// helpPane draws the full help (?).
func (m *Model) helpPane(w, h int) string {
	title := "keys and commands" + m.sty.faint.Render(" · ? or Esc closes")
	if !m.hv.AtBottom() {
		title += m.sty.warn.Render(" · ↓ more (PgDn)")
	}
	var lines []string
	for _, l := range strings.Split(m.hv.View(), "\n") {
		lines = append(lines, " "+l)
	}
	return m.pane(title, lines, w, h, true)
}

// chatPane draws the transcript.
func (m *Model) chatPane(w, h int) string {
	title := "chat"
	more := ""
	if m.lastBody != "" && !m.vp.AtBottom() {
		more = m.sty.warn.Render(" · ↓ more (PgDn)")
	}
	if m.st.SessionID != "" {
		// The session id goes first when the title is too long.
		sess := m.sty.faint.Render(" · session " + m.st.SessionID)
		if lipgloss.Width(title+sess+more) <= w-6 {
			title += sess
		}
	}
	title += more
	var lines []string
	if m.lastBody == "" {
		lines = center(m.emptyChat(), w-2, h-2)
	} else {
		for _, l := range strings.Split(m.vp.View(), "\n") {
			lines = append(lines, " "+l)
		}
	}
	return m.pane(title, lines, w, h, m.st.Phase == app.Generating)
}

// emptyChat is what an empty transcript shows.
func (m *Model) emptyChat() []string {
	switch {
	case m.st.Phase == app.Loading:
		return []string{m.sty.muted.Render("Loading " + printable(m.st.Model.Name) + "…")}
	case m.st.ImagePath == "":
		return []string{m.sty.muted.Render("Load an image with /image PATH"), m.sty.faint.Render("then ask anything about it")}
	}
	return []string{
		m.sty.muted.Render("Ask anything about the image"),
		"",
		m.sty.faint.Render("What is in the picture? · /caption · /help"),
	}
}

// inputBox draws the input with its border.
func (m *Model) inputBox() string {
	switch {
	case m.st.Phase == app.NoModel:
		m.ta.SetPlaceholder("Type /demo to try the demo model, /help for commands")
	case m.st.Phase == app.Generating:
		m.ta.SetPlaceholder("Esc stops the answer · you can type the next question")
	case m.st.Phase == app.Loading:
		m.ta.SetPlaceholder("Loading the model… you can type already")
	case m.st.ImagePath == "" && m.st.HasModel:
		m.ta.SetPlaceholder("/image PATH to load an image (Tab completes)")
	default:
		m.ta.SetPlaceholder("Ask about the image… (/ for commands, ? for keys)")
	}
	box := lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(colAccent).Padding(0, 1).Width(max(10, m.w-2))
	return box.Render(m.ta.View())
}

// elapsed is the time the running job has taken.
func (m *Model) elapsed() string {
	if m.st.Since.IsZero() {
		return ""
	}
	return formatElapsed(m.opts.Now().Sub(m.st.Since))
}

func formatElapsed(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}

// status is the status line: what runs, the model, the image, the context
// and the speed of the last answer.
func (m *Model) status() string {
	sep := m.sty.statusKey.Render("  ")
	var left string
	switch {
	case m.st.Phase.Busy():
		act := m.st.Activity
		if m.st.Progress != "" {
			act += ": " + m.st.Progress
		}
		act = printable(act)
		left = m.sty.statusBar.Render(" ") + m.spin.View() + m.sty.statusVal.Render(" "+act+" ") + m.sty.statusKey.Render(m.elapsed())
	case m.st.Phase == app.NoModel:
		left = m.sty.statusBar.Render(" ") + m.sty.warn.Inherit(m.sty.statusBar).Render("○ no model")
	default:
		left = m.sty.statusBar.Render(" ") + m.sty.ok.Inherit(m.sty.statusBar).Render("● ready")
	}
	var segs []string
	seg := func(k, v string) { segs = append(segs, m.sty.statusKey.Render(k+" ")+m.sty.statusVal.Render(v)) }
	if m.st.HasModel || m.st.Model.Name != "" {
		seg("model", printable(m.st.Model.Name))
	}
	if m.st.ImagePath != "" {
		seg("image", printable(filepath.Base(m.st.ImagePath)))
	}
	if m.st.CtxTotal > 0 {
		seg("ctx", fmt.Sprintf("%d/%d", m.st.CtxUsed, m.st.CtxTotal))
	}
	if l := m.st.Last; l != nil && l.Tokens > 0 {
		seg("speed", fmt.Sprintf("%.1f tok/s", l.TokensPerSec))
		seg("first token", formatMillis(l.FirstToken))
	}
	// Drop segments from the right until the line fits.
	for {
		right := strings.Join(segs, sep) + m.sty.statusBar.Render(" ")
		gap := m.w - lipgloss.Width(left) - lipgloss.Width(right)
		if gap >= 2 || len(segs) == 0 {
			if gap < 0 {
				return ansi.Truncate(left, m.w, "")
			}
			return left + m.sty.statusBar.Render(strings.Repeat(" ", gap)) + right
		}
		segs = segs[:len(segs)-1]
	}
}

func formatMillis(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// footer is the key help, or the completion hint. The help shows the
// keys that fit, whole (help.Model's own cut can overflow the line).
func (m *Model) footer() string {
	if m.hint != "" {
		return ansi.Truncate(m.sty.hint.Render("  "+m.hint), m.w, "…")
	}
	sep := m.help.Styles.ShortSeparator.Render(m.help.ShortSeparator)
	line := ""
	for i, b := range m.keys.ShortHelp() {
		item := m.help.Styles.ShortKey.Render(b.Help().Key) + " " + m.help.Styles.ShortDesc.Render(b.Help().Desc)
		if i > 0 {
			item = sep + item
		}
		if lipgloss.Width(line+item) > m.w-2 {
			if tail := m.help.Styles.ShortSeparator.Render(" …"); lipgloss.Width(line+tail) <= m.w-2 {
				line += tail
			}
			break
		}
		line += item
	}
	return " " + line
}
