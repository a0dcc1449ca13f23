package kmod

// Guest tests: they run inside a kernel booted by vmtest, as root, with
// devtmpfs on /dev and proc on /proc, and no shell or coreutils: only this
// test binary and the module. They run in file order; each one that needs
// the module loads it if an earlier one did not. Their names are matrix
// columns: keep them stable.

import (
	vmevidence "github.com/kmatrix/kmatrix/vmtest/evidence"

	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/vmtest/execchild"
)

func guestKo(t *testing.T) string {
	t.Helper()
	ko := os.Getenv(EnvKo)
	if ko == "" {
		t.Skipf("guest test: runs inside a kmatrix guest, where %s names the kmatrix.ko built for the running kernel (kmatrix run --kmod sets it)", EnvKo)
	}
	return ko
}

// ensureLoaded loads the module unless it is loaded already.
func ensureLoaded(t *testing.T) Device {
	t.Helper()
	ko := guestKo(t)
	if !Loaded(ModuleName) {
		require.NoError(t, Load(ko, ""))
	}
	require.NoError(t, waitFor(func() bool { _, err := os.Stat(DevicePath); return err == nil }), "%s did not appear", DevicePath)
	return Device{Path: DevicePath}
}

func waitFor(cond func() bool) error {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return nil
		}
	}
	return errors.New("timed out after 5s")
}

func evidence(t *testing.T, key string, value any) {
	t.Helper()
	vmevidence.Fact(t, key, value)
}

func TestLoad(t *testing.T) {
	ko := guestKo(t)
	require.False(t, Loaded(ModuleName), "%s is loaded before the test: the guest must start clean", ModuleName)
	info, err := ModInfo(ko)
	require.NoError(t, err)
	var uts unix.Utsname
	require.NoError(t, unix.Uname(&uts))
	release := unix.ByteSliceToString(uts.Release[:])
	evidence(t, "kernel", release)
	evidence(t, "vermagic", strconv.Quote(info["vermagic"]))

	klog, err := OpenKernelLog(true)
	require.NoError(t, err)
	defer klog.Close()
	start := time.Now()
	require.NoError(t, Load(ko, ""))
	evidence(t, "load_ms", time.Since(start).Milliseconds())
	require.True(t, Loaded(ModuleName))
	lines, err := klog.Read()
	require.NoError(t, err)
	var hello string
	for _, l := range lines {
		if strings.HasPrefix(l, "kmatrix: recording execs") {
			hello = l
		}
	}
	require.NotEmpty(t, hello, "the module did not log its start; kernel log: %q", lines)
	assert.Contains(t, hello, "built for "+release)
	evidence(t, "module_says", strconv.Quote(hello))

	// Loading it again must fail as "already loaded", not anything worse.
	err = Load(ko, "")
	var le *LoadError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, KindAlreadyLoaded, le.Kind)
	assert.Equal(t, outcome.LoadError, le.Class)
	assert.ErrorIs(t, err, unix.EEXIST)
}

// comm is the name the kernel gives a task that exec'd path: its base
// name, cut to TASK_COMM_LEN-1 bytes.
func comm(path string) string {
	c := filepath.Base(path)
	if len(c) > 15 {
		c = c[:15]
	}
	return c
}

// execChildren runs kmatrix-child n times, each exiting at once, and
// returns their pids.
func execChildren(t *testing.T, n int) []int {
	t.Helper()
	var pids []int
	for range n {
		cmd, err := execchild.Command(execchild.Exit)
		require.NoError(t, err)
		require.NoError(t, cmd.Run())
		pids = append(pids, cmd.Process.Pid)
	}
	return pids
}

func TestExecRecords(t *testing.T) {
	dev := ensureLoaded(t)
	const n = 5
	me := os.Getpid()
	require.NoError(t, dev.FilterParent(me))
	defer dev.FilterParent(0)
	require.NoError(t, dev.Reset())

	pids := execChildren(t, n)
	recs, err := dev.Records()
	require.NoError(t, err)
	require.Len(t, recs, n, "records: %+v", recs)
	exe, err := execchild.Path()
	require.NoError(t, err)
	for i, r := range recs {
		assert.Equal(t, pids[i], r.Pid, "record %d", i)
		assert.Equal(t, me, r.Parent, "record %d", i)
		assert.Equal(t, comm(exe), r.Comm, "record %d", i)
		if i > 0 {
			assert.Greater(t, r.Seq, recs[i-1].Seq, "sequence numbers must grow")
		}
	}
	evidence(t, "execs", n)
	evidence(t, "records", len(recs))
	evidence(t, "comm", strconv.Quote(recs[0].Comm))
}

