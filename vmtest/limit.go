package vmtest

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
)

// EnvParallel bounds how many VMs one process runs at once.
const EnvParallel = "KMATRIX_VM_PARALLEL"

// Under TCG a VM with one vCPU keeps one host core busy: more VMs than
// cores only stretch every boot (and its watchdogs) without finishing the
// batch sooner, so by default a process runs as many VMs as it has cores.
var slots struct {
	once sync.Once
	ch   chan struct{}
	err  error
}

// MaxParallel is how many VMs Run boots at once in this process:
// $KMATRIX_VM_PARALLEL, else the number of CPUs. Further Runs wait.
func MaxParallel() (int, error) {
	if s := os.Getenv(EnvParallel); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("%s=%q: want a whole number of VMs, 1 or more", EnvParallel, s)
		}
		return n, nil
	}
	return runtime.NumCPU(), nil
}

func acquireSlot(ctx context.Context) (release func(), err error) {
	slots.once.Do(func() {
		n, err := MaxParallel()
		slots.ch, slots.err = make(chan struct{}, n), err
	})
	if slots.err != nil {
		return nil, slots.err
	}
	select {
	case slots.ch <- struct{}{}:
		return func() { <-slots.ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
