package matrix

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// Phases of a kernel's run shown in progress lines, in the order a kernel
// goes through them. They are the run's phases, not the stages of a
// payload's life that cells are in (outcome.Stage).
const (
	PhaseFetch  = "fetch"
	PhaseBuild  = "build"
	PhaseBoot   = "boot"
	PhaseChecks = "checks"
	PhaseDone   = "done"
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
	phase string
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

// Phase records that kernel entered phase; note is free text (e.g. "gcc-16 build root").
func (p *Progress) Phase(kernel, phase, note string) {
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
	s.phase, s.since, s.note = phase, p.now(), note
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
	l := fmt.Sprintf("%-18s %-7s %7s  cells %d", kernel, s.phase, elapsed, s.cells)
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
