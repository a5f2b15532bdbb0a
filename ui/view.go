package ui

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/blip2chat/blip2chat/app"
)

// View draws the screen (nothing once quitting, so that no last frame
// flashes as the terminal is restored). It changes nothing: Update has
// laid out and rendered what it shows.
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
			right = m.sty.demo.Render("DEMO: synthetic shapes")
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
		rows := m.imageRows(ih)
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
	case m.st.Phase == app.Downloading:
		lines = m.downloadLines(iw)
		if len(lines) > ih {
			lines = lines[len(lines)-max(ih, 1):] // the total bar at least
		}
		lines = center(lines, iw, ih)
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
	if !m.chat.empty() && !m.chat.atBottom() {
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
	if m.chat.empty() {
		lines = center(m.emptyChat(), w-2, h-2)
	} else {
		for _, l := range m.chat.view() {
			lines = append(lines, " "+l)
		}
	}
	return m.pane(title, lines, w, h, m.st.Phase == app.Generating)
}

// downloadLines draws a pull's progress (State.Download): what is
// downloaded, the file in progress, and the total with its rate and time
// left.
func (m *Model) downloadLines(w int) []string {
	lines := []string{m.spin.View() + m.sty.muted.Render(" "+printable(m.st.Activity)+" "+m.elapsed())}
	p := m.st.Download
	if p == nil {
		if m.st.Progress != "" {
			lines = append(lines, m.sty.faint.Render(ansi.Truncate(printable(m.st.Progress), w, "…")))
		}
		return lines
	}
	barW := max(4, min(40, w-4))
	if p.File != "" && !p.FileDone && p.FileSize > 0 {
		lines = append(lines, m.sty.faint.Render(ansi.Truncate(printable(p.File), w, "…")))
	}
	frac := 1.0
	if p.Total > 0 {
		frac = float64(p.Bytes) / float64(p.Total)
	}
	lines = append(lines, textBar(frac, barW))
	fit := func(s string) string { return ansi.Truncate(printable(s), w, "…") }
	lines = append(lines, m.sty.muted.Render(fit(fmt.Sprintf("%s of %s · %d/%d files", app.FormatBytes(p.Bytes), app.FormatBytes(p.Total), p.FilesDone, p.Files))))
	speed := "…"
	if p.Rate > 0 {
		speed = app.FormatBytes(int64(p.Rate)) + "/s"
		if p.ETA > 0 {
			speed += " · " + p.ETA.Round(time.Second).String() + " left"
		}
	}
	lines = append(lines, m.sty.muted.Render(fit(speed)), "", m.sty.faint.Render(fit("Esc stops (a pull resumes)")))
	return lines
}

// textBar is a bar frac full, w cells wide.
func textBar(frac float64, w int) string {
	frac = min(max(frac, 0), 1)
	n := int(frac * float64(w))
	return strings.Repeat("█", n) + strings.Repeat("░", w-n)
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
	return m.sty.inputBox.Width(max(10, m.w-2)).Render(m.ta.View())
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
	if m.st.Generates {
		seg("preset", presetLabel(m.st))
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
	if q := m.st.Confirm; q != "" {
		keys := m.help.Styles.ShortKey.Render("y") + m.sty.faint.Render(" yes · ") + m.help.Styles.ShortKey.Render("n") + m.sty.faint.Render(" no  ")
		return ansi.Truncate("  "+keys+m.sty.warn.Render(printable(q)), m.w, "…")
	}
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

// presetLabel names the decoding in use: the preset, with what the
// settings change in it ("vqa +num_beams=3", "vqa +3 changes").
func presetLabel(st app.State) string {
	name := st.Settings.Preset
	if name == "" {
		name = "custom"
	}
	switch n := len(st.Changes); {
	case n == 0:
	case n <= 2 && len(strings.Join(st.Changes, " ")) <= 32:
		name += " +" + strings.Join(st.Changes, " +")
	default:
		name += fmt.Sprintf(" +%d changes", n)
	}
	return printable(name)
}
