package lm

import "testing"

func TestStopReasonString(t *testing.T) {
	for r, want := range map[StopReason]string{StopEOG: "end", StopMaxTokens: "max tokens", StopCancelled: "stopped", StopContextFull: "context full", StopNone: "none"} {
		if r.String() != want {
			t.Errorf("%d: %q", r, r.String())
		}
	}
}

func TestDefaultThreads(t *testing.T) {
	if n := DefaultThreads(); n < 1 || n > MaxDefaultThreads {
		t.Errorf("DefaultThreads() = %d", n)
	}
}

func TestStopReasonText(t *testing.T) {
	for _, r := range []StopReason{StopNone, StopEOG, StopMaxTokens, StopCancelled, StopContextFull} {
		b, err := r.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back StopReason
		if err := back.UnmarshalText(b); err != nil || back != r {
			t.Errorf("%v: %q read back as %v, %v", r, b, back, err)
		}
	}
	var r StopReason
	if err := r.UnmarshalText([]byte("exploded")); err == nil {
		t.Error("an unknown reason was accepted")
	}
}
