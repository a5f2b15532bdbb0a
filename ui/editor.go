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

// maxInput bounds the input's text, in characters: more than any prompt
// fits in a context (4096 tokens hold some 16,000 characters), and few
// enough that a keystroke stays quick (the textarea draws all its text at
// each one: a megabyte took two seconds).
const maxInput = 16 << 10

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
	ta.CharLimit = maxInput
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

// isText reports whether a key message is text rather than a key: a paste,
// or several characters read at once (typed faster than read, or pasted
// without bracketed paste). Bubble Tea names such a message by its text, so
// that "ctrl+c" typed in a batch would match the Ctrl+C binding: text never
// goes through the key bindings.
func isText(k tea.KeyMsg) bool {
	return k.Type == tea.KeyRunes && (k.Paste || len(k.Runes) > 1)
}

// insert puts text (isText) in at the cursor, made plain, and cut to what
// maxInput leaves room for: it returns how many characters were left out.
func (e *editor) insert(text string) (left int) {
	rs := []rune(cleanText(text))
	if room := max(0, maxInput-e.Length()); len(rs) > room {
		left, rs = len(rs)-room, rs[:room]
	}
	e.edit(func() tea.Cmd {
		e.Model.InsertString(string(rs))
		return nil
	})
	return left
}

// Full reports whether the input holds maxInput characters.
func (e *editor) Full() bool { return e.Length() >= maxInput }

// update hands a message to the textarea and fits the height to the text.
// Alt with a letter the textarea has no use for types nothing (rather
// than the bare letter). Text (isText) goes to insert instead.
func (e *editor) update(msg tea.Msg) tea.Cmd {
	if k, ok := msg.(tea.KeyMsg); ok {
		switch {
		case isText(k):
			e.insert(string(k.Runes))
			return nil
		case k.Type == tea.KeySpace && len(k.Runes) == 0:
			k.Runes = []rune{' '}
			msg = k
		case k.Alt && k.Type == tea.KeyRunes && !e.takes(k):
			return nil
		}
	}
	return e.edit(func() tea.Cmd {
		var c tea.Cmd
		e.Model, c = e.Model.Update(msg)
		return c
	})
}

// edit makes a change to the textarea and fits the height to the text.
func (e *editor) edit(change func() tea.Cmd) tea.Cmd {
	// Edit at the full height, so that the textarea does not scroll a
	// line that fit shows anyway. The textarea scrolls to the cursor on
	// what it last drew (View fills its viewport): draw, and scroll again
	// after the edit, so that a paste of many lines ends in view.
	e.Model.SetHeight(maxInputLines)
	c := change()
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
	// Only up to maxInputLines+1 rows matter: count no further (a long
	// text would cost the count at every key).
	rows := 0
	for _, l := range strings.Split(e.Value(), "\n") {
		rows += wrappedRows([]rune(l), e.Width(), maxInputLines+1)
		if rows > maxInputLines {
			break
		}
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
// in width cells, counting no further than limit (> 0): it breaks after
// spaces, keeps a word whole unless the word alone is wider than a row,
// and when the last row is full adds one for the cursor. (The textarea
// does not export this; the count is checked against its LineInfo in the
// tests.)
func wrappedRows(line []rune, width, limit int) int {
	// Widths as the textarea measures them: graphemes for text, the last
	// rune's own width for a word that outgrows the row.
	w := func(rs []rune) int { return uniseg.StringWidth(string(rs)) }
	rows := 1
	var row, word []rune
	spaces := 0
	for _, r := range line {
		if rows >= limit {
			return limit
		}
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
	return min(rows, limit)
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
