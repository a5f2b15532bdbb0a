package lm

import "fmt"

// StopReason says why an answer ended (engine/generate sets it).
type StopReason int

const (
	StopNone        StopReason = iota // not finished (or failed)
	StopEOG                           // the model produced an end-of-generation token
	StopMaxTokens                     // MaxTokens tokens were generated
	StopCancelled                     // the caller's context was cancelled
	StopContextFull                   // no position left in the context
)

func (r StopReason) String() string {
	switch r {
	case StopEOG:
		return "end"
	case StopMaxTokens:
		return "max tokens"
	case StopCancelled:
		return "stopped"
	case StopContextFull:
		return "context full"
	}
	return "none"
}

// MarshalText writes the reason as String does ("end", "max tokens",
// "stopped", "context full"; "" for StopNone): the spelling session files
// have always used.
func (r StopReason) MarshalText() ([]byte, error) {
	if r == StopNone {
		return nil, nil
	}
	return []byte(r.String()), nil
}

// UnmarshalText reads what MarshalText writes; "" and "none" are StopNone.
func (r *StopReason) UnmarshalText(b []byte) error {
	for _, v := range []StopReason{StopNone, StopEOG, StopMaxTokens, StopCancelled, StopContextFull} {
		if string(b) == v.String() {
			*r = v
			return nil
		}
	}
	if len(b) == 0 {
		*r = StopNone
		return nil
	}
	return fmt.Errorf("unknown stop reason %q", b)
}
