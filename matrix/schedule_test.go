package matrix

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/kmatrix/kmatrix/kernels"
)

func kernelAt(name string, major, minor int) *kernels.Kernel {
	return &kernels.Kernel{Name: name, Version: kernels.Version{Major: major, Minor: minor}}
}

func TestReadyQueueNewestFirst(t *testing.T) {
	q := newReadyQueue()
	for _, k := range []*kernels.Kernel{kernelAt("bullseye", 5, 10), kernelAt("sid", 7, 2),
		kernelAt("bookworm", 6, 1), kernelAt("local-a", 6, 12), kernelAt("trixie", 6, 12)} {
		q.push(k)
	}
	q.close()
	var order []string
	q.drain(1, func(k *kernels.Kernel) { order = append(order, k.Name) })
	assert.Equal(t, []string{"sid", "local-a", "trixie", "bookworm", "bullseye"}, order,
		"newest first; equal versions in the order they came")
	_, ok := q.next()
	assert.False(t, ok, "a closed, empty queue")
}

func TestReadyQueueWaitsForLateKernels(t *testing.T) {
	q := newReadyQueue()
	var mu sync.Mutex
	var got []string
	done := make(chan struct{})
	go func() {
		q.drain(2, func(k *kernels.Kernel) {
			mu.Lock()
			got = append(got, k.Name)
			mu.Unlock()
		})
		close(done)
	}()
	q.push(kernelAt("a", 6, 1))
	q.push(kernelAt("b", 5, 10))
	select {
	case <-done:
		t.Fatal("drain returned before the queue was closed")
	case <-time.After(20 * time.Millisecond):
	}
	q.close()
	<-done
	assert.ElementsMatch(t, []string{"a", "b"}, got)
}
