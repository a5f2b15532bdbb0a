//go:build amd64 && !purego

package kernels

import "testing"

// TestChooseKernels checks the kernels the amd64 CPU features and the
// BLIP2CHAT_NOAVX512 / BLIP2CHAT_NOVNNI switches select.
func TestChooseKernels(t *testing.T) {
	for _, c := range []struct {
		avx512, vnni512, avxvnni, no512, noVNNI bool
		f32, q8                                 string
	}{
		{true, true, true, false, false, "avx512f", "avx512vnni"},
		{true, true, true, true, false, "avx2", "avxvnni"},
		{true, true, true, false, true, "avx2", "avx2"},
		{true, true, false, true, false, "avx2", "avx2"},
		{true, false, false, false, false, "avx512f", "avx2"},
		{false, false, true, false, false, "avx2", "avxvnni"},
		{false, false, true, false, true, "avx2", "avx2"},
		{false, false, false, false, false, "avx2", "avx2"},
	} {
		k, q := chooseKernels(c.avx512, c.vnni512, c.avxvnni, c.no512, c.noVNNI)
		if k.name != c.f32 || q.name != c.q8 {
			t.Errorf("chooseKernels(%v, %v, %v, no512=%v, noVNNI=%v) = %s, %s; want %s, %s",
				c.avx512, c.vnni512, c.avxvnni, c.no512, c.noVNNI, k.name, q.name, c.f32, c.q8)
		}
	}
	t.Logf("features: %s", Features())
}
