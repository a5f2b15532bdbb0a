package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/blip2chat/blip2chat/engine/generate"
)

// maxCompare bounds the settings one /compare tries: each is a whole
// answer, and the columns must fit a screen.
const maxCompare = 6

// compare answers the last question again under each setting of arg (a
// preset, KEY=VALUE changes of the settings in use, or both: vqa+max_tokens=5)
// and shows the answers side by side. The conversation and the settings
// stay as they were.
func (a *App) compare(arg string) {
	specs := strings.Fields(arg)
	if len(specs) == 0 {
		a.errorf("usage: /compare SETTING ... (a preset: %s; KEY=VALUE; or both: vqa+max_tokens=5)", strings.Join(generate.PresetNames(), ", "))
		return
	}
	if len(specs) > maxCompare {
		a.errorf("/compare takes at most %d settings, not %d", maxCompare, len(specs))
		return
	}
	if !a.ready(true) {
		return
	}
	a.mu.Lock()
	cur, presets, last := a.st.Settings, a.presets, a.lastAnswer
	var question Entry
	if last > 0 {
		question = a.st.Entries[last-1]
	}
	a.mu.Unlock()
	switch {
	case len(presets) == 0:
		a.errorf("this model does not generate text: nothing to compare")
		return
	case last < 0:
		a.errorf("nothing to compare: ask a question first")
		return
	}
	settings := make([]Settings, len(specs))
	for i, spec := range specs {
		st, err := ParseSetting(spec)
		if err != nil {
			a.errorf("%v", err)
			return
		}
		s := cur
		if st.Preset != "" {
			p, _ := findPreset(presets, st.Preset)
			s = withPreset(cur, p)
		}
		for _, c := range st.Changes {
			if s, err = withSetting(s, c[0], c[1]); err != nil {
				a.errorf("%s: %v", spec, err)
				return
			}
		}
		if err := s.Params.Validate(); err != nil {
			a.errorf("%s: %v", spec, err)
			return
		}
		settings[i] = s
	}
	q := question.Text
	if question.Caption {
		q = "/caption"
	}
	a.run(Generating, "comparing", func(ctx context.Context) {
		var cols []Column
		for i, s := range settings {
			if ctx.Err() != nil {
				break
			}
			a.progress(fmt.Sprintf("%d of %d: %s", i+1, len(settings), specs[i]))
			ans, err := a.eng.Compare(ctx, s, generate.Stream{})
			if err != nil {
				a.errorf("%s: %v", specs[i], err)
				break
			}
			cols = append(cols, Column{Title: specs[i], Text: ans.Text, Stop: ans.Stop})
		}
		if len(cols) > 0 {
			a.add(Entry{Kind: EntryNote, Text: fmt.Sprintf("Compared: %q", q), Columns: cols})
		}
	})
}
