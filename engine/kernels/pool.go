package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// job is one parallel kernel call: run(worker, task) is called once for each
// task in [0, ntask), on any worker. Jobs are package-level values whose
// pointers are stored in the job interface, so starting one allocates nothing.
type job interface {
	run(worker, task int)
}

// pool is the package-wide set of persistent workers. The goroutine that
// calls run is worker 0; workers 1..n-1 are goroutines that sleep on a
// channel between calls. mu serialises kernel calls, so the per-worker
// scratch and the shared job state need no further locking.
type pool struct {
	mu      sync.Mutex
	n       int            // threads, including the caller
	workers []*poolWorker  // n-1 goroutines, started lazily
	scratch []*scratch     // one per thread, grown on demand and kept
	j       job            // current job
	ntask   int64          // its task count
	next    atomic.Int64   // next task to hand out
	done    sync.WaitGroup // workers still inside the current job
}

type poolWorker struct {
	id    int
	start chan struct{}
	quit  chan struct{}
}

var thePool = &pool{n: defaultThreads()}

func defaultThreads() int {
	n := runtime.GOMAXPROCS(0)
	if n < 1 {
		n = 1
	}
	return n
}

// SetThreads sets how many threads the kernels use (n < 1 means the default:
// runtime.GOMAXPROCS(0)). It waits for a running kernel to finish.
func SetThreads(n int) {
	if n < 1 {
		n = defaultThreads()
	}
	p := thePool
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n = n
	for len(p.workers) > n-1 {
		w := p.workers[len(p.workers)-1]
		close(w.quit)
		p.workers = p.workers[:len(p.workers)-1]
	}
}

// Threads reports how many threads the kernels use.
func Threads() int {
	p := thePool
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// lock takes the pool for one kernel call and makes sure every thread has
// scratch space.
func (p *pool) lock() {
	p.mu.Lock()
	for len(p.scratch) < p.n {
		p.scratch = append(p.scratch, new(scratch))
	}
}

func (p *pool) unlock() { p.mu.Unlock() }

// run executes ntask tasks of j on up to p.n threads and returns when all are
// done. The caller must hold p.mu (lock). Tasks are handed out in order from
// an atomic counter, so uneven tasks and busy cores balance themselves.
func (p *pool) run(j job, ntask int) {
	if ntask <= 0 {
		return
	}
	helpers := min(p.n-1, ntask-1)
	if helpers <= 0 {
		for t := 0; t < ntask; t++ {
			j.run(0, t)
		}
		return
	}
	for len(p.workers) < helpers {
		w := &poolWorker{id: len(p.workers) + 1, start: make(chan struct{}), quit: make(chan struct{})}
		p.workers = append(p.workers, w)
		go p.worker(w)
	}
	p.j = j
	p.ntask = int64(ntask)
	p.next.Store(0)
	p.done.Add(helpers)
	for _, w := range p.workers[:helpers] {
		w.start <- struct{}{}
	}
	p.work(0)
	p.done.Wait()
	p.j = nil
}

// work takes tasks until none are left.
func (p *pool) work(id int) {
	for {
		t := p.next.Add(1) - 1
		if t >= p.ntask {
			return
		}
		p.j.run(id, int(t))
	}
}

// worker is the body of a pool goroutine (name it in goleak.IgnoreTopFunction
// if a test checks for leaks after running kernels).
func (p *pool) worker(w *poolWorker) {
	for {
		select {
		case <-w.start:
			p.work(w.id)
			p.done.Done()
		case <-w.quit:
			return
		}
	}
}

// scratch is one thread's working memory. Slices only grow.
type scratch struct {
	bpack  []float32              // packed panel of the right-hand matrix: kc x nr
	apad   []float32              // the last, short group of left-hand rows, zero padded: mr x kc
	ctile  [maxMR * maxNR]float32 // an edge tile of the result
	rows   []float32              // weight rows widened to f32 (f16, Q8_0)
	s      []float32              // attention scores: Tq x Tk
	qpanel []byte                 // packed Q8_0 weight panel (q8gemm.go)
	qpad   []byte                 // the last, short group of A-block rows, zero padded
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}
