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
package prestart

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/kmatrix/kmatrix/vmtest/internal/wire"
)

// Await returns at once, false, unless the process was prestarted by the
// guest init. Then it calls warmUp (nil: none), says it is ready, waits
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
