package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/kmatrix/kmatrix/vmtest/internal/wire"
	"github.com/kmatrix/kmatrix/vmtest/prestart"
)

// Prestarted commands (wire.Spec.Prestart, package vmtest/prestart): the
// init starts them before it parks, so the snapshot holds them started,
// and releases each into its command of the restored run.

// defaultPrestartTimeout bounds the prestarted processes' start and
// warm-up, all together: a Go test binary's start and a decode of the
// kernel's BTF take about a second under TCG, a process that is not ready
// long after that is not worth keeping in every snapshot, and the host
// gives the whole init phase a minute (vmtest's initPhaseTimeout).
const defaultPrestartTimeout = 30 * time.Second

// prestarted is a process started before the park, waiting for its run.
type prestarted struct {
	proc           *prestart.Process
	stdout, stderr *lateWriter
}

// prestart starts each path and waits for it to be ready; it returns what
// went wrong as warnings: a path that does not become ready runs as an
// ordinary command.
func (p *initProc) prestart(paths []string) (warnings []string) {
	limit := p.prestartTimeout
	if limit == 0 {
		limit = defaultPrestartTimeout
	}
	deadline := time.Now().Add(limit)
	for _, path := range paths {
		ps := &prestarted{stdout: &lateWriter{}, stderr: &lateWriter{}}
		cmd := exec.Command(path)
		cmd.Env = append([]string{}, defaultEnv...)
		cmd.Dir = "/"
		cmd.Stdout, cmd.Stderr = ps.stdout, ps.stderr
		// Its own process group, as every command's: a timeout kills
		// what it started too.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.WaitDelay = time.Second
		proc, err := prestart.Start(cmd, deadline)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			err = fmt.Errorf("not ready in time (the prestarted commands get %v together)", limit)
		case errors.Is(err, prestart.ErrNoAwait):
			err = fmt.Errorf("%w: %s", err, ps.stderr.text())
		}
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("prestart %s: %v (it starts with its command instead)", path, err))
			continue
		}
		ps.proc = proc
		if p.prestarted == nil {
			p.prestarted = map[string]*prestarted{}
		}
		p.prestarted[path] = ps
	}
	return warnings
}

// release hands command i to its prestarted process, then waits for it
// as for any command.
func (p *initProc) release(i int, c wire.Command, ps *prestarted, stdout, stderr *streamer) {
	// What it wrote while it warmed up belongs to its command.
	ps.stdout.attach(stdout)
	ps.stderr.attach(stderr)
	if err := ps.proc.Release(append([]string{c.Path}, c.Args...), mergeEnv(defaultEnv, c.Env), c.Dir); err != nil {
		p.send(&wire.Event{Kind: wire.Exit, Index: i, Code: -1, Err: fmt.Sprintf("release the prestarted %s: %v", c.Path, err)})
		return
	}
	p.wait(ps.proc.Cmd, c.Timeout, time.Now(), &wire.Event{Kind: wire.Exit, Index: i, Code: -1}, stdout, stderr)
}

// lateWriter holds a prestarted process's output until its command's
// streamer is attached: a process started before the park has no command
// index yet.
type lateWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// lateWriterMax bounds what is held before the release.
const lateWriterMax = 64 << 10

func (l *lateWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w != nil {
		return l.w.Write(b)
	}
	l.buf = append(l.buf, b[:min(len(b), lateWriterMax-len(l.buf))]...)
	return len(b), nil
}

func (l *lateWriter) attach(w io.Writer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w = w
	if len(l.buf) > 0 {
		w.Write(l.buf)
		l.buf = nil
	}
}

func (l *lateWriter) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}
