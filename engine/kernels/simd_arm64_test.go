//go:build arm64 && !purego

package kernels

import "testing"

// TestChooseQ8 checks the kernel the arm64 CPU features and the
// BLIP2CHAT_NOI8MM / BLIP2CHAT_NODOTPROD switches select.
func TestChooseQ8(t *testing.T) {
	for _, c := range []struct {
		i8mm, dot, noI8MM, noDot bool
		want                     string
	}{
		{true, true, false, false, "i8mm"},
		{true, true, true, false, "dotprod"},
		{true, true, false, true, "neon"},
		{false, true, false, false, "dotprod"},
		{false, true, false, true, "neon"},
		{false, false, false, false, "neon"},
	} {
		if got := chooseQ8(c.i8mm, c.dot, c.noI8MM, c.noDot).name; got != c.want {
			t.Errorf("chooseQ8(i8mm=%v, dot=%v, noI8MM=%v, noDot=%v) = %s, want %s", c.i8mm, c.dot, c.noI8MM, c.noDot, got, c.want)
		}
	}
	if machine.q8.name != chooseQ8(hasI8MM, hasDotProd, envSet("BLIP2CHAT_NOI8MM"), envSet("BLIP2CHAT_NODOTPROD")).name {
		t.Errorf("machine.q8 %s is not the one chosen for this CPU", machine.q8.name)
	}
	t.Logf("features: %s", Features())
}
