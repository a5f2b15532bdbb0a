package main

import (
	"flag"
	"io"
	"strings"
	"testing"
)

// TestAskSamplingFlags: --greedy is pure argmax, with a repetition penalty
// only when --repeat-penalty is given (transformers' greedy); sampling
// keeps llama.cpp's chat defaults, penalty included.
func TestAskSamplingFlags(t *testing.T) {
	for _, c := range []struct {
		args          []string
		temp, penalty float64
		lastN, topK   int
	}{
		{nil, 0.8, 1.1, 64, 40},
		{[]string{"--greedy"}, 0, 1, 0, 0},
		{[]string{"--temp", "0"}, 0, 1, 0, 0},
		{[]string{"--greedy", "--repeat-penalty", "1.5"}, 0, 1.5, 64, 0},
		{[]string{"--greedy", "--repeat-penalty", "1.5", "--repeat-last-n", "0"}, 0, 1.5, 0, 0},
		{[]string{"--temp", "1.2", "--repeat-penalty", "1"}, 1.2, 1, 64, 40},
	} {
		fs := flag.NewFlagSet("ask", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		sf := addSamplingFlags(fs)
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		p, err := sf.params(set, 7)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if p.Temperature != c.temp || p.RepetitionPenalty != c.penalty || p.RepeatLastN != c.lastN || p.TopK != c.topK || p.MaxTokens != 7 || p.Seed != -1 {
			t.Errorf("%s: %+v", strings.Join(c.args, " "), p)
		}
	}
}
