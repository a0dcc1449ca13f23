package kernels

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// progress draws one "downloading: 12.3 / 45.6 MB" line for all the
// downloads of a session, redrawn in place, only on a terminal.
type progress struct {
	w           io.Writer
	done, total atomic.Int64
	active      atomic.Int32
	mu          sync.Mutex
	stop        chan struct{}
}

func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return &progress{w: w}
}

type tracker struct {
	p *progress
}

func (p *progress) start(total int64) tracker {
	if p == nil {
		return tracker{}
	}
	p.total.Add(max(total, 0))
	if p.active.Add(1) == 1 {
		p.mu.Lock()
		p.stop = make(chan struct{})
		stop := p.stop
		p.mu.Unlock()
		go p.draw(stop)
	}
	return tracker{p}
}

func (t tracker) Write(b []byte) (int, error) {
	if t.p != nil {
		t.p.done.Add(int64(len(b)))
	}
	return len(b), nil
}

func (t tracker) done() {
	if t.p == nil {
		return
	}
	if t.p.active.Add(-1) == 0 {
		t.p.mu.Lock()
		close(t.p.stop)
		t.p.mu.Unlock()
	}
}

func (p *progress) draw(stop chan struct{}) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			p.line()
			fmt.Fprint(p.w, "\n")
			return
		case <-tick.C:
			p.line()
		}
	}
}

func (p *progress) line() {
	fmt.Fprintf(p.w, "\rdownloading: %.1f / %.1f MB ", float64(p.done.Load())/1e6, float64(p.total.Load())/1e6)
}
