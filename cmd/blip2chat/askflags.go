package main

import (
	"flag"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/blip2chat/blip2chat/engine/generate"
)

// decodeFlags are ask's decoding options, named after transformers'
// generate() arguments. They change the preset's settings (by default
// "reference": the checkpoint's generation_config.json, as generate()
// reads it) where given: set tells which were.
type decodeFlags struct {
	preset                                *string
	greedy                                *bool
	temp, topP, minP, repeat, lenPenalty  *float64
	topK, repeatLastN, ngram, beams, nRet *int
	minNew, maxTokens                     *int
	seed                                  *int64
	earlyStopping, eos                    *string
	set                                   map[string]bool
}

// maxFlagTokens bounds the token counts a flag takes (generate.Params
// refuses more).
const maxFlagTokens = 1 << 24

func addDecodeFlags(fs *flag.FlagSet) *decodeFlags {
	return &decodeFlags{
		preset:        fs.String("preset", "reference", "decoding `preset`: "+strings.Join(generate.PresetNames(), ", ")+" (reference: the checkpoint's generation_config.json, as transformers' generate() reads it)"),
		greedy:        fs.Bool("greedy", false, "pure argmax: one beam, no sampling, no repetition penalty or n-gram ban unless given"),
		temp:          fs.Float64("temp", 0, "sample at this `temperature` (0: no sampling)"),
		topK:          fs.Int("top-k", 0, "sampling: keep the `K` most likely tokens (0: off)"),
		topP:          fs.Float64("top-p", 1, "sampling: nucleus `threshold` (1: off)"),
		minP:          fs.Float64("min-p", 0, "sampling: drop tokens below `P` times the most likely one's probability (0: off)"),
		seed:          fs.Int64("seed", -1, "sampling: random `seed` (-1: a new one each run)"),
		beams:         fs.Int("num-beams", 1, "beam search with `N` beams (1: none)"),
		lenPenalty:    fs.Float64("length-penalty", 1, "beam search: score = log-probability / length^`LP` (negative favours short answers)"),
		earlyStopping: fs.String("early-stopping", "false", "beam search ends: true (num_beams answers done), false (no beam can do better, by transformers' estimate) or never"),
		nRet:          fs.Int("num-return-sequences", 1, "beam search: how many of the best `sequences` --json lists"),
		maxTokens:     fs.Int("max-tokens", 0, "most new `tokens` (max_new_tokens; 0: only run the prompt, e.g. for --logits-out; default: the preset's)"),
		minNew:        fs.Int("min-new-tokens", 0, "no end token before this many new `tokens`"),
		repeat:        fs.Float64("repeat-penalty", 1, "repetition `penalty` over the prompt's text tokens and the answer (1: off)"),
		repeatLastN:   fs.Int("repeat-last-n", 0, "the repetition penalty sees only the last `N` tokens (0: all, as transformers)"),
		ngram:         fs.Int("no-repeat-ngram-size", 0, "never repeat an n-gram of this `size` (0: off)"),
		eos:           fs.String("eos-token-id", "", "token `ids` that end the answer, comma-separated (replace the checkpoint's)"),
	}
}

// visit records which flags were given.
func (f *decodeFlags) visit(fs *flag.FlagSet) {
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
}

// check refuses values no model can take, before anything loads.
func (f *decodeFlags) check() error {
	// The names say what transformers calls the values (temperature is
	// NaN), the flags what to change.
	for _, v := range []struct {
		flag, name string
		v          float64
	}{{"temp", "temperature", *f.temp}, {"top-p", "top_p", *f.topP}, {"min-p", "min_p", *f.minP},
		{"repeat-penalty", "repetition_penalty", *f.repeat}, {"length-penalty", "length_penalty", *f.lenPenalty}} {
		if math.IsNaN(v.v) || math.IsInf(v.v, 0) {
			return badUsage("--%s: %s is %v", v.flag, v.name, v.v)
		}
	}
	if !slices.Contains(generate.PresetNames(), *f.preset) {
		return badUsage("--preset %q: the presets are %s", *f.preset, strings.Join(generate.PresetNames(), ", "))
	}
	if _, err := generate.ParseEarlyStopping(*f.earlyStopping); err != nil {
		return badUsage("--early-stopping %q: want true, false or never", *f.earlyStopping)
	}
	if _, err := f.eosIDs(); err != nil {
		return err
	}
	// Negative counts first, each flag's own range next, then the flags
	// that must agree.
	for _, v := range []struct {
		flag string
		v    int64
	}{{"top-k", int64(*f.topK)}, {"max-tokens", int64(*f.maxTokens)}, {"min-new-tokens", int64(*f.minNew)},
		{"repeat-last-n", int64(*f.repeatLastN)}, {"no-repeat-ngram-size", int64(*f.ngram)}, {"num-beams", int64(*f.beams)},
		{"num-return-sequences", int64(*f.nRet)}} {
		switch {
		case v.v < 0:
			return badUsage("--%s %d is negative", v.flag, v.v)
		case v.v > maxFlagTokens:
			return badUsage("--%s %d is more than %d", v.flag, v.v, maxFlagTokens)
		}
	}
	switch {
	case *f.temp < 0:
		return badUsage("--temp %v is negative (0: no sampling)", *f.temp)
	case *f.temp > 100:
		return badUsage("--temp %v is more than 100", *f.temp)
	case *f.topP < 0 || *f.topP > 1:
		return badUsage("--top-p %v is outside 0..1 (1: off)", *f.topP)
	case *f.topP == 0:
		return badUsage("--top-p 0 keeps no token (1: off)")
	case *f.minP < 0 || *f.minP >= 1:
		return badUsage("--min-p %v is outside [0, 1)", *f.minP)
	case *f.seed < -1 || *f.seed >= math.MaxUint32:
		return badUsage("--seed %d: must be below %d (-1: random)", *f.seed, uint32(math.MaxUint32))
	case *f.beams < 1 || *f.beams > 64:
		return badUsage("--num-beams %d is outside 1..64", *f.beams)
	case *f.lenPenalty < -10 || *f.lenPenalty > 10:
		return badUsage("--length-penalty %v is outside -10..10", *f.lenPenalty)
	case *f.nRet < 1:
		return badUsage("--num-return-sequences %d is below 1", *f.nRet)
	case f.set["num-return-sequences"] && f.set["num-beams"] && *f.nRet > *f.beams:
		return badUsage("--num-return-sequences %d is more than --num-beams %d", *f.nRet, *f.beams)
	case f.set["max-tokens"] && *f.minNew > *f.maxTokens:
		return badUsage("--min-new-tokens %d is more than --max-tokens %d", *f.minNew, *f.maxTokens)
	case *f.repeat <= 0 || *f.repeat > 100:
		return badUsage("--repeat-penalty %v is outside (0, 100] (1: off)", *f.repeat)
	case *f.greedy && (f.set["num-beams"] && *f.beams > 1 || f.set["temp"] && *f.temp > 0):
		return badUsage("--greedy takes one beam and no sampling: drop --num-beams or --temp")
	case f.set["temp"] && *f.temp > 0 && f.set["num-beams"] && *f.beams > 1:
		return badUsage("--temp with --num-beams %d: beam sampling is not supported", *f.beams)
	}
	return nil
}

