package kernels

import (
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// job is one parallel kernel call: run(worker, task) is called once for each
// task in [0, ntask), on any worker. Jobs are fields of the Pool whose
// pointers are stored in the job interface, so starting one allocates nothing.
type job interface {
	run(worker, task int)
}

// Pool is a set of threads the kernels run on. A model owns one, made
// with the thread count it was given (vision.Load and the OPT context each
// take Threads), so that one model's setting never changes another's. The
// goroutine that calls a kernel is thread 0; threads 1..n-1 are goroutines,
// started on first use, that sleep on a channel between calls. A Pool runs
// one kernel call at a time (calls from several goroutines take turns, so
// the per-thread scratch and the call state need no further locking); two
// Pools run side by side. Close stops its goroutines.
type Pool struct {
	mu      sync.Mutex
	n       int            // threads, including the caller
	im      impl           // the implementation its kernels run (machine)
	workers []*poolWorker  // n-1 goroutines, started lazily
	scratch []*scratch     // one per thread, grown on demand and kept
	j       job            // current job
	ntask   int64          // its task count
	next    atomic.Int64   // next task to hand out
	done    sync.WaitGroup // workers still inside the current job
	// panicked is the first panic of a thread in the current job (a memory
	// fault in a weight mapping truncated on disk, say), raised again in
	// the caller once every thread is out of the job.
	panicked atomic.Pointer[any]

	// The state of the current call, kept between calls so that starting
	// one allocates nothing.
	mm    matmulJob
	gm    gemmJob
	at    attnJob
	el    elemJob
	ap    apackJob
	q8q   q8QuantJob
	apack apacked // MatMulT's x packed for the SIMD GEMM
	q8a   []byte  // MatMulT's x quantized for the Q8_0 GEMM
	q8x   struct {
		q     []int8
		d, dt []float32 // dt: d interleaved (dotQ8Rows)
	} // MatMulT's x quantized for the Q8_0 GEMV
}

type poolWorker struct {
	id    int
	start chan struct{}
	quit  chan struct{}
}

// DefaultThreads is the thread count of NewPool(0): UsableThreads.
func DefaultThreads() int { return UsableThreads() }

// UsableThreads is the most threads that can run at once: the CPUs this
// process may run on (its affinity mask) and GOMAXPROCS (which follows
// container limits). More threads only take turns, and a kernel call waits
// for its slowest: 16 threads on 2 cores made llama.cpp 150 times slower,
// 100000 spawned thousands of threads.
func UsableThreads() int {
	return max(1, min(runtime.NumCPU(), runtime.GOMAXPROCS(0)))
}

// CapThreads is how many threads a model asked for n runs on: n < 1 is
// DefaultThreads, and no more than UsableThreads (NewPool itself does not
// cap, so that tests can run more threads than the machine has cores).
func CapThreads(n int) int {
	if n < 1 {
		return DefaultThreads()
	}
	return min(n, UsableThreads())
}

// NewPool makes a pool of threads threads (< 1: DefaultThreads()).
func NewPool(threads int) *Pool {
	if threads < 1 {
		threads = DefaultThreads()
	}
	return &Pool{n: threads, im: machine}
}

// newPoolImpl makes a pool that runs im instead of the machine's
// implementation (the tests compare them).
func newPoolImpl(threads int, im impl) *Pool {
	p := NewPool(threads)
	p.im = im
	return p
}

// Threads is the number of threads the pool runs kernels on.
func (p *Pool) Threads() int { return p.n }

// Close stops the pool's goroutines, after a running kernel call; a later
// call starts them again.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range p.workers {
		close(w.quit)
	}
	p.workers = nil
}

// lock takes the pool for one kernel call and makes sure every thread has
// scratch space.
func (p *Pool) lock() {
	p.mu.Lock()
	for len(p.scratch) < p.n {
		p.scratch = append(p.scratch, new(scratch))
	}
}

func (p *Pool) unlock() { p.mu.Unlock() }

// run executes ntask tasks of j on up to p.n threads and returns when all are
// done. The caller must hold p.mu (lock). Tasks are handed out in order from
// an atomic counter, so uneven tasks and busy cores balance themselves.
func (p *Pool) run(j job, ntask int) {
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
	p.safeWork(0)
	p.done.Wait()
	p.j = nil
	if v := p.panicked.Swap(nil); v != nil {
		panic(*v)
	}
}

// safeWork is work that keeps a panic for run to raise in the caller, so
// that no thread is left inside the job (on the caller's buffers) while the
// caller unwinds.
func (p *Pool) safeWork(id int) {
	defer func() {
		if r := recover(); r != nil {
			p.keepPanic(r)
		}
	}()
	p.work(id)
}

// keepPanic keeps the first panic of the job (allocating only then: a
// kernel call allocates nothing) and stops the other threads early.
func (p *Pool) keepPanic(r any) {
	v := r
	p.panicked.CompareAndSwap(nil, &v)
	p.next.Store(p.ntask)
}

// work takes tasks until none are left.
func (p *Pool) work(id int) {
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
func (p *Pool) worker(w *poolWorker) {
	// A fault reading mapped weights panics, to be passed to the caller,
	// instead of ending the process.
	debug.SetPanicOnFault(true)
	for {
		select {
		case <-w.start:
			p.safeWork(w.id)
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
