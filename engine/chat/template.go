package chat

import (
	"errors"
	"strings"
)

// Placeholders in a Template.
const (
	PromptVar = "{prompt}" // the user's question or instruction
	AnswerVar = "{answer}" // the model's answer to an earlier turn
)

// Template turns a conversation into the prompt text that follows the soft
// tokens. The prompt of a turn is the earlier turns still in the context,
// each written with History and joined by Sep, then Sep and the current
// question written with Turn (or Caption when the question is empty).
//
// BLIP-2 (OPT, FlanT5) was trained on "Question: {q} Answer:";
// InstructBLIP takes the instruction as it is.
type Template struct {
	Turn    string // the current question, e.g. "Question: {prompt} Answer:"
	History string // an earlier turn, e.g. "Question: {prompt} Answer: {answer}."
	Sep     string // between turns, e.g. " "
	// Caption is the prompt for an empty question ("describe the image").
	// "" gives the soft tokens alone (plus BOS), as BLIP-2 captions.
	Caption string
}

// Default prompt formats by vision.Info.Family.
var (
	BLIP2Template = Template{
		Turn:    "Question: {prompt} Answer:",
		History: "Question: {prompt} Answer: {answer}.",
		Sep:     " ",
		Caption: "",
	}
	InstructBLIPTemplate = Template{
		Turn:    "{prompt}",
		History: "{prompt} {answer}",
		Sep:     "\n",
		Caption: "A short image description:",
	}
)

// TemplateFor returns the template of a model family ("blip-2",
// "instructblip"); promptFormat (vision.Info.PromptFormat, "" for the
// family's default) overrides the Turn format, and the History format is
// derived from it when it is BLIP-2's.
func TemplateFor(family, promptFormat string) Template {
	t := BLIP2Template
	if family == "instructblip" {
		t = InstructBLIPTemplate
	}
	if promptFormat != "" && promptFormat != t.Turn {
		t.Turn = promptFormat
		t.History = promptFormat + " " + AnswerVar
	}
	return t
}

// Validate checks that the formats hold their placeholders.
func (t Template) Validate() error {
	switch {
	case !strings.Contains(t.Turn, PromptVar):
		return errors.New("template: the turn format has no " + PromptVar)
	case !strings.Contains(t.History, PromptVar) || !strings.Contains(t.History, AnswerVar):
		return errors.New("template: the history format needs " + PromptVar + " and " + AnswerVar)
	case strings.Contains(t.Caption, PromptVar) || strings.Contains(t.Caption, AnswerVar):
		return errors.New("template: the caption prompt takes no placeholder")
	}
	return nil
}

// Exchange is one earlier turn for Format.
type Exchange struct{ Question, Answer string }

// Format writes the prompt for question after the earlier exchanges.
// Placeholders in the user's text are not expanded again.
func (t Template) Format(history []Exchange, question string) string {
	var b strings.Builder
	for _, h := range history {
		b.WriteString(fill(t.History, h.Question, strings.TrimSpace(h.Answer)))
		b.WriteString(t.Sep)
	}
	q := strings.TrimSpace(question)
	if q == "" {
		if b.Len() == 0 {
			return t.Caption
		}
		if t.Caption == "" {
			return strings.TrimSuffix(b.String(), t.Sep)
		}
		b.WriteString(t.Caption)
		return b.String()
	}
	b.WriteString(fill(t.Turn, q, ""))
	return b.String()
}

// fill replaces the placeholders in one pass, so that a question containing
// "{answer}" stays as typed.
func fill(format, prompt, answer string) string {
	return strings.NewReplacer(PromptVar, prompt, AnswerVar, answer).Replace(format)
}
