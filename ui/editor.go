package ui

import (
	"io"
	"strings"
	"unicode"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textarea"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/mattn/go-runewidth"
	"github.com/muesli/termenv"
	"github.com/rivo/uniseg"
)

// Input box heights, in lines: it grows with its text up to maxInputLines
// and then scrolls.
const (
	minInputLines = 1
	maxInputLines = 5
)

// promptWidth is the width of the prompt in front of every line.
const promptWidth = 2

// editor is the input box: bubbles/textarea with Enter left to the Model
// (it sends), Alt+Enter and Ctrl+J for a new line, no line numbers, a
// prompt on the first line, and a height that follows the text (1 to 5
// lines). Keys the Model uses (Ctrl+T, Ctrl+F/B, Ctrl+Home/End) are taken
// out of the textarea's key map; Ctrl+V is too (it would need a clipboard
// tool: the terminal's own paste, bracketed, works).
type editor struct {
	textarea.Model
	rows int // the text's height in screen rows at the last fit
}

func newEditor(sty styles) *editor {
	ta := textarea.New()
	ta.ShowLineNumbers = false
	ta.CharLimit = 0
	ta.MaxHeight = 0 // the height is ours (fit)
	ta.MaxWidth = 0
	ta.EndOfBufferCharacter = ' '
	ta.SetPromptFunc(promptWidth, func(line int) string {
		if line == 0 {
			return "❯ "
		}
		return "  "
	})

	km := textarea.DefaultKeyMap
	km.InsertNewline = key.NewBinding(key.WithKeys("alt+enter", "ctrl+j"))
	km.CharacterForward = key.NewBinding(key.WithKeys("right"))
	km.CharacterBackward = key.NewBinding(key.WithKeys("left"))
	km.WordForward = key.NewBinding(key.WithKeys("alt+right", "ctrl+right", "alt+f"))
	km.WordBackward = key.NewBinding(key.WithKeys("alt+left", "ctrl+left", "alt+b"))
	km.InputBegin = key.NewBinding(key.WithKeys("alt+<"))
	km.InputEnd = key.NewBinding(key.WithKeys("alt+>"))
	km.Paste = key.NewBinding()
	km.TransposeCharacterBackward = key.NewBinding()
	ta.KeyMap = km

	st := textarea.Style{
		Base:             sty.plain,
		CursorLine:       sty.text,
		CursorLineNumber: sty.faint,
		EndOfBuffer:      sty.plain,
		LineNumber:       sty.faint,
		Placeholder:      sty.faint,
		Prompt:           sty.prompt,
		Text:             sty.text,
	}
	ta.FocusedStyle, ta.BlurredStyle = st, st
	// The cursor is reverse video, which is no colour: render it with a
	// renderer of its own so that it stays visible under NO_COLOR, where
	// the interface's renderer drops all styling. It does not blink (no timer
	// redrawing the screen twice a second while a model computes).
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.ANSI)
	ta.Cursor.Style = r.NewStyle()
	ta.Cursor.SetMode(cursor.CursorStatic)
	ta.Focus()

	e := &editor{Model: ta}
	e.fit()
	return e
}

// SetWidth sets the width of the box's inside, prompt included.
func (e *editor) SetWidth(w int) {
	e.Model.SetWidth(w)
	e.fit()
}

// SetValue replaces the text; the cursor goes to its end.
func (e *editor) SetValue(s string) {
	e.Model.SetValue(cleanText(s))
	e.update(nil)
}

// Reset empties the box.
func (e *editor) Reset() {
	e.Model.Reset()
	e.fit()
}

// SetPlaceholder sets the text shown when the box is empty, cut to one
// line (the box is one line high when empty).
func (e *editor) SetPlaceholder(s string) {
	e.Placeholder = ansi.Truncate(s, max(1, e.Width()-1), "…")
}

