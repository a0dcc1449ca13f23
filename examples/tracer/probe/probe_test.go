package probe

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// load skips outside a kmatrix guest: these tests load BPF into the
// kernel they run on, and on a developer's host that is not a kernel of
// the matrix (kmatrix sets KMATRIX_GUEST=1 in its guests).
func load(t *testing.T) *Objects {
	t.Helper()
	if os.Getenv("KMATRIX_GUEST") != "1" {
		t.Skip("runs in the kernels of the matrix: kmatrix run, or go test ./matrix/")
	}
	require.NoError(t, rlimit.RemoveMemlock())
	objs, err := Load()
	require.NoError(t, err)
	t.Cleanup(func() { objs.Close() })
	return objs
}

func TestLoad(t *testing.T) {
	objs := load(t)
	info, err := objs.CountExecve.Info()
	require.NoError(t, err)
	assert.Equal(t, ebpf.TracePoint, info.Type)
}

// TestExecCounted attaches the tracepoint, execs a child, and expects the
// counter to have moved and the last tgid to be the child's.
func TestExecCounted(t *testing.T) {
	objs := load(t)
	tp, err := link.Tracepoint("syscalls", "sys_enter_execve", objs.CountExecve, nil)
	require.NoError(t, err)
	defer tp.Close()

	before, err := objs.Stat(StatExecs)
	require.NoError(t, err)
	self, err := os.Executable()
	require.NoError(t, err)
	child := exec.Command(self, "-test.run=^$")
	require.NoError(t, child.Run())

	after, err := objs.Stat(StatExecs)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, after-before, uint64(1), "the child's execve was counted")
	last, err := objs.Stat(StatLastTGID)
	require.NoError(t, err)
	assert.Equal(t, uint64(child.Process.Pid), last, "the CO-RE read of task_struct.tgid names the child")
}

// TestTCXCountsPackets needs tcx, which Linux 6.6 introduced: on older
// kernels it skips, saying so, rather than failing.
func TestTCXCountsPackets(t *testing.T) {
	objs := load(t)
	lo, err := net.InterfaceByName("lo")
	require.NoError(t, err)
	l, err := link.AttachTCX(link.TCXOptions{Interface: lo.Index, Program: objs.CountIngress, Attach: ebpf.AttachTCXIngress})
	if errors.Is(err, ebpf.ErrNotSupported) {
		var u unix.Utsname
		_ = unix.Uname(&u)
		t.Skipf("tcx needs Linux 6.6; this kernel is %s", unix.ByteSliceToString(u.Release[:]))
	}
	require.NoError(t, err)
	defer l.Close()

	srv, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer srv.Close()
	c, err := net.Dial("udp", srv.LocalAddr().String())
	require.NoError(t, err)
	defer c.Close()
	for range 3 {
		_, err = c.Write([]byte("ping"))
		require.NoError(t, err)
	}
	n, err := objs.Stat(StatPackets)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, uint64(3))
}
