package synth

import (
	"hash/fnv"
	"math"
	"strings"
)

// Rand is SplitMix64: fast, seedable with any value, and good enough for
// random weights and test inputs. It is the one generator of synthetic
// data in the repository.
type Rand struct{ s uint64 }

// NewRand returns the generator of seed.
func NewRand(seed uint64) *Rand { return &Rand{seed} }

// Uint64 returns the next 64 random bits.
func (r *Rand) Uint64() uint64 {
	r.s += Golden64
	return Mix64(r.s)
}

// Golden64 is SplitMix64's increment.
const Golden64 = 0x9E3779B97F4A7C15

// Mix64 is SplitMix64's output function: a stateless hash of one counter
// value, for data that must be generated at any offset without the rest.
func Mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// Float32 returns a uniform value in [-1, 1) from the top 24 bits, exact
// in float32.
func (r *Rand) Float32() float32 {
	return float32(int64(r.Uint64()>>40)-(1<<23)) / (1 << 23)
}

// Init sets the scale of random weights. The zero value is for models that
// should compute like trained ones (activations of order one through the
// layers): a matrix is uniform with variance 1/fan_in, a layer norm's gain
// 1 ± 0.1, a bias ± 0.02, an embedding of standard deviation 0.02 (BLIP-2's
// initializer).
type Init struct {
	// Std, when positive, gives every matrix and embedding that standard
	// deviation (uniformly) and every norm gain exactly 1: logits then
	// spread widely, for tests that want a model with clear preferences.
	Std float64
}

// Values returns the generator of a synthetic tensor's values (row-major,
// a new slice per call), chosen from its GGUF name and shape: a 2-D
// ".weight" is a matrix, a 1-D ".weight" a norm's gain, a ".bias" a bias,
// anything else an embedding (see Init). The stream depends on seed and
// name only, so a tensor's values do not change when others are added.
func Values(name string, shape []int, seed uint64, init Init) func() ([]float32, error) {
	center, spread := float32(0), float32(0.02*math.Sqrt(3))
	switch {
	case strings.HasSuffix(name, ".weight") && len(shape) == 1:
		center, spread = 1, 0.1
		if init.Std > 0 {
			spread = 0
		}
	case strings.HasSuffix(name, ".bias"):
		spread = 0.02
	case init.Std > 0:
		spread = float32(init.Std * math.Sqrt(3))
	case strings.HasSuffix(name, ".weight") && len(shape) == 2:
		spread = float32(math.Sqrt(3 / float64(shape[1])))
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	s := seed ^ h.Sum64()
	return func() ([]float32, error) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		r := NewRand(s)
		out := make([]float32, n)
		for i := range out {
			out[i] = center + spread*r.Float32()
		}
		return out, nil
	}
}
