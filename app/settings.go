package app

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/blip2chat/blip2chat/engine/chat"
	"github.com/blip2chat/blip2chat/engine/generate"
)

// Settings are a conversation's settings, engine/chat's end to end: the
// decoding (generate.Params: a preset and what /set changed in it), the
// template and the threads. The session file records them under the JSON
// names it has always used; older files load over the defaults.
type Settings = chat.Settings

// SettingKeys lists the keys of /set in display order: transformers'
// generate() names for the decoding.
var SettingKeys = []string{"preset", "temperature", "top_p", "top_k", "min_p", "seed", "num_beams", "length_penalty",
	"early_stopping", "max_tokens", "min_new_tokens", "repetition_penalty", "repeat_last_n", "no_repeat_ngram_size",
	"eos_token_id", "template", "threads"}

// settingHelp says what each setting is, for /set.
var settingHelp = map[string]string{
	"preset":               "named decoding: " + strings.Join(generate.PresetNames(), ", ") + " (/preset lists them)",
	"temperature":          "sampling randomness, 0 = no sampling (0-5)",
	"top_k":                "sampling: keep the k most likely tokens (0 = off)",
	"top_p":                "sampling: nucleus mass (0-1, 1 = off)",
	"min_p":                "sampling: drop tokens below min_p × the best one's probability (0 = off)",
	"seed":                 "sampling: random seed (-1 = random each answer)",
	"num_beams":            "beam search width, 1 = greedy (1-16; no effect while sampling)",
	"length_penalty":       "beam score = log-probability / length^this (negative: shorter)",
	"early_stopping":       "beam search ends: true, false or never",
	"max_tokens":           "longest answer, in tokens",
	"min_new_tokens":       "no end token before this many tokens",
	"repetition_penalty":   "penalty on tokens already in the prompt or answer (1 = off)",
	"repeat_last_n":        "the penalty sees only the last n tokens (0 = all)",
	"no_repeat_ngram_size": "never repeat an n-gram of this size (0 = off)",
	"eos_token_id":         "tokens that end an answer, comma-separated",
	"template":             "prompt template, {prompt} = your text",
	"threads":              "CPU threads",
}

// settingValue returns one setting as text.
func settingValue(s Settings, key string) (string, bool) {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	switch key {
	case "preset":
		if s.Preset == "" {
			return "(none)", true
		}
		return s.Preset, true
	case "temperature":
		return f(s.Temperature), true
	case "top_k":
		return strconv.Itoa(s.TopK), true
	case "top_p":
		return f(s.TopP), true
	case "min_p":
		return f(s.MinP), true
	case "seed":
		return strconv.FormatInt(s.Seed, 10), true
	case "num_beams":
		return strconv.Itoa(max(1, s.NumBeams)), true
	case "length_penalty":
		return f(s.LengthPenalty), true
	case "early_stopping":
		return s.EarlyStopping.String(), true
	case "max_tokens":
		return strconv.Itoa(s.MaxTokens), true
	case "min_new_tokens":
		return strconv.Itoa(s.MinNewTokens), true
	case "repetition_penalty":
		return f(s.RepetitionPenalty), true
	case "repeat_last_n":
		return strconv.Itoa(s.RepeatLastN), true
	case "no_repeat_ngram_size":
		return strconv.Itoa(s.NoRepeatNgramSize), true
	case "eos_token_id":
		ids := make([]string, len(s.EOS))
		for i, id := range s.EOS {
			ids[i] = strconv.Itoa(int(id))
		}
		if len(ids) == 0 {
			return "(the model's)", true
		}
		return strings.Join(ids, ","), true
	case "template":
		return strconv.Quote(s.Template), true
	case "threads":
		return strconv.Itoa(s.Threads), true
	}
	return "", false
}

