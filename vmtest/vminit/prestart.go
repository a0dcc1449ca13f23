package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/kmatrix/kmatrix/vmtest/internal/wire"
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
	cmd            *exec.Cmd
	ctl            *os.File // the init's end of the process's fd 3
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
		ps, err := startPrestarted(path, deadline, limit)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("prestart %s: %v (it starts with its command instead)", path, err))
			continue
		}
		if p.prestarted == nil {
			p.prestarted = map[string]*prestarted{}
		}
		p.prestarted[path] = ps
	}
	return warnings
}

func startPrestarted(path string, deadline time.Time, limit time.Duration) (_ *prestarted, err error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	// Non-blocking, so that the read of its ready has a deadline.
	if err := syscall.SetNonblock(fds[0], true); err != nil {
		syscall.Close(fds[0])
		syscall.Close(fds[1])
		return nil, err
	}
	ctl, child := os.NewFile(uintptr(fds[0]), "prestart"), os.NewFile(uintptr(fds[1]), "prestart-child")
	ps := &prestarted{ctl: ctl, stdout: &lateWriter{}, stderr: &lateWriter{}}
	ps.cmd = exec.Command(path)
	ps.cmd.Env = append(append([]string{}, defaultEnv...), fmt.Sprintf("%s=%d", wire.PrestartEnv, wire.PrestartFD))
	ps.cmd.Dir = "/"
	ps.cmd.ExtraFiles = []*os.File{child} // fd 3 = wire.PrestartFD
	ps.cmd.Stdout, ps.cmd.Stderr = ps.stdout, ps.stderr
	ps.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	ps.cmd.WaitDelay = time.Second
	err = ps.cmd.Start()
	// Only the process holds its end now: its exit is the init's EOF.
	child.Close()
	if err != nil {
		ctl.Close()
		return nil, fmt.Errorf("start: %w", err)
	}
	defer func() {
		if err != nil {
			syscall.Kill(-ps.cmd.Process.Pid, syscall.SIGKILL)
			ps.cmd.Wait()
			ctl.Close()
		}
	}()
	ctl.SetReadDeadline(deadline)
	line, err := bufio.NewReader(ctl).ReadString('\n')
	ctl.SetReadDeadline(time.Time{})
	switch {
	case os.IsTimeout(err):
		return nil, fmt.Errorf("not ready in time (the prestarted commands get %v together)", limit)
	case err == io.EOF:
		// It exited, or never called prestart.Await and closed fd 3.
		ps.cmd.Wait()
		return nil, fmt.Errorf("it did not wait for its run (does it call prestart.Await?): %s", ps.stderr.text())
	case err != nil:
		return nil, err
	case line != wire.PrestartReady:
		return nil, fmt.Errorf("it said %q, not ready", line)
	}
	return ps, nil
}

// release hands command i to its prestarted process, then waits for it
// as for any command.
func (p *initProc) release(i int, c wire.Command, ps *prestarted, stdout, stderr *streamer) {
	exit := &wire.Event{Kind: wire.Exit, Index: i, Code: -1}
	dir := c.Dir
	if dir == "" {
		dir = "/"
	}
	b, err := json.Marshal(wire.Release{Args: append([]string{c.Path}, c.Args...), Env: mergeEnv(defaultEnv, c.Env), Dir: dir})
	if err == nil {
		// What it wrote while it warmed up belongs to its command.
		ps.stdout.attach(stdout)
		ps.stderr.attach(stderr)
		_, err = ps.ctl.Write(append(b, '\n'))
	}
	ps.ctl.Close()
	if err != nil {
		syscall.Kill(-ps.cmd.Process.Pid, syscall.SIGKILL)
		ps.cmd.Wait()
		exit.Err = fmt.Sprintf("release the prestarted %s: %v", c.Path, err)
		p.send(exit)
		return
	}
	p.wait(ps.cmd, c.Timeout, time.Now(), exit, stdout, stderr)
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
