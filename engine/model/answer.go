package model

import (
	"fmt"
	"strings"

	"github.com/blip2chat/blip2chat/engine/generate"
	"github.com/blip2chat/blip2chat/engine/lm"
)

// One answer about an image, outside a conversation: the prompt and the
// context that ask and batch share, so that batch answers what ask answers.

// AnswerPrompt is the prompt text after the soft tokens and the Q-Former's
// instruction (InstructBLIP) for question: with raw the question as it is;
// with a named preset that has a prompt of its own (LAVIS's: "Question: {}
// Short answer:", InstructBLIP's caption prompt for an empty question),
// that prompt; else the model's template around it.
func (m *Model) AnswerPrompt(question string, raw bool, p generate.Preset, named bool) (text, instruction string) {
	if raw {
		return question, question
	}
	q := strings.TrimSpace(question)
	switch {
	case named && strings.Contains(p.Prompt, "{}") && q != "":
		text = strings.ReplaceAll(p.Prompt, "{}", q)
		return text, text
	case named && p.Prompt != "" && !strings.Contains(p.Prompt, "{}") && q == "":
		return p.Prompt, p.Prompt
	}
	tmpl := m.Template()
	text, instruction = tmpl.Format(nil, question), question
	if q == "" {
		instruction = tmpl.Caption
	}
	return text, instruction
}

// AnswerContext makes the context of one answer: nctx positions (ask's
// --ctx), at most what the prompt and maxTokens need (generate.Need), or
// by default (nctx 0) that need but no more than the model was trained on
// (a longer answer stops when the context is full). A prompt that does not
// fit is refused, naming the limit.
func AnswerContext(lmm lm.Model, p generate.Prompt, maxTokens, nctx int, o lm.ContextOptions) (lm.Context, error) {
	info := lmm.Info()
	room, need := generate.Need(info, p.Rows(), maxTokens)
	n, limit := nctx, "--ctx"
	switch {
	case n == 0:
		n = need
		if t := info.NCtxTrain; t > 0 && n > t {
			n, limit = t, "the model's training context"
		}
	case n > need:
		// One answer never fills more: the rest would be memory reserved
		// for nothing (--ctx 100000000 asked llama.cpp for 24 GB).
		n = need
	}
	tooLong := func(n int) error {
		return fmt.Errorf("the question is too long: with the image it takes %d positions (%d image tokens, %d text tokens) and the context holds %d (%s); shorten it",
			room, p.NSoft, len(p.IDs), n, limit)
	}
	if room > n {
		return nil, tooLong(n)
	}
	o.NCtx = n
	cx, err := lmm.NewContext(o)
	if err != nil {
		return nil, err
	}
	if cx.NCtx() < room { // a backend caps the context at what the model can hold
		cx.Close()
		limit = "the model's limit"
		return nil, tooLong(cx.NCtx())
	}
	return cx, nil
}