// withSetting returns s with key set to the parsed value, or an error (one
// line) saying what values the key takes. "preset" is set with the
// presets' table (withPreset).
func withSetting(s Settings, key, value string) (Settings, error) {
	value = strings.TrimSpace(value)
	num := func(lo, hi float64, rng string) (float64, error) {
		f, err := strconv.ParseFloat(value, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("%s takes a number, not %q", key, value)
		}
		if f < lo || f > hi {
			return 0, fmt.Errorf("%s must be %s", key, rng)
		}
		return f, nil
	}
	integer := func(lo, hi int64, rng string) (int, error) {
		i, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s takes a whole number, not %q", key, value)
		}
		if i < lo || i > hi {
			return 0, fmt.Errorf("%s must be %s", key, rng)
		}
		return int(i), nil
	}
	// Each value is parsed whole before it changes s: a bad one leaves s
	// as it was.
	var err error
	f := func(dst *float64, lo, hi float64, rng string) {
		var v float64
		if v, err = num(lo, hi, rng); err == nil {
			*dst = v
		}
	}
	n := func(dst *int, lo, hi int64, rng string) {
		var v int
		if v, err = integer(lo, hi, rng); err == nil {
			*dst = v
		}
	}
	switch key {
	case "temperature":
		f(&s.Temperature, 0, 5, "between 0 and 5")
	case "top_p":
		f(&s.TopP, math.SmallestNonzeroFloat64, 1, "in (0, 1]")
	case "top_k":
		n(&s.TopK, 0, 1_000_000, "0 (off) or a positive number")
	case "min_p":
		f(&s.MinP, 0, 0.99, "between 0 (off) and 0.99")
	case "max_tokens":
		n(&s.MaxTokens, 1, 1_000_000, "at least 1")
		s.MinNewTokens = min(s.MinNewTokens, s.MaxTokens)
	case "min_new_tokens":
		n(&s.MinNewTokens, 0, int64(s.MaxTokens), fmt.Sprintf("between 0 and max_tokens (%d)", s.MaxTokens))
	case "seed":
		var v int
		if v, err = integer(-1, 0xFFFFFFFE, "-1 (random) or between 0 and 4294967294"); err == nil {
			s.Seed = int64(v)
		}
	case "num_beams":
		if n(&s.NumBeams, 1, 16, "between 1 (greedy) and 16"); err == nil {
			s.NumReturnSequences = 1
		}
	case "length_penalty":
		f(&s.LengthPenalty, -10, 10, "between -10 and 10")
	case "early_stopping":
		var v generate.EarlyStopping
		if v, err = generate.ParseEarlyStopping(value); err == nil {
			s.EarlyStopping = v
		}
	case "repetition_penalty":
		f(&s.RepetitionPenalty, 0.01, 100, "between 0.01 and 100 (1 = off)")
	case "repeat_last_n":
		n(&s.RepeatLastN, 0, 1<<20, "0 (all) or a number of tokens")
	case "no_repeat_ngram_size":
		n(&s.NoRepeatNgramSize, 0, 64, "between 0 (off) and 64")
	case "eos_token_id":
		var ids []int32
		if ids, err = parseIDs(value); err == nil {
			s.EOS = ids
		}
	case "template":
		t := value
		if uq, err := strconv.Unquote(value); err == nil {
			t = uq
		}
		if !strings.Contains(t, "{prompt}") {
			return s, fmt.Errorf("the template must contain {prompt}, where your text goes")
		}
		s.Template = t
	case "threads":
		n(&s.Threads, 1, 512, "between 1 and 512")
	case "preset":
		return s, fmt.Errorf("preset takes one of %s", strings.Join(generate.PresetNames(), ", "))
	default:
		return s, fmt.Errorf("unknown setting %q; settings: %s", key, strings.Join(SettingKeys, ", "))
	}
	return s, err
}

// parseIDs reads "2" or "2, 50118".
func parseIDs(value string) ([]int32, error) {
	var ids []int32
	for _, f := range strings.Split(value, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("eos_token_id takes token ids separated by commas, not %q", value)
		}
		ids = append(ids, int32(n))
	}
	return ids, nil
}

// withPreset returns s decoding as preset p: p's settings replace the
// decoding ones; the template and threads stay.
func withPreset(s Settings, p generate.Preset) Settings {
	s.Params = p.Params
	return s
}

// findPreset finds a preset by name.
func findPreset(presets []generate.Preset, name string) (generate.Preset, bool) {
	for _, p := range presets {
		if p.Name == name {
			return p, true
		}
	}
	return generate.Preset{}, false
}

// decodingChanges lists what the settings change in their preset's
// decoding (generate.Params.Changes); nil without a known preset.
func decodingChanges(s Settings, presets []generate.Preset) []string {
	p, ok := findPreset(presets, s.Preset)
	if !ok {
		return nil
	}
	return s.Params.Changes(p.Params)
}

// sameSettings reports whether two settings are equal (they hold slices).
func sameSettings(a, b Settings) bool { return reflect.DeepEqual(a, b) }

// setSettingsLocked makes s the settings shown, with what they change in
// their preset.
func (a *App) setSettingsLocked(s Settings) {
	a.st.Settings = s
	a.st.Changes = decodingChanges(s, a.presets)
}

// preset lists the presets (no argument) or switches to one, keeping the
// template and threads.
func (a *App) preset(arg string) {
	a.mu.Lock()
	cur, has, presets := a.st.Settings, a.st.HasModel, a.presets
	a.mu.Unlock()
	if !has {
		a.errorf("no model loaded: the presets come with the model")
		return
	}
	if len(presets) == 0 { // a retrieval model: nothing to decode
		a.errorf("this model does not generate text: it has no decoding presets")
		return
	}
	name := strings.ToLower(strings.TrimSpace(arg))
	if name == "" {
		rows := make([]Row, len(presets))
		for i, p := range presets {
			label := p.Name
			if p.Name == cur.Preset {
				label = "● " + label
			}
			rows[i] = Row{Label: label, Value: p.Description}
		}
		a.add(Entry{Kind: EntryNote, Text: "Decoding presets (switch with /preset NAME; /set changes single settings):", Rows: rows})
		return
	}
	p, ok := findPreset(presets, name)
	if !ok {
		a.errorf("no preset %q; presets: %s", name, strings.Join(generate.PresetNames(), ", "))
		return
	}
	a.applySettings(withPreset(cur, p), "preset")
}
