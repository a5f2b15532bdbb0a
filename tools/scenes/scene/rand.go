package scene

// rng is splitmix64: tiny, and its stream is fixed by its definition, so
// scenes never change with a library's generator.
type rng struct{ s uint64 }

// newRand starts the stream of one scene; seed and index are mixed so that
// neighbouring scenes are unrelated.
func newRand(seed, index uint64) *rng {
	r := &rng{s: seed ^ 0x9e3779b97f4a7c15}
	r.s = r.next() ^ index*0xbf58476d1ce4e5b9
	r.next()
	return r
}

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a number in [0, n); the bias of the modulo is below 2^-50
// for the small n used here.
func (r *rng) intn(n int) int {
	if n <= 0 {
		panic("scene: intn of a non-positive bound")
	}
	return int(r.next() % uint64(n))
}

// perm returns a random permutation of [0, n).
func (r *rng) perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := r.intn(i + 1)
		p[i], p[j] = p[j], p[i]
	}
	return p
}
