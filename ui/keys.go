package ui

import "github.com/charmbracelet/bubbles/key"

// keyMap is every key the app answers to; help shows them.
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
		Help:        key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "more keys")),
		ClearScreen: key.NewBinding(key.WithKeys("ctrl+l"), key.WithHelp("ctrl+l", "redraw")),
	}
}

// ShortHelp is the one-line help.
func (k keyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.Send, k.Newline, k.Complete, k.Stop, k.ScrollUp, k.Help, k.Quit}
}

// FullHelp is the list `?` shows, in columns.
func (k keyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.Send, k.Newline, k.Complete, k.History},
		{k.Stop, k.Quit, k.ImageMode, k.ClearScreen},
		{k.ScrollUp, k.ScrollDown, k.Top, k.Bottom},
	}
}
