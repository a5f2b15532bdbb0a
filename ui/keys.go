package ui

import (
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textarea"

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

// row is one line of the full help: the keys of b, and what they do.
func row(b key.Binding, desc string) app.Row {
	names := make([]string, len(b.Keys()))
	for i, k := range b.Keys() {
		names[i] = keyName(k)
	}
	return app.Row{Label: strings.Join(names, ", "), Value: desc}
}

// allKeys is every key of the screen, for the full help.
func (k keyMap) allKeys() []app.Row {
	return []app.Row{
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
func editingKeys(km textarea.KeyMap) []app.Row {
	return []app.Row{
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

// helpContent is the full help (? or /help): the commands that apply
// now, every key, and the input box's editing keys, wrapped to width.
func (m *Model) helpContent(width int) string {
	width = max(8, width)
	var cmds []app.Row
	for _, c := range m.app.Commands() {
		cmds = append(cmds, app.Row{Label: strings.TrimSpace(c.Name + " " + c.Args), Value: c.Summary})
	}
	cmds = append(cmds, app.Row{Label: "//TEXT", Value: "ask a question that starts with /"})
	sections := []struct {
		title string
		rows  []app.Row
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
		for _, l := range table(s.rows, 2, 2, width, m.sty.text.Render, m.sty.muted.Render) {
			b.WriteString("\n" + l)
		}
	}
	return b.String()
}
