package chat_test

import (
	"context"
	"slices"
	"testing"

	"github.com/blip2chat/blip2chat/engine/generate"
)

// TestRetryWith: RetryWith answers the last question again with other
// decoding (here fewer tokens, then 3 beams) and leaves the conversation
// and the settings as they were, so that the next turn is the one it
// would have been without the comparison (the KV cache holds the other
// answer meanwhile).
func TestRetryWith(t *testing.T) {
	for _, c := range cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			ask := func(s *setup, compare bool) []int32 {
				soft, q := goldenSoft(t, c)
				if err := s.chat.SetSoftTokens(soft, q); err != nil {
					t.Fatal(err)
				}
				t1, err := s.chat.Ask(context.Background(), question(c), generate.Stream{})
				if err != nil {
					t.Fatal(err)
				}
				if compare {
					before := s.chat.Settings()
					short := before
					short.MaxTokens = 2
					r, err := s.chat.RetryWith(context.Background(), short, generate.Stream{})
					if err != nil {
						t.Fatal(err)
					}
					if len(r.IDs) > 2 || !slices.Equal(r.IDs, t1.IDs[:len(r.IDs)]) {
						t.Errorf("2 tokens: %v, the answer was %v", r.IDs, t1.IDs)
					}
					beams := before
					beams.NumBeams = 3
					if _, err := s.chat.RetryWith(context.Background(), beams, generate.Stream{}); err != nil {
						t.Fatal(err)
					}
					turns := s.chat.Turns()
					if len(turns) != 1 || !slices.Equal(turns[0].IDs, t1.IDs) {
						t.Errorf("the conversation changed: %+v", turns)
					}
					if got := s.chat.Settings(); got.MaxTokens != before.MaxTokens || got.NumBeams != before.NumBeams {
						t.Errorf("settings changed: %+v", got)
					}
				}
				t2, err := s.chat.Ask(context.Background(), "and what else?", generate.Stream{})
				if err != nil {
					t.Fatal(err)
				}
				return t2.IDs
			}
			want := ask(open(t, c, greedy(8, 0)), false)
			if got := ask(open(t, c, greedy(8, 0)), true); !slices.Equal(got, want) {
				t.Errorf("the turn after /compare: %v, without it %v", got, want)
			}
		})
	}
}
