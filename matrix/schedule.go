package matrix

import (
	"slices"
	"sync"

	"github.com/kmatrix/kmatrix/kernels"
)

// readyQueue hands fetched kernels to the VM workers, the slowest first.
// With n workers, the matrix ends when the last worker does; starting the
// long kernels first keeps a short one from being the last to start
// (longest-processing-time-first scheduling). A kernel's length is
// guessed from its version: newer kernels are bigger and boot slower
// under TCG (measured: 5.10 1.7 s, 6.1 1.8 s, 6.12 2.6 s, 7.2 3.0 s).
// Guessing wrong only costs the time the right order would have saved.
type readyQueue struct {
	mu     sync.Mutex
	cond   sync.Cond
	ready  []*kernels.Kernel
	closed bool
}

func newReadyQueue() *readyQueue {
	q := &readyQueue{}
	q.cond.L = &q.mu
	return q
}

// push adds a fetched kernel.
func (q *readyQueue) push(k *kernels.Kernel) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ready = append(q.ready, k)
	q.cond.Signal()
}

// close says no more kernels will come: workers drain what is left and stop.
func (q *readyQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}

// next waits for a kernel and returns the newest one ready; false once the
// queue is closed and empty.
func (q *readyQueue) next() (*kernels.Kernel, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.ready) == 0 && !q.closed {
		q.cond.Wait()
	}
	if len(q.ready) == 0 {
		return nil, false
	}
	// The first of the newest, so that equal versions keep catalog order.
	i := 0
	for j, k := range q.ready[1:] {
		if q.ready[i].Version.Less(k.Version) {
			i = j + 1
		}
	}
	k := q.ready[i]
	q.ready = slices.Delete(q.ready, i, i+1)
	return k, true
}

// drain runs fn on every kernel of the queue, n at a time, until the queue
// is closed and empty.
func (q *readyQueue) drain(n int, fn func(*kernels.Kernel)) {
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k, ok := q.next(); ok; k, ok = q.next() {
				fn(k)
			}
		}()
	}
	wg.Wait()
}
