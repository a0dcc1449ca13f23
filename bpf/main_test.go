//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kmatrix/kmatrix/kernels"
)

// The guest has no binaries but the test binary itself, so the tests exec
// the test binary with childEnv set, and TestMain turns it into one of these
// children instead of running tests.
const childEnv = "KMATRIX_BPF_TEST_CHILD"

const (
	childExit  = "exit"  // exit at once
	childSpawn = "spawn" // exec one childExit grandchild, print its pid, exit
	childSleep = "sleep" // block reading stdin (state S) until it closes
	childStop  = "stop"  // SIGSTOP itself (state T), then behave like sleep
)

func TestMain(m *testing.M) {
	mode := os.Getenv(childEnv)
	if mode == "" {
		os.Exit(m.Run())
	}
	os.Exit(runChild(mode))
}

func runChild(mode string) int {
	switch mode {
	case childExit:
		return 0
	case childSpawn:
		cmd, err := childCommand(childExit)
		if err == nil {
			err = cmd.Run()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "spawn child:", err)
			return 1
		}
		fmt.Println(cmd.Process.Pid)
		return 0
	case childStop:
		if err := syscall.Kill(os.Getpid(), syscall.SIGSTOP); err != nil {
			fmt.Fprintln(os.Stderr, "stop child:", err)
			return 1
		}
		fallthrough
	case childSleep:
		// A blocking read of a pipe parks the thread in pipe_read:
		// TASK_INTERRUPTIBLE ("S"), as are the runtime's idle threads.
		_, _ = io.Copy(io.Discard, os.Stdin)
		return 0
	}
	fmt.Fprintf(os.Stderr, "%s=%q: unknown child mode (want exit, spawn, sleep or stop)\n", childEnv, mode)
	return 2
}

// childCommand is the test binary re-exec'd as a child of the given mode.
func childCommand(mode string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the test binary: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	cmd.Stderr = os.Stderr
	return cmd, nil
}

// testExecutable is what the exec events of our children must name: the
// path we exec (os.Executable) and the comm the kernel derives from it
// (its base name cut to TASK_COMM_LEN-1 bytes).
func testExecutable(t *testing.T) (path, comm string) {
	t.Helper()
	path, err := os.Executable()
	require.NoError(t, err)
	comm = filepath.Base(path)
	if len(comm) > 15 {
		comm = comm[:15]
	}
	return path, comm
}

// requireBPF skips tests that load BPF when this process cannot, saying
// why.
func requireBPF(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skip("this kernel exposes no BTF (/sys/kernel/btf/vmlinux is missing): CO-RE needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (5.4+)")
	}
	if !canLoadBPF() {
		t.Skip("loading and attaching BPF programs needs root (CAP_SYS_ADMIN, or CAP_BPF and CAP_PERFMON on 5.8+); run as root or inside a kmatrix guest")
	}
}

func canLoadBPF() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return os.Geteuid() == 0
	}
	has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	return has(unix.CAP_SYS_ADMIN) || has(unix.CAP_BPF) && has(unix.CAP_PERFMON)
}

// runningKernel is the version of the kernel the test runs on (uname -r).
func runningKernel(t *testing.T) kernels.Version {
	t.Helper()
	var u unix.Utsname
	require.NoError(t, unix.Uname(&u))
	release := unix.ByteSliceToString(u.Release[:])
	v, err := kernels.ParseVersion(release)
	require.NoError(t, err, "uname release %q", release)
	return v
}

// load is Load that fails the test with the whole verifier log.
func load(t *testing.T, opts Options) *Tracer {
	t.Helper()
	tr, err := Load(opts)
	var le *LoadError
	if errors.As(err, &le) {
		t.Fatalf("%s", le.FullError())
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tr.Close()) })
	return tr
}

// loadAttached is load followed by Attach.
func loadAttached(t *testing.T, opts Options) *Tracer {
	t.Helper()
	tr := load(t, opts)
	require.NoError(t, tr.Attach())
	return tr
}

// procState is the state letter of /proc/<path>/stat (path "123" or
// "self/task/456"): the first character after the ") " that closes comm.
func procState(t *testing.T, path string) byte {
	t.Helper()
	b, err := os.ReadFile("/proc/" + path + "/stat")
	require.NoError(t, err)
	s := string(b)
	i := strings.LastIndex(s, ") ")
	require.True(t, i > 0 && i+2 < len(s), "/proc/%s/stat: no \") \" after comm in %q", path, s)
	return s[i+2]
}
