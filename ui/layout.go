package ui

import (
	"fmt"

	"github.com/blip2chat/blip2chat/app"
)

// Layout: the sizes of the panes for the window and the state, and what
// Update prepares in them (the transcript, the image, the placeholder) so
// that View only draws.

// layout sizes the components for the window and the state.
func (m *Model) layout() {
	m.ta.SetWidth(max(10, m.w-4))
	body := m.bodyHeight()
	var chatW, chatH int
	if m.stacked() {
		chatW, chatH = m.w, body-m.stackedImageHeight(body)
	} else {
		chatW, chatH = m.w-m.imageWidth(), body
	}
	m.chat.height = max(1, chatH-2)
	m.chatW = max(1, chatW-4)
	// The full help takes the whole body, over both panes.
	if hw := max(1, m.w-4); m.hv.Width != hw {
		m.hv.SetContent(m.helpContent(hw))
		m.hv.Width = hw
	}
	m.hv.Height = max(1, body-2)
	m.ta.SetPlaceholder(m.placeholder())
}

// placeholder is what the empty input box says, for the state.
func (m *Model) placeholder() string {
	switch {
	case m.st.Phase == app.NoModel:
		return "Type /demo to try the demo model, /help for commands"
	case m.st.Phase == app.Generating:
		return "Esc stops the answer · you can type the next question"
	case m.st.Phase == app.Loading:
		return "Loading the model… you can type already"
	case m.st.ImagePath == "" && m.st.HasModel:
		return "/image PATH to load an image (Tab completes)"
	}
	return "Ask about the image… (/ for commands, ? for keys)"
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

// imagePaneSize is the image pane's size in cells, borders included.
func (m *Model) imagePaneSize() (w, h int) {
	body := m.bodyHeight()
	if m.stacked() {
		return m.w, m.stackedImageHeight(body)
	}
	return m.imageWidth(), body
}

// imageRows is how many rows the image gets in a pane of inner height ih:
// one less while an image encodes (the progress line).
func (m *Model) imageRows(ih int) int {
	if m.st.Phase == app.Encoding && ih > 2 {
		return ih - 1
	}
	return ih
}

// refresh brings the transcript and the image up to the state. Unless the
// user scrolled away, the transcript follows its end: the bottom, or the
// top of a last entry taller than the pane (a long note is read from its
// start).
func (m *Model) refresh(follow bool) {
	m.chat.set(m.st.Entries, m.changed, max(8, m.chatW), m.st.Demo, m.st.Confidence, m.entry)
	m.changed = len(m.st.Entries)
	m.renderImage()
	if follow {
		m.following = true
	}
	if !m.following {
		return
	}
	m.chat.bottom()
	if n := len(m.st.Entries); n > 0 {
		last := m.st.Entries[n-1]
		if start := m.chat.lastStart(); last.Kind == app.EntryNote && len(m.chat.lines)-start > m.chat.height {
			m.chat.scrollTo(start)
		}
	}
}

// renderImage draws the image for its pane, when the image, the pane or
// the style changed.
func (m *Model) renderImage() {
	if m.st.Image == nil {
		return
	}
	w, h := m.imagePaneSize()
	iw, rows := w-2, m.imageRows(h-2)
	key := fmt.Sprintf("%p|%d|%d|%d|%d|%p", m.st.Image, iw, rows, m.mode, m.prof, m.st.Overlay)
	if key != m.imgKey {
		m.imgKey, m.imgLines = key, renderImage(m.st.Image, iw, rows, m.mode, m.prof, m.st.Overlay)
	}
}
