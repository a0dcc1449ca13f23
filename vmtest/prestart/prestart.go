// Package prestart is the guest side of vmtest's prestarted commands
// (vmtest.Command.Prestart): a program that calls Await can be started by
// the guest init before the guest is parked and snapshotted, so that every
// run restored from the snapshot finds it started and warmed up.
//
// Under TCG, a Go test binary spends a quarter of a second starting (the
// runtime, every package's init, the first touch of each code page) and
// kmatrix's eBPF tests another 0.3–0.4 s on their first decode of the
// kernel's BTF: on the shortest-booting kernels (5.10, 6.1, about 2 s)
// that is a third of a restored run. Prestarted, both are paid once, when
// the snapshot is made.
//
// A program calls Await first thing in main (a test binary in TestMain,
// before m.Run parses the flags). Started normally, Await returns at once.
// Prestarted, it runs the warm-up, tells the init it is ready, and blocks
// until the init hands it its run: from then on os.Args, the environment
// and the working directory are the run's, as if it had been started with
// them. What the process did before (its memory, the kernel BTF it
// decoded) is the snapshot's, the same in every run; what it does after
// is the run's own.
//
// Start and Release are the other side, the starter's: the guest init's,
// and a prestarted program's own when it prestarts a child in its warm-up
// (kmatrix-guest's spare batch worker).
package prestart

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kmatrix/kmatrix/vmtest/internal/wire"
)

// Await returns at once, false, unless the process was prestarted (by
// the guest init, or by Start). Then it calls warmUp (nil: none), says it is ready, waits
// for its run, takes up the run's arguments, environment and working
// directory, and returns true. warmUp should prepare what every run
// needs and change nothing another run could see (files, the kernel's
// state): the snapshot keeps what it did for every run.
//
// An error means the run cannot be taken up (the init went away, the
// run's directory does not exist): the program should exit with it.
func Await(warmUp func()) (bool, error) {
	fdText, ok := os.LookupEnv(wire.PrestartEnv)
	if !ok {
		return false, nil
	}
	os.Unsetenv(wire.PrestartEnv)
	fd, err := strconv.Atoi(fdText)
	if err != nil || fd != wire.PrestartFD {
		return false, fmt.Errorf("prestart: %s=%q: want %d", wire.PrestartEnv, fdText, wire.PrestartFD)
	}
	ctl := os.NewFile(uintptr(fd), "prestart")
	defer ctl.Close()
	if warmUp != nil {
		warmUp()
	}
	if _, err := ctl.WriteString(wire.PrestartReady); err != nil {
		return false, fmt.Errorf("prestart: tell the init it is ready: %w", err)
	}
	line, err := bufio.NewReader(ctl).ReadBytes('\n')
	if err != nil {
		return false, fmt.Errorf("prestart: wait for the run: %w", err)
	}
	var r wire.Release
	if err := json.Unmarshal(line, &r); err != nil {
		return false, fmt.Errorf("prestart: the init's release: %w", err)
	}
	if len(r.Args) == 0 {
		return false, fmt.Errorf("prestart: the init's release has no arguments")
	}
	os.Args = r.Args
	os.Clearenv()
	for _, kv := range r.Env {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	if r.Dir != "" {
		if err := os.Chdir(r.Dir); err != nil {
			return false, fmt.Errorf("prestart: the run's working directory: %w", err)
		}
	}
	return true, nil
}

// Process is a prestarted process, started and waiting for its run.
type Process struct {
	Cmd *exec.Cmd
	ctl *os.File // the starter's end of the process's fd 3
}

// ErrNoAwait: the process exited, or closed its fd 3, without saying it
// was ready: it does not call Await.
var ErrNoAwait = errors.New("it did not wait for its run (does it call prestart.Await?)")

// Start starts cmd prestarted (its environment and fd 3 for the protocol
// added) and waits until it has warmed up and is ready, or until
// deadline. On an error the process is killed (its group, when cmd puts
// it in one of its own) and waited for.
func Start(cmd *exec.Cmd, deadline time.Time) (_ *Process, err error) {
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
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", wire.PrestartEnv, wire.PrestartFD))
	cmd.ExtraFiles = []*os.File{child} // fd 3 = wire.PrestartFD
	err = cmd.Start()
	// Only the process holds its end now: its exit is an EOF here.
	child.Close()
	if err != nil {
		ctl.Close()
		return nil, fmt.Errorf("start: %w", err)
	}
	p := &Process{Cmd: cmd, ctl: ctl}
	defer func() {
		if err != nil {
			p.Kill()
		}
	}()
	ctl.SetReadDeadline(deadline)
	line, err := bufio.NewReader(ctl).ReadString('\n')
	ctl.SetReadDeadline(time.Time{})
	switch {
	case os.IsTimeout(err):
		return nil, os.ErrDeadlineExceeded
	case err == io.EOF:
		return nil, ErrNoAwait
	case err != nil:
		return nil, err
	case line != wire.PrestartReady:
		return nil, fmt.Errorf("it said %q, not ready", line)
	}
	return p, nil
}

// Release hands the process its run: argv (args[0] its path), the whole
// environment and the working directory ("": "/"). On an error the
// process is killed and waited for.
func (p *Process) Release(args, env []string, dir string) error {
	if dir == "" {
		dir = "/"
	}
	b, err := json.Marshal(wire.Release{Args: args, Env: env, Dir: dir})
	if err == nil {
		_, err = p.ctl.Write(append(b, '\n'))
	}
	p.ctl.Close()
	if err != nil {
		p.Kill()
	}
	return err
}

// Kill ends a process that will not be released, and waits for it.
func (p *Process) Kill() {
	if a := p.Cmd.SysProcAttr; a != nil && a.Setpgid {
		syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	} else {
		p.Cmd.Process.Kill()
	}
	p.Cmd.Wait()
	p.ctl.Close()
}
