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
	"path/filepath"
	"strings"
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

// Layout thresholds: below stackWidth columns the image goes above the
// chat instead of beside it.
const (
	stackWidth = 80
	inputLines = 3
)

// hintWait starts the hint shown when a line cannot be sent yet.
const hintWait = "wait: "

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
	ta   *input
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

	m.ta = newInput(inputLines, m.sty.text, m.sty.faint)

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
	cerr := a.Close()
	if errors.Is(err, tea.ErrInterrupted) || errors.Is(err, tea.ErrProgramKilled) {
		err = nil
	}
	if err != nil {
		return err
	}
	return cerr
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
		m.vp, c = m.vp.Update(msg)
		m.scrolled()
		cmds = append(cmds, c)
	case tea.KeyMsg:
		if c, handled := m.key(msg); handled {
			return m, c
		}
		m.ta.Update(msg)
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
		if m.app.Cancel() {
			return nil, true
		}
		if m.help.ShowAll {
			m.help.ShowAll = false
			m.layout()
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
	case key.Matches(k, m.keys.ScrollUp):
		m.vp.HalfPageUp()
		m.scrolled()
		return nil, true
	case key.Matches(k, m.keys.ScrollDown):
		m.vp.HalfPageDown()
		m.scrolled()
		return nil, true
	case key.Matches(k, m.keys.Top):
		m.vp.GotoTop()
		m.scrolled()
		return nil, true
	case key.Matches(k, m.keys.Bottom):
		m.vp.GotoBottom()
		m.scrolled()
		return nil, true
	case key.Matches(k, m.keys.Help) && m.ta.Value() == "":
		m.help.ShowAll = !m.help.ShowAll
		m.layout()
		m.refresh(false)
		return nil, true
	case k.Type == tea.KeyUp && m.ta.OnFirstLine():
		m.browse(-1)
		return nil, true
	case k.Type == tea.KeyDown && m.ta.OnLastLine() && m.histPos < len(m.history):
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
	m.ta.Reset()
	if n := len(m.history); n == 0 || m.history[n-1] != text {
		m.history = append(m.history, text)
	}
	m.histPos, m.draft = len(m.history), ""
	res := m.app.Submit(text)
	if res.Prefill != "" {
		m.ta.SetValue(res.Prefill)
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
		m.ta.SetValue(m.draft)
		return
	}
	m.ta.SetValue(m.history[m.histPos])
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
		m.ta.SetValue(c[0])
		return
	}
	if p := app.CommonPrefix(c); len(p) > len(line) {
		m.ta.SetValue(p)
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
		names[i] = strings.TrimSpace(s)
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
}

func (m *Model) stacked() bool { return m.w < stackWidth }

func (m *Model) footerHeight() int {
	if m.help.ShowAll {
		return 1 + len(m.keys.FullHelp()[0])
	}
	return 2
}

func (m *Model) bodyHeight() int {
	return max(4, m.h-1-(inputLines+2)-m.footerHeight())
}

func (m *Model) imageWidth() int { return max(24, min(64, m.w*2/5)) }

func (m *Model) stackedImageHeight(body int) int { return max(4, min(14, body*2/5)) }

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
	if m.stacked() {
		ih := m.stackedImageHeight(body)
		panes = lipgloss.JoinVertical(lipgloss.Left,
			m.imagePane(m.w, ih),
			m.chatPane(m.w, body-ih))
	} else {
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
		label := m.st.DemoLabel
		if label == "" {
			label = "demo model"
		}
		right = m.sty.demo.Render("DEMO  " + label)
		if lipgloss.Width(left)+lipgloss.Width(right)+1 > m.w {
			right = m.sty.demo.Render("DEMO: random weights")
		}
	} else if m.st.HasModel && m.st.Model.Desc != "" {
		right = m.sty.titleDim.Render(m.st.Model.Desc)
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
		title = filepath.Base(m.st.ImagePath)
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
	case m.st.Phase == app.Loading:
		lines = center([]string{m.spin.View() + m.sty.muted.Render(" loading the model…")}, iw, ih)
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

// chatPane draws the transcript.
func (m *Model) chatPane(w, h int) string {
	title := "chat"
	if m.st.SessionID != "" {
		title += m.sty.faint.Render(" · session " + m.st.SessionID)
	}
	var lines []string
	if m.lastBody == "" {
		lines = center(m.emptyChat(), w-2, h-2)
	} else {
		pad := " "
		for _, l := range strings.Split(m.vp.View(), "\n") {
			lines = append(lines, pad+l)
		}
		if !m.vp.AtBottom() {
			title += m.sty.warn.Render(" · ↓ more (PgDn)")
		}
	}
	return m.pane(title, lines, w, h, m.st.Phase == app.Generating)
}

// emptyChat is what an empty transcript shows.
func (m *Model) emptyChat() []string {
	switch {
	case m.st.Phase == app.Loading:
		return []string{m.sty.muted.Render("Loading " + m.st.Model.Name + "…")}
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
		m.ta.placeholder = "Type /demo to try the demo model, /help for commands"
	case m.st.Phase == app.Generating:
		m.ta.placeholder = "Esc stops the answer · you can type the next question"
	case m.st.ImagePath == "" && m.st.HasModel:
		m.ta.placeholder = "/image PATH to load an image (Tab completes)"
	default:
		m.ta.placeholder = "Ask about the image… (/ for commands, Alt+Enter for a new line)"
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
		left = m.sty.statusBar.Render(" ") + m.spin.View() + m.sty.statusVal.Render(" "+act+" ") + m.sty.statusKey.Render(m.elapsed())
	case m.st.Phase == app.NoModel:
		left = m.sty.statusBar.Render(" ") + m.sty.warn.Inherit(m.sty.statusBar).Render("○ no model")
	default:
		left = m.sty.statusBar.Render(" ") + m.sty.ok.Inherit(m.sty.statusBar).Render("● ready")
	}
	var segs []string
	seg := func(k, v string) { segs = append(segs, m.sty.statusKey.Render(k+" ")+m.sty.statusVal.Render(v)) }
	if m.st.HasModel || m.st.Model.Name != "" {
		seg("model", m.st.Model.Name)
	}
	if m.st.ImagePath != "" {
		seg("image", filepath.Base(m.st.ImagePath))
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

// footer is the key help, or the completion hint.
func (m *Model) footer() string {
	if m.hint != "" {
		return ansi.Truncate(m.sty.hint.Render("  "+m.hint), m.w, "…")
	}
	m.help.Width = m.w - 2
	return lipgloss.NewStyle().PaddingLeft(1).Render(m.help.View(m.keys))
}
