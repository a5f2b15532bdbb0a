package chat

import "testing"

func TestTemplateFormat(t *testing.T) {
	h := []Exchange{{"what color is the dog?", " brown"}, {"where is it?", "in the snow"}}
	cases := []struct {
		name     string
		tmpl     Template
		history  []Exchange
		question string
		want     string
	}{
		{"blip2 first", BLIP2Template, nil, "what is in the image?", "Question: what is in the image? Answer:"},
		{"blip2 history", BLIP2Template, h, "is it happy?",
			"Question: what color is the dog? Answer: brown. Question: where is it? Answer: in the snow. Question: is it happy? Answer:"},
		{"blip2 caption", BLIP2Template, nil, "  ", ""},
		{"instructblip", InstructBLIPTemplate, nil, "What is unusual about this image?", "What is unusual about this image?"},
		{"instructblip history", InstructBLIPTemplate, h[:1], "Why?", "what color is the dog? brown\nWhy?"},
		{"instructblip caption", InstructBLIPTemplate, nil, "", "A short image description:"},
		{"placeholders stay", BLIP2Template, nil, "what does {answer} mean?", "Question: what does {answer} mean? Answer:"},
		{"trimmed", BLIP2Template, nil, "  hi \n", "Question: hi Answer:"},
	}
	for _, c := range cases {
		if got := c.tmpl.Format(c.history, c.question); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

func TestTemplateFor(t *testing.T) {
	if got := TemplateFor("blip-2", "Question: {prompt} Answer:"); got != BLIP2Template {
		t.Errorf("blip-2: %+v", got)
	}
	if got := TemplateFor("instructblip", ""); got != InstructBLIPTemplate {
		t.Errorf("instructblip: %+v", got)
	}
	got := TemplateFor("blip-2", "Q: {prompt} A:")
	if got.Turn != "Q: {prompt} A:" || got.History != "Q: {prompt} A: {answer}" || got.Validate() != nil {
		t.Errorf("custom format: %+v", got)
	}
	for _, bad := range []Template{
		{Turn: "no placeholder", History: "{prompt} {answer}"},
		{Turn: "{prompt}", History: "{prompt}"},
		{Turn: "{prompt}", History: "{prompt} {answer}", Caption: "{prompt}"},
	} {
		if bad.Validate() == nil {
			t.Errorf("Validate(%+v) accepted", bad)
		}
	}
}