func TestWritePath(t *testing.T) {
	dev := ensureLoaded(t)
	me := os.Getpid()
	defer dev.FilterParent(0)

	// reset forgets.
	require.NoError(t, dev.FilterParent(me))
	execChildren(t, 2)
	require.NoError(t, dev.Reset())
	recs, err := dev.Records()
	require.NoError(t, err)
	assert.Empty(t, recs, "records after reset")

	// A filter on another parent hides our children's execs...
	other := os.Getppid()
	if other <= 0 || other == me {
		other = 1
	}
	require.NoError(t, dev.FilterParent(other))
	execChildren(t, 3)
	recs, err = dev.Records()
	require.NoError(t, err)
	for _, r := range recs {
		assert.Equal(t, other, r.Parent, "the parent filter let through %+v", r)
	}
	// ...and one on us shows them again.
	require.NoError(t, dev.FilterParent(me))
	pids := execChildren(t, 1)
	recs, err = dev.Records()
	require.NoError(t, err)
	require.NotEmpty(t, recs)
	assert.Equal(t, pids[0], recs[len(recs)-1].Pid)
	assert.Equal(t, me, recs[len(recs)-1].Parent)

	// Bad commands are refused with EINVAL, unknown pids with ESRCH.
	for _, cmd := range []string{"bogus", "state 0", "parent -1", "state x", strings.Repeat("r", 100)} {
		err := dev.Command(cmd)
		assert.ErrorIs(t, err, unix.EINVAL, "command %q", cmd)
	}
	pidMax, err := os.ReadFile("/proc/sys/kernel/pid_max")
	require.NoError(t, err)
	_, err = dev.TaskState(mustAtoi(t, strings.TrimSpace(string(pidMax))))
	assert.ErrorIs(t, err, unix.ESRCH)

	// The device is a stream: seeking fails (no_llseek before 6.12, a
	// NULL llseek after).
	f, err := os.Open(DevicePath)
	require.NoError(t, err)
	defer f.Close()
	_, err = f.Seek(0, 0)
	assert.ErrorIs(t, err, unix.ESPIPE)
}

func mustAtoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}

// procState is the state letter of /proc/<pid>/stat.
func procState(pid int) (byte, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return 0, fmt.Errorf("/proc/%d/stat: %q has no state after the comm", pid, b)
	}
	return b[i+2], nil
}

// agreedState asks the module and /proc for pid's state until both say
// want (any letter when want is 0) with /proc stable around the query, and
// returns the module's answer. A state change (a signal arriving) is not
// instant, so a single sample could catch it half done.
func agreedState(t *testing.T, dev Device, pid int, want byte) TaskState {
	t.Helper()
	var st TaskState
	var before, after byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var err error
		before, err = procState(pid)
		require.NoError(t, err)
		st, err = dev.TaskState(pid)
		require.NoError(t, err)
		after, err = procState(pid)
		require.NoError(t, err)
		if before == after && st.Char == before && (want == 0 || before == want) {
			return st
		}
	}
	t.Fatalf("pid %d: want state %q; last the module said %q (raw %#x), /proc/%d/stat %q then %q", pid, want, st.Char, st.Raw, pid, before, after)
	return st
}

// Task state bits of task_struct's state word; stable since 2.6.
const (
	taskInterruptible = 0x1
	taskStopped       = 0x4
	taskDead          = 0x80
)

