package kernels

import (
	"math/rand/v2"
	"sync"
	"testing"
)

// tp is the pool the tests run kernels on; setThreads replaces it.
var tp = NewPool(0)

func threads() int { return tp.Threads() }

func setThreads(n int) {
	tp.Close()
	tp = NewPool(n)
}

// TestPoolsApart: two pools of different thread counts run side by side,
// each with its own threads and scratch, and give the one-thread result.
func TestPoolsApart(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	w := makeMatrix(r, F32, 300, 96)
	x := randF32(r, 50*96, 1)
	want := make([]float32, 50*300)
	one := NewPool(1)
	defer one.Close()
	one.MatMulT(want, x, 50, w, nil)
	if NewPool(0).Threads() != DefaultThreads() || one.Threads() != 1 {
		t.Fatalf("threads: %d (default %d), %d", NewPool(0).Threads(), DefaultThreads(), one.Threads())
	}
	var wg sync.WaitGroup
	for _, n := range []int{2, 3} {
		p := NewPool(n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer p.Close()
			got := make([]float32, 50*300)
			for range 20 {
				p.MatMulT(got, x, 50, w, nil)
				for i := range got {
					if got[i] != want[i] {
						t.Errorf("pool of %d threads: result differs at %d", n, i)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	// A closed pool runs again.
	p := NewPool(2)
	p.Close()
	got := make([]float32, 50*300)
	p.MatMulT(got, x, 50, w, nil)
	p.Close()
	if got[7] != want[7] {
		t.Error("a closed pool computed something else")
	}
}
