package main

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/engine/generate"
)

// parseDecodeFlags parses args as ask's decoding flags.
func parseDecodeFlags(t *testing.T, args []string) (*decodeFlags, error) {
	t.Helper()
	fs := flag.NewFlagSet("ask", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := addDecodeFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	f.visit(fs)
	return f, f.check()
}

// TestAskDecodeFlags: the flags change the preset's settings where given,
// under generate()'s names; --greedy is pure argmax (one beam, no penalty
// unless --repeat-penalty is given); sampling turned on keeps the
// checkpoint's top_k.
func TestAskDecodeFlags(t *testing.T) {
	ref := generate.DefaultParams() // a reference preset: generation_config's top_k 50 carried
	ref.Preset, ref.TopK, ref.EOS = "reference", 50, []int32{2}
	beam := ref
	beam.Preset, beam.NumBeams, beam.RepetitionPenalty, beam.NoRepeatNgramSize, beam.MaxTokens = "instruct", 5, 1.5, 3, 256
	for _, c := range []struct {
		name  string
		base  generate.Params
		args  []string
		check func(p generate.Params) bool
	}{
		{"no flags", beam, nil, func(p generate.Params) bool {
			return p.Beams() == 5 && p.RepetitionPenalty == 1.5 && p.Preset == "instruct"
		}},
		{"greedy", beam, []string{"--greedy"}, func(p generate.Params) bool {
			return p.Beams() == 1 && !p.Sampling() && p.RepetitionPenalty == 1 && p.NoRepeatNgramSize == 0 && p.MaxTokens == 256
		}},
		{"greedy with a penalty", beam, []string{"--greedy", "--repeat-penalty", "1.2"}, func(p generate.Params) bool {
			return p.Beams() == 1 && p.RepetitionPenalty == 1.2 && p.RepeatLastN == 0
		}},
		{"sampling keeps top_k 50", ref, []string{"--temp", "0.7", "--seed", "3"}, func(p generate.Params) bool {
			return p.Sampling() && p.Temperature == 0.7 && p.TopK == 50 && p.Seed == 3
		}},
		{"sampling on a beam preset", beam, []string{"--temp", "0.7", "--top-k", "0", "--top-p", "0.9", "--min-p", "0.05"}, func(p generate.Params) bool {
			return p.Sampling() && p.Beams() == 1 && p.TopK == 0 && p.TopP == 0.9 && p.MinP == 0.05
		}},
		{"beam search", ref, []string{"--num-beams", "4", "--length-penalty", "-1", "--early-stopping", "never", "--num-return-sequences", "3"},
			func(p generate.Params) bool {
				return p.Beams() == 4 && p.LengthPenalty == -1 && p.EarlyStopping == generate.EarlyStopNever && p.NumReturnSequences == 3
			}},
		{"lengths, stop tokens, n-grams", ref, []string{"--max-tokens", "7", "--min-new-tokens", "3", "--eos-token-id", "5, 6", "--no-repeat-ngram-size", "2", "--repeat-penalty", "1.3", "--repeat-last-n", "8"},
			func(p generate.Params) bool {
				return p.MaxTokens == 7 && p.MinNewTokens == 3 && slices.Equal(p.EOS, []int32{5, 6}) && p.NoRepeatNgramSize == 2 &&
					p.RepetitionPenalty == 1.3 && p.RepeatLastN == 8
			}},
		{"fewer beams than sequences kept", beam, []string{"--num-beams", "2"}, func(p generate.Params) bool { return p.Beams() == 2 && p.NumReturnSequences == 1 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := parseDecodeFlags(t, c.args)
			if err != nil {
				t.Fatal(err)
			}
			p, err := f.apply(c.base, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(p) {
				t.Errorf("%s: %+v", strings.Join(c.args, " "), p)
			}
		})
	}
}

// TestAskDecodeFlagErrors: every flag is bounded by what it can mean, and
// refused with one line before anything loads, or once the model (the
// vocabulary) or the context (its size) is known.
func TestAskDecodeFlagErrors(t *testing.T) {
	sampling := generate.DefaultParams()
	sampling.Temperature, sampling.Preset = 0.8, "creative"
	for _, c := range []struct {
		args []string
		base *generate.Params // nil: refused by check
		want string
	}{
		{[]string{"--preset", "fast"}, nil, "reference, caption, vqa, instruct, creative"},
		{[]string{"--early-stopping", "maybe"}, nil, "true, false or never"},
		{[]string{"--eos-token-id", "2,x"}, nil, "--eos-token-id"},
		{[]string{"--eos-token-id", "-1"}, nil, "--eos-token-id"},
		{[]string{"--temp", "-1"}, nil, "--temp"},
		{[]string{"--temp", "NaN"}, nil, "temperature is NaN"},
		{[]string{"--top-p", "0"}, nil, "--top-p"},
		{[]string{"--top-k", "-2"}, nil, "--top-k"},
		{[]string{"--min-p", "1"}, nil, "--min-p"},
		{[]string{"--seed", "-2"}, nil, "--seed"},
		{[]string{"--num-beams", "0"}, nil, "--num-beams"},
		{[]string{"--num-beams", "65"}, nil, "--num-beams"},
		{[]string{"--length-penalty", "11"}, nil, "--length-penalty"},
		{[]string{"--num-beams", "3", "--num-return-sequences", "4"}, nil, "more than --num-beams"},
		{[]string{"--max-tokens", "-1"}, nil, "--max-tokens"},
		{[]string{"--max-tokens", "3", "--min-new-tokens", "5"}, nil, "--min-new-tokens"},
		{[]string{"--repeat-penalty", "0"}, nil, "--repeat-penalty"},
		{[]string{"--repeat-last-n", "-1"}, nil, "--repeat-last-n"},
		{[]string{"--no-repeat-ngram-size", "-3"}, nil, "--no-repeat-ngram-size"},
		{[]string{"--greedy", "--num-beams", "2"}, nil, "--greedy"},
		{[]string{"--temp", "1", "--num-beams", "2"}, nil, "beam sampling"},
		// Once the model is known.
		{[]string{"--top-k", "2000"}, &sampling, "1000 tokens"},
		{[]string{"--eos-token-id", "5,1000"}, &sampling, "1000 tokens"},
		{[]string{"--num-beams", "3"}, &sampling, "beam sampling"},
		{[]string{"--num-return-sequences", "2"}, &sampling, "more than the 1 beams"},
		{[]string{"--min-new-tokens", "500"}, &sampling, "--min-new-tokens 500 is more than the 128"},
	} {
		f, err := parseDecodeFlags(t, c.args)
		if c.base != nil {
			if err != nil {
				t.Fatalf("%v: refused early: %v", c.args, err)
			}
			_, err = f.apply(*c.base, 1000)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v, want one line with %q", c.args, err, c.want)
		}
		if err != nil && !errors.As(err, new(usageError)) {
			t.Errorf("%v: %v is not a usage error (exit 2)", c.args, err)
		}
	}
	// Once the context size is known.
	f, _ := parseDecodeFlags(t, []string{"--repeat-penalty", "1.1", "--repeat-last-n", "300", "--no-repeat-ngram-size", "2"})
	p, err := f.apply(generate.DefaultParams(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.checkContext(p, 256); err == nil || !strings.Contains(err.Error(), "256 positions") {
		t.Errorf("--repeat-last-n 300 in 256 positions: %v", err)
	}
}
