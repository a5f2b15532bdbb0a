package ui

import "github.com/charmbracelet/lipgloss"

// The palette: one accent (violet) for the model and focus, cyan for the
// user, amber for warnings and the demo label, red for errors, greys for
// chrome. Adaptive colours keep text readable on light terminals.
var (
	colAccent  = lipgloss.AdaptiveColor{Light: "#6D28D9", Dark: "#A78BFA"}
	colUser    = lipgloss.AdaptiveColor{Light: "#0E7490", Dark: "#67E8F9"}
	colWarn    = lipgloss.AdaptiveColor{Light: "#B45309", Dark: "#FBBF24"}
	colError   = lipgloss.AdaptiveColor{Light: "#B91C1C", Dark: "#F87171"}
	colOK      = lipgloss.AdaptiveColor{Light: "#15803D", Dark: "#86EFAC"}
	colText    = lipgloss.AdaptiveColor{Light: "#1F2937", Dark: "#E5E7EB"}
	colMuted   = lipgloss.AdaptiveColor{Light: "#6B7280", Dark: "#9CA3AF"}
	colFaint   = lipgloss.AdaptiveColor{Light: "#9CA3AF", Dark: "#6B7280"}
	colBorder  = lipgloss.AdaptiveColor{Light: "#D1D5DB", Dark: "#4B5563"}
	colBarBg   = lipgloss.AdaptiveColor{Light: "#E5E7EB", Dark: "#1F2937"}
	colBadgeFg = lipgloss.Color("#111827")
)

// styles are made once per renderer: the interface's own, whose colour
// profile (NO_COLOR) is no one else's business.
type styles struct {
	plain, inputBox                        lipgloss.Style
	title, titleDim, badge, demo           lipgloss.Style
	paneTitle, paneTitleFocus              lipgloss.Style
	border, borderFocus                    lipgloss.Style
	user, model, text, muted, faint, error lipgloss.Style
	warn, ok, image                        lipgloss.Style
	statusBar, statusKey, statusVal        lipgloss.Style
	spinner, hint, empty, prompt           lipgloss.Style
}

func newStyles(r *lipgloss.Renderer) styles {
	s := r.NewStyle
	return styles{
		plain:          s(),
		inputBox:       s().Border(lipgloss.RoundedBorder()).BorderForeground(colAccent).Padding(0, 1),
		title:          s().Bold(true).Foreground(colAccent),
		titleDim:       s().Foreground(colMuted),
		badge:          s().Bold(true).Foreground(colBadgeFg).Background(colAccent).Padding(0, 1),
		demo:           s().Bold(true).Foreground(colBadgeFg).Background(colWarn).Padding(0, 1),
		paneTitle:      s().Foreground(colMuted),
		paneTitleFocus: s().Bold(true).Foreground(colAccent),
		border:         s().Foreground(colBorder),
		borderFocus:    s().Foreground(colAccent),
		user:           s().Bold(true).Foreground(colUser),
		model:          s().Bold(true).Foreground(colAccent),
		text:           s().Foreground(colText),
		muted:          s().Foreground(colMuted),
		faint:          s().Foreground(colFaint),
		error:          s().Foreground(colError),
		warn:           s().Foreground(colWarn),
		ok:             s().Foreground(colOK),
		image:          s().Foreground(colAccent),
		statusBar:      s().Background(colBarBg).Foreground(colText),
		statusKey:      s().Background(colBarBg).Foreground(colMuted),
		statusVal:      s().Background(colBarBg).Foreground(colText).Bold(true),
		spinner:        s().Foreground(colAccent),
		hint:           s().Foreground(colMuted).Italic(true),
		empty:          s().Foreground(colFaint).Align(lipgloss.Center),
		prompt:         s().Bold(true).Foreground(colAccent),
	}
}
