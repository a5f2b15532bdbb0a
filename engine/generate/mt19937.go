package generate

// mt19937 is the 32-bit Mersenne Twister of C++'s std::mt19937, which
// llama.cpp's random draw uses; the same seed gives the same sequence.
type mt19937 struct {
	state [624]uint32
	index int
}

func (m *mt19937) seed(s uint32) {
	m.state[0] = s
	for i := 1; i < len(m.state); i++ {
		prev := m.state[i-1]
		m.state[i] = 1812433253*(prev^(prev>>30)) + uint32(i)
	}
	m.index = len(m.state)
}

func (m *mt19937) next() uint32 {
	const n, mid = 624, 397
	if m.index >= n {
		for i := range n {
			y := m.state[i]&0x80000000 | m.state[(i+1)%n]&0x7fffffff
			v := m.state[(i+mid)%n] ^ y>>1
			if y&1 != 0 {
				v ^= 0x9908b0df
			}
			m.state[i] = v
		}
		m.index = 0
	}
	y := m.state[m.index]
	m.index++
	y ^= y >> 11
	y ^= y << 7 & 0x9d2c5680
	y ^= y << 15 & 0xefc60000
	y ^= y >> 18
	return y
}

// canonical is std::uniform_real_distribution<double>(0, 1) over an
// mt19937 as libstdc++ computes it (std::generate_canonical<double, 53>):
// two 32-bit draws, the second the more significant, divided by 2^64.
func (m *mt19937) canonical() float64 {
	sum := float64(m.next())
	sum += float64(m.next()) * 4294967296.0
	r := sum / 18446744073709551616.0
	if r >= 1 {
		r = 0.9999999999999999 // nextafter(1, 0)
	}
	return r
}
