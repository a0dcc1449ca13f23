//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kmatrix/kmatrix/kernels/version"
	"github.com/kmatrix/kmatrix/vmtest/execchild"
	"github.com/kmatrix/kmatrix/vmtest/prestart"
)

// TestMain lets kmatrix prestart this binary in its guest snapshots
// (package vmtest/prestart): a restored run then skips the Go runtime's
// and the packages' start-up (a quarter of a second under TCG) and the
// first load's one-time costs (warmUp).
func TestMain(m *testing.M) {
	if _, err := prestart.Await(warmUp); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// warmUp loads the tracer once and closes it, which a restored run's
// first load then finds done: the process-wide decode of the kernel's BTF
// with the types the CO-RE relocations need (kernelTypes), cilium/ebpf's
// memoized feature probes, and the kernel's own parse of its BTF, which
// older kernels (5.10) do on the first program load rather than at boot
// (newer ones need it at boot to register their kfuncs). Measured on 5.10 under TCG: the first load 390 ms, the next 17 ms.
// Every run of a snapshot starts from the same warmed-up state, and the
// programs are gone before the snapshot is saved. A failure is ignored
// here and reported by the test that meets it.
func warmUp() {
	if tr, err := Load(Options{}); err == nil {
		tr.Close()
	}
}

// childCommand is kmatrix-child (package execchild) in the given mode:
// the processes these tests exec, trace and look at.
func childCommand(mode string) (*exec.Cmd, error) { return execchild.Command(mode) }

// Child modes; see package execchild.
const (
	childExit  = execchild.Exit
	childSpawn = execchild.Spawn
	childSleep = execchild.Sleep
	childStop  = execchild.Stop
)

// childExecutable is what the exec events of our children must name: the
// path we exec and the comm the kernel derives from it (its base name cut
// to TASK_COMM_LEN-1 bytes).
func childExecutable(t *testing.T) (path, comm string) {
	t.Helper()
	path, err := execchild.Path()
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
func runningKernel(t *testing.T) version.Version {
	t.Helper()
	v, err := version.Running()
	require.NoError(t, err)
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
