package matrix

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// Stage names shown in progress lines, in the order a kernel goes through them.
const (
	StageFetch  = "fetch"
	StageBuild  = "build"
	StageBoot   = "boot"
	StageChecks = "checks"
	StageDone   = "done"
)

// Progress shows what every kernel is doing. On a terminal it keeps one live
// line per kernel and redraws them in place; elsewhere (CI logs) it prints a
// plain timestamped line for every change, so logs stay greppable.
type Progress struct {
	mu      sync.Mutex
	w       io.Writer
	live    bool
	start   time.Time
	now     func() time.Time
	order   []string
	states  map[string]*kernelState
	drawn   int // lines drawn by the last live redraw
	stopped bool
}

type kernelState struct {
	stage string
	since time.Time
	cells int
	note  string
}

// NewProgress writes to w; live redraws happen only when w is a terminal.
// A nil w discards everything.
func NewProgress(w io.Writer) *Progress {
	if w == nil {
		w = io.Discard
	}
	live := false
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) && os.Getenv("TERM") != "dumb" {
		live = true
	}
	return &Progress{w: w, live: live, start: time.Now(), now: time.Now, states: map[string]*kernelState{}}
}

// Stage records that kernel entered stage; note is free text (e.g. "gcc-16 build root").
func (p *Progress) Stage(kernel, stage, note string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.states[kernel]
	if !ok {
		s = &kernelState{}
		p.states[kernel] = s
		p.order = append(p.order, kernel)
	}
	s.stage, s.since, s.note = stage, p.now(), note
	p.emit(kernel, s)
}

// Cells adds n finished cells to kernel's count.
func (p *Progress) Cells(kernel string, n int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.states[kernel]; ok {
		s.cells += n
		if p.live {
			p.redraw()
		}
	}
}

// SetCells sets kernel's count of finished cells.
func (p *Progress) SetCells(kernel string, n int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.states[kernel]; ok {
		s.cells = n
		if p.live {
			p.redraw()
		}
	}
}

// checkCounter watches a guest test binary's live output (go test -v): its
// first output moves the kernel to the checks stage, and each top-level
// result line ("--- PASS: TestLoad (0.05s)") is a finished cell, so the
// live line counts cells while the guest runs.
type checkCounter struct {
	p       *Progress
	kernel  string
	payload string
	started bool
	partial []byte
}

func (c *checkCounter) Write(b []byte) (int, error) {
	if !c.started {
		c.started = true
		c.p.Stage(c.kernel, StageChecks, c.payload)
	}
	c.partial = append(c.partial, b...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		line := c.partial[:i]
		if bytes.HasPrefix(line, []byte("--- PASS: ")) || bytes.HasPrefix(line, []byte("--- FAIL: ")) || bytes.HasPrefix(line, []byte("--- SKIP: ")) {
			c.p.Cells(c.kernel, 1)
		}
		c.partial = c.partial[i+1:]
	}
	return len(b), nil
}

// Stop ends live redrawing (the last frame stays on screen).
func (p *Progress) Stop() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
}

func (p *Progress) emit(kernel string, s *kernelState) {
	if p.stopped {
		return
	}
	if p.live {
		p.redraw()
		return
	}
	fmt.Fprintf(p.w, "%s %s\n", p.now().UTC().Format("15:04:05"), p.line(kernel, s))
}

func (p *Progress) line(kernel string, s *kernelState) string {
	elapsed := p.now().Sub(p.start).Round(100 * time.Millisecond)
	l := fmt.Sprintf("%-18s %-7s %7s  cells %d", kernel, s.stage, elapsed, s.cells)
	if s.note != "" {
		l += "  " + s.note
	}
	return l
}

// redraw moves the cursor up over the previous frame and rewrites every line.
func (p *Progress) redraw() {
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	names := append([]string(nil), p.order...)
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, "\r\x1b[2K%s\n", p.line(k, p.states[k]))
	}
	p.drawn = len(names)
	io.WriteString(p.w, b.String())
}
