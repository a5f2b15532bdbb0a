package chat_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/engine/chat"
)

// TestSettingsJSON: a session file written before Settings held
// generate.Params loads, with the fields it lacks at their defaults, and
// the names it used are still the names written.
func TestSettingsJSON(t *testing.T) {
	old := `{"temperature":0.8,"top_p":0.95,"top_k":40,"max_tokens":48,"seed":-1,"template":"Question: {prompt} Answer:","threads":1}`
	var s chat.Settings
	if err := json.Unmarshal([]byte(old), &s); err != nil {
		t.Fatal(err)
	}
	want := chat.DefaultSettings()
	want.Temperature, want.TopP, want.TopK, want.MaxTokens, want.Seed = 0.8, 0.95, 40, 48, -1
	want.Template, want.Threads = "Question: {prompt} Answer:", 1
	if !reflect.DeepEqual(s, want) {
		t.Errorf("old settings load as\n%+v, want\n%+v", s, want)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("old settings do not validate: %v", err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"temperature":0.8,`, `"top_p":0.95,`, `"top_k":40,`, `"max_tokens":48,`, `"seed":-1,`,
		`"template":"Question: {prompt} Answer:"`, `"threads":1`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("%s lacks %s", b, k)
		}
	}
	var back chat.Settings
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, s) {
		t.Errorf("round trip: %+v (%v), want %+v", back, err, s)
	}
	if err := json.Unmarshal([]byte(`{"temperature":"hot"}`), &back); err == nil {
		t.Error("a string temperature loaded")
	}
}