func TestTaskState(t *testing.T) {
	dev := ensureLoaded(t)
	cmd, err := execchild.Command(execchild.Sleep)
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid
	defer cmd.Process.Kill()

	// Sleeping: S, TASK_INTERRUPTIBLE.
	st := agreedState(t, dev, pid, 'S')
	assert.NotZero(t, st.Raw&taskInterruptible, "raw state %#x of a sleeping task lacks TASK_INTERRUPTIBLE", st.Raw)
	evidence(t, "sleeping_raw", fmt.Sprintf("%#x", st.Raw))

	// Stopped: T, __TASK_STOPPED.
	require.NoError(t, cmd.Process.Signal(syscall.SIGSTOP))
	st = agreedState(t, dev, pid, 'T')
	assert.NotZero(t, st.Raw&taskStopped, "raw state %#x of a stopped task lacks __TASK_STOPPED", st.Raw)
	evidence(t, "stopped_raw", fmt.Sprintf("%#x", st.Raw))

	// Dead and not reaped: Z, TASK_DEAD.
	require.NoError(t, cmd.Process.Kill())
	st = agreedState(t, dev, pid, 'Z')
	assert.NotZero(t, st.Raw&taskDead, "raw state %#x of a zombie lacks TASK_DEAD", st.Raw)
	evidence(t, "zombie_raw", fmt.Sprintf("%#x", st.Raw))
	cmd.Wait()

	// This process, whatever it is doing.
	st = agreedState(t, dev, os.Getpid(), 0)
	evidence(t, "self_state", string(st.Char))
}

func TestUnload(t *testing.T) {
	ensureLoaded(t)
	start := time.Now()
	require.NoError(t, Unload(ModuleName))
	evidence(t, "unload_ms", time.Since(start).Milliseconds())
	assert.False(t, Loaded(ModuleName))
	assert.NoError(t, waitFor(func() bool { _, err := os.Stat(DevicePath); return os.IsNotExist(err) }), "%s outlived the module", DevicePath)
	err := Unload(ModuleName)
	assert.ErrorIs(t, err, unix.ENOENT)
	assert.Contains(t, err.Error(), "not loaded")
}

func TestTaint(t *testing.T) {
	guestKo(t)
	taint, err := Taint()
	require.NoError(t, err)
	if taint&TaintOutOfTree == 0 {
		// The module never loaded in this boot (this test ran alone).
		ensureLoaded(t)
		taint, err = Taint()
		require.NoError(t, err)
	}
	evidence(t, "taint", taint)
	assert.Equal(t, uint64(TaintOutOfTree|TaintUnsigned), taint,
		"taint must be only out-of-tree (4096) and unsigned (8192): got %d", taint)
}

func TestKernelLog(t *testing.T) {
	guestKo(t)
	lines, err := ReadKernelLog()
	require.NoError(t, err)
	splats := Splats(lines)
	assert.Empty(t, splats, "the kernel reported problems")
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "kmatrix:") {
			n++
		}
	}
	evidence(t, "kmatrix_log_lines", n)
}

// TestVermagicMismatch loads a module built for another kernel: it must
// fail with ENOEXEC, classified as a vermagic load-error that quotes the
// kernel's line. It runs last: the refused load may itself taint the
// kernel (6.12 sets F, TAINT_FORCED_MODULE, when the module lacks the
// symbol versions a CONFIG_MODVERSIONS kernel expects).
func TestVermagicMismatch(t *testing.T) {
	guestKo(t)
	foreign := os.Getenv(EnvKoForeign)
	if foreign == "" {
		t.Skipf("needs %s, the guest path of a kmatrix.ko built for another kernel", EnvKoForeign)
	}
	wasLoaded := Loaded(ModuleName)
	err := Load(foreign, "")
	var le *LoadError
	require.ErrorAs(t, err, &le, "loading a module built for another kernel succeeded")
	assert.Equal(t, KindVermagic, le.Kind)
	assert.Equal(t, outcome.LoadError, le.Class)
	assert.ErrorIs(t, err, unix.ENOEXEC)
	assert.Equal(t, wasLoaded, Loaded(ModuleName), "the foreign module's load changed what is loaded")
	assert.NotEmpty(t, le.Dmesg, "the kernel logged nothing about the refused module")
	evidence(t, "foreign_reason", strconv.Quote(le.Reason))
	if taint, err := Taint(); err == nil {
		evidence(t, "taint_after_foreign", taint)
	}
}
