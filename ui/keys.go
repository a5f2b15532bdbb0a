package ui

import (
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textarea"
	"github.com/charmbracelet/x/ansi"

	"github.com/blip2chat/blip2chat/app"
)

// keyMap is every key the screen answers to: the footer shows the main
// ones (ShortHelp), ? all of them (allKeys).
type keyMap struct {
	Send, Newline, Complete, Stop, Quit   key.Binding
	ScrollUp, ScrollDown, Top, Bottom     key.Binding
	History, ImageMode, Help, ClearScreen key.Binding
}

func newKeyMap() keyMap {
	return keyMap{
		Send:        key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "send")),
		Newline:     key.NewBinding(key.WithKeys("alt+enter", "ctrl+j"), key.WithHelp("alt+enter", "new line")),
		Complete:    key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "complete")),
		Stop:        key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "stop answer")),
		Quit:        key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit")),
		ScrollUp:    key.NewBinding(key.WithKeys("pgup", "ctrl+b"), key.WithHelp("pgup", "scroll up")),
		ScrollDown:  key.NewBinding(key.WithKeys("pgdown", "ctrl+f"), key.WithHelp("pgdn", "scroll down")),
		Top:         key.NewBinding(key.WithKeys("ctrl+home"), key.WithHelp("ctrl+home", "top")),
		Bottom:      key.NewBinding(key.WithKeys("ctrl+end"), key.WithHelp("ctrl+end", "bottom")),
		History:     key.NewBinding(key.WithKeys("up", "down"), key.WithHelp("↑/↓", "input history")),
		ImageMode:   key.NewBinding(key.WithKeys("ctrl+t"), key.WithHelp("ctrl+t", "image style")),
		Help:        key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "all keys")),
		ClearScreen: key.NewBinding(key.WithKeys("ctrl+l"), key.WithHelp("ctrl+l", "redraw")),
	}
}

// ShortHelp is the one-line help: what fits of it shows, so the keys
// needed most come first.
func (k keyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.Send, k.Newline, k.Help, k.Stop, k.Quit, k.Complete, k.ScrollUp}
}

// keyName is how a key is written in the help.
func keyName(k string) string {
	switch k {
	case "up":
		return "↑"
	case "down":
		return "↓"
	case "left":
		return "←"
	case "right":
		return "→"
	case "pgdown":
		return "pgdn"
	case "alt+left":
		return "alt+←"
	case "alt+right":
		return "alt+→"
	}
	return k
}

// keyRow is one line of the full help.
type keyRow struct{ keys, desc string }

func row(b key.Binding, desc string) keyRow {
	names := make([]string, len(b.Keys()))
	for i, k := range b.Keys() {
		names[i] = keyName(k)
	}
	return keyRow{strings.Join(names, ", "), desc}
}

// allKeys is every key of the screen, for the full help.
func (k keyMap) allKeys() []keyRow {
	return []keyRow{
		row(k.Send, "send the question or command"),
		row(k.Newline, "new line in the input"),
		row(k.Complete, "complete a command, a setting or a file path"),
		row(k.History, "earlier inputs (from the first or last line)"),
		row(k.Stop, "stop the answer or the image encoding; close this help"),
		row(k.ScrollUp, "scroll up (also the mouse wheel)"),
		row(k.ScrollDown, "scroll down"),
		row(k.Top, "go to the top"),
		row(k.Bottom, "go to the bottom"),
		row(k.ImageMode, "image style: ascii or half-block"),
		row(k.ClearScreen, "redraw the screen"),
		row(k.Help, "this help (when the input is empty)"),
		row(k.Quit, "quit (also /quit)"),
	}
}

// editingKeys are the input box's editing keys.
func editingKeys(km textarea.KeyMap) []keyRow {
	return []keyRow{
		row(km.LineStart, "start of the line"),
		row(km.LineEnd, "end of the line"),
		row(km.WordBackward, "word left"),
		row(km.WordForward, "word right"),
		row(km.DeleteWordBackward, "delete the word before"),
		row(km.DeleteWordForward, "delete the word after"),
		row(km.DeleteBeforeCursor, "delete to the start of the line"),
		row(km.DeleteAfterCursor, "delete to the end of the line"),
		row(km.InputBegin, "start of the input"),
		row(km.InputEnd, "end of the input"),
		row(km.UppercaseWordForward, "upper-case the word"),
		row(km.LowercaseWordForward, "lower-case the word"),
		row(km.CapitalizeWordForward, "capitalize the word"),
	}
}

// helpContent is the full help, ?: every key and every command, wrapped
// to width.
func (m *Model) helpContent(width int) string {
	width = max(8, width)
	cmds := make([]keyRow, 0, len(app.Commands)+2)
	for _, c := range app.Commands {
		cmds = append(cmds, keyRow{strings.TrimSpace(c.Name + " " + c.Args), c.Summary})
	}
	if m.st.Phase == app.NoModel {
		cmds = append(cmds, keyRow{"/demo", "try the interface on a tiny demo model (no model loaded)"})
	}
	cmds = append(cmds, keyRow{"//TEXT", "ask a question that starts with /"})
	sections := []struct {
		title string
		rows  []keyRow
	}{
		{"Commands", cmds},
		{"Keys", m.keys.allKeys()},
		{"Editing the input", editingKeys(m.ta.KeyMap)},
	}
	var b strings.Builder
	for i, s := range sections {
		if i > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(m.sty.model.Render(s.title))
		col := 0
		for _, r := range s.rows {
			col = max(col, ansi.StringWidth(r.keys))
		}
		// Two columns when the descriptions keep room beside the keys,
		// else each description under its keys.
		stack := 2+col+2 > min(width/2, 32)
		for _, r := range s.rows {
			if stack {
				b.WriteString("\n" + wrapHanging("  "+r.keys, width, m.sty.muted.Render))
				b.WriteString("\n" + wrapHanging("      "+r.desc, width, m.sty.text.Render))
				continue
			}
			line := "  " + r.keys + strings.Repeat(" ", col-ansi.StringWidth(r.keys)) + "  " + r.desc
			b.WriteString("\n" + wrapHanging(line, width, m.sty.text.Render))
		}
	}
	return b.String()
}