// eosIDs parses --eos-token-id.
func (f *decodeFlags) eosIDs() ([]int32, error) {
	if !f.set["eos-token-id"] {
		return nil, nil
	}
	var ids []int32
	for _, s := range strings.Split(*f.eos, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
		if err != nil || n < 0 {
			return nil, badUsage("--eos-token-id %q: want token ids (0 or more) separated by commas", *f.eos)
		}
		ids = append(ids, int32(n))
	}
	return ids, nil
}

// apply changes the preset's settings p as the flags ask, for a model of
// nVocab tokens.
func (f *decodeFlags) apply(p generate.Params, nVocab int) (generate.Params, error) {
	set := f.set
	if *f.greedy {
		p.Temperature, p.NumBeams, p.NumReturnSequences = 0, 1, 1
		p.RepetitionPenalty, p.RepeatLastN, p.NoRepeatNgramSize = 1, 0, 0
	}
	if set["temp"] {
		p.Temperature = *f.temp
		if p.Sampling() {
			p.NumBeams, p.NumReturnSequences = 1, 1
		}
	}
	if set["num-beams"] {
		if *f.beams > 1 && p.Sampling() {
			return p, badUsage("--num-beams %d with the %s preset's sampling: beam sampling is not supported (add --temp 0)", *f.beams, *f.preset)
		}
		p.NumBeams = *f.beams
		p.NumReturnSequences = min(p.NumReturnSequences, p.NumBeams)
	}
	if set["top-k"] {
		if *f.topK > nVocab {
			return p, badUsage("--top-k %d is more than the model's %d tokens", *f.topK, nVocab)
		}
		p.TopK = *f.topK
	}
	if set["top-p"] {
		p.TopP = *f.topP
	}
	if set["min-p"] {
		p.MinP = *f.minP
	}
	if set["seed"] {
		p.Seed = *f.seed
	}
	if set["length-penalty"] {
		p.LengthPenalty = *f.lenPenalty
	}
	if set["early-stopping"] {
		p.EarlyStopping, _ = generate.ParseEarlyStopping(*f.earlyStopping)
	}
	if set["num-return-sequences"] {
		if *f.nRet > p.Beams() {
			return p, badUsage("--num-return-sequences %d is more than the %d beams", *f.nRet, p.Beams())
		}
		p.NumReturnSequences = *f.nRet
	}
	if set["max-tokens"] {
		p.MaxTokens = *f.maxTokens
	}
	if set["min-new-tokens"] {
		p.MinNewTokens = *f.minNew
	}
	if p.MinNewTokens > p.MaxTokens {
		if set["min-new-tokens"] {
			return p, badUsage("--min-new-tokens %d is more than the %d new tokens allowed (--max-tokens)", p.MinNewTokens, p.MaxTokens)
		}
		p.MinNewTokens = p.MaxTokens
	}
	if set["repeat-penalty"] {
		p.RepetitionPenalty = *f.repeat
	}
	if set["repeat-last-n"] {
		p.RepeatLastN = *f.repeatLastN
	}
	if set["no-repeat-ngram-size"] {
		p.NoRepeatNgramSize = *f.ngram
	}
	if set["eos-token-id"] {
		ids, _ := f.eosIDs()
		for _, id := range ids {
			if int(id) >= nVocab {
				return p, badUsage("--eos-token-id %d is outside the model's %d tokens", id, nVocab)
			}
		}
		p.EOS = ids
	}
	if err := p.Validate(); err != nil {
		return p, usageError{err}
	}
	return p, nil
}

// checkContext refuses the flags that look further back than a context of
// nCtx positions holds.
func (f *decodeFlags) checkContext(p generate.Params, nCtx int) error {
	switch {
	case p.RepeatLastN > nCtx:
		return badUsage("--repeat-last-n %d is more than the context's %d positions", p.RepeatLastN, nCtx)
	case p.NoRepeatNgramSize > nCtx:
		return badUsage("--no-repeat-ngram-size %d is more than the context's %d positions", p.NoRepeatNgramSize, nCtx)
	}
	return nil
}