// update hands a message to the textarea and fits the height to the text.
// Pasted text is made plain first; Alt with a letter the textarea has no
// use for types nothing (rather than the bare letter).
func (e *editor) update(msg tea.Msg) tea.Cmd {
	if k, ok := msg.(tea.KeyMsg); ok {
		switch {
		case k.Type == tea.KeySpace && len(k.Runes) == 0:
			k.Runes = []rune{' '}
			msg = k
		case k.Paste:
			k.Runes = []rune(cleanText(string(k.Runes)))
			msg = k
		case k.Alt && k.Type == tea.KeyRunes && !e.takes(k):
			return nil
		}
	}
	// Edit at the full height, so that the textarea does not scroll a
	// line that fit shows anyway. The textarea scrolls to the cursor on
	// what it last drew (View fills its viewport): draw, and scroll again
	// after the edit, so that a paste of many lines ends in view.
	e.Model.SetHeight(maxInputLines)
	var c tea.Cmd
	e.Model, c = e.Model.Update(msg)
	e.Model.View()
	e.Model, _ = e.Model.Update(nil)
	e.fit()
	return c
}

// takes reports whether an Alt+letter key edits.
func (e *editor) takes(k tea.KeyMsg) bool {
	km := e.KeyMap
	return key.Matches(k, km.WordForward, km.WordBackward, km.DeleteWordForward, km.DeleteWordBackward,
		km.UppercaseWordForward, km.LowercaseWordForward, km.CapitalizeWordForward, km.InputBegin, km.InputEnd)
}

// fit sets the height to the text's rows (1 to 5). When the text fits,
// the textarea's own scroll goes back to the top: it scrolls only to keep
// the cursor in view, never back, so a text that shrank would otherwise
// show blank lines under its end.
func (e *editor) fit() {
	rows := 0
	for _, l := range strings.Split(e.Value(), "\n") {
		rows += wrappedRows([]rune(l), e.Width())
	}
	e.Model.SetHeight(max(minInputLines, min(maxInputLines, rows)))
	if rows <= maxInputLines && e.rows > maxInputLines {
		up := tea.MouseMsg{Button: tea.MouseButtonWheelUp, Action: tea.MouseActionPress}
		for range e.rows/3 + 1 {
			e.Model, _ = e.Model.Update(up)
		}
	}
	e.rows = rows
}

// OnFirstRow and OnLastRow say where the cursor is: Up on the first row
// and Down on the last browse the input history.
func (e *editor) OnFirstRow() bool {
	return e.Line() == 0 && e.LineInfo().RowOffset == 0
}

func (e *editor) OnLastRow() bool {
	li := e.LineInfo()
	return e.Line() == e.LineCount()-1 && li.RowOffset >= li.Height-1
}

// wrappedRows is how many screen rows the textarea gives a line of text
// in width cells: it breaks after spaces, keeps a word whole unless the
// word alone is wider than a row, and when the last row is full adds one
// for the cursor. (The textarea does not export this; the count is
// checked against its LineInfo in the tests.)
func wrappedRows(line []rune, width int) int {
	// Widths as the textarea measures them: graphemes for text, the last
	// rune's own width for a word that outgrows the row.
	w := func(rs []rune) int { return uniseg.StringWidth(string(rs)) }
	rows := 1
	var row, word []rune
	spaces := 0
	for _, r := range line {
		if unicode.IsSpace(r) {
			spaces++
		} else {
			word = append(word, r)
		}
		switch {
		case spaces > 0:
			// A word and the spaces after it go on this row or the next.
			if w(row)+w(word)+spaces > width {
				rows++
				row = row[:0]
			}
			row = append(row, word...)
			row = append(row, []rune(strings.Repeat(" ", spaces))...)
			word, spaces = word[:0], 0
		case w(word)+runewidth.RuneWidth(word[len(word)-1]) > width:
			// A word as wide as a row takes a row of its own.
			if len(row) > 0 {
				rows++
				row = row[:0]
			}
			row = append(row, word...)
			word = word[:0]
		}
	}
	if w(row)+w(word)+spaces >= width {
		rows++
	}
	return rows
}

// cleanText makes pasted or recalled text plain: CR LF and CR become LF,
// tabs a space, other control characters are dropped. What the input box
// holds is the user's own text, so dropping loses nothing they cannot type
// again; text from elsewhere is shown through app.Printable, which replaces
// control characters instead, so that nothing disappears unseen.
func cleanText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n':
			return r
		case r == '\t':
			return ' '
		case unicode.IsControl(r):
			return -1
		}
		return r
	}, s)
}
