package kernels

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
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

// panicJob panics in one task, on whichever thread takes it.
type panicJob struct {
	at  int
	ran atomic.Int64
}

func (j *panicJob) run(_, task int) {
	j.ran.Add(1)
	if task == j.at {
		panic("task failed")
	}
}

// TestC5PoolPassesPanics (C5): a panic in a kernel thread (a memory fault
// reading weights truncated on disk, under debug.SetPanicOnFault) reaches
// the caller once every thread is out of the job, instead of ending the
// process from a pool goroutine; the pool works on afterwards.
func TestC5PoolPassesPanics(t *testing.T) {
	p := NewPool(4)
	defer p.Close()
	for _, at := range []int{0, 5, 63} {
		j := &panicJob{at: at}
		got := func() (r any) {
			defer func() { r = recover() }()
			p.lock()
			defer p.unlock()
			p.run(j, 64)
			return nil
		}()
		if got != "task failed" {
			t.Errorf("panic in task %d: caller recovered %v", at, got)
		}
	}
	ok := &panicJob{at: -1}
	p.lock()
	p.run(ok, 64)
	p.unlock()
	if ok.ran.Load() != 64 {
		t.Errorf("after the panics: %d of 64 tasks ran", ok.ran.Load())
	}
}
