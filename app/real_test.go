package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/engine/chat"
	"github.com/blip2chat/blip2chat/engine/lm"
)

// TestFinish: chat's results in the Engine contract: a cancel is a
// stopped answer, not an error; a question too long for the context says
// what the chat's user can do (not a flag of another command).
func TestFinish(t *testing.T) {
	a, err := finish(chat.Turn{Answer: "a cat", Stop: lm.StopCancelled}, context.Canceled)
	if err != nil || a.Stop != StopCancelled || a.Text != "a cat" {
		t.Errorf("cancelled: %+v, %v", a, err)
	}
	_, err = finish(chat.Turn{}, fmt.Errorf("%w: 40 soft tokens and 90 prompt tokens, the context holds 64", chat.ErrPromptTooLong))
	if !errors.Is(err, chat.ErrPromptTooLong) || !strings.HasSuffix(err.Error(), "; shorten the question, or restart with a larger --ctx") {
		t.Errorf("too long: %v", err)
	}
	if a, err := finish(chat.Turn{Answer: "x", Stop: lm.StopEOG}, nil); err != nil || a.Stop != StopEnd {
		t.Errorf("finished: %+v, %v", a, err)
	}
}
