//go:build linux

package bpf

import (
	"fmt"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/kmatrix/kmatrix/kernels/version"

	"github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestTaskState reads tasks in four states (running, sleeping, stopped,
// zombie) through the task iterator and compares each with the letter in
// /proc/<pid>/stat. The iterator reads task_struct::__state on 5.14+ and
// ::state before: a wrong CO-RE relocation would read some other field.
func TestTaskState(t *testing.T) {
	requireBPF(t)
	tr := loadAttached(t, Options{})

	sleeper := startChild(t, childSleep)
	stopped := startChild(t, childStop)
	zombie, err := childCommand(childExit)
	require.NoError(t, err)
	require.NoError(t, zombie.Start())
	t.Cleanup(func() { _ = zombie.Wait() })

	cases := []struct {
		name string
		proc string // the /proc path of the task
		pid  int
		want byte
	}{
		{"sleeping", strconv.Itoa(sleeper.Process.Pid), sleeper.Process.Pid, 'S'},
		{"stopped", strconv.Itoa(stopped.Process.Pid), stopped.Process.Pid, 'T'},
		// Exited and not yet waited for.
		{"zombie", strconv.Itoa(zombie.Process.Pid), zombie.Process.Pid, 'Z'},
	}
	for _, c := range cases {
		waitProcState(t, c.proc, c.want)
	}

	// The thread that reads the iterator is running while the BPF program
	// looks at it, and while it reads its own /proc stat.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	tasks, err := tr.Tasks()
	require.NoError(t, err)
	selfState := procState(t, fmt.Sprintf("self/task/%d", tid))
	cases = append(cases, struct {
		name string
		proc string
		pid  int
		want byte
	}{"running", fmt.Sprintf("self/task/%d", tid), tid, 'R'})

	field := wantStateField(t)
	evidence(t, "state_field", field)
	for _, c := range cases {
		i := slices.IndexFunc(tasks, func(tk Task) bool { return tk.Pid == uint32(c.pid) })
		if !assert.GreaterOrEqual(t, i, 0, "%s: task %d not in the iterator's %d tasks", c.name, c.pid, len(tasks)) {
			continue
		}
		tk := tasks[i]
		procNow := selfState
		if c.name != "running" {
			procNow = procState(t, c.proc)
		}
		t.Logf("%s: pid %d state %#x exit_state %#x (from %s) -> %c; /proc/%s/stat says %c",
			c.name, c.pid, tk.State, tk.ExitState, tk.StateField, tk.ProcState(), c.proc, procNow)
		assert.Equal(t, string(c.want), string(procNow), "%s: /proc/%s/stat", c.name, c.proc)
		assert.Equal(t, string(procNow), string(tk.ProcState()), "%s: state read by BPF (raw %#x, exit_state %#x) vs /proc/%s/stat", c.name, tk.State, tk.ExitState, c.proc)
		assert.Equal(t, field, tk.StateField, "%s: the task_struct field the state came from", c.name)
	}
}

// wantStateField is the field the kernel's BTF has: __state (5.14+) or
// state. It must agree with the kernel version.
func wantStateField(t *testing.T) string {
	t.Helper()
	spec, err := KernelTypes()
	require.NoError(t, err)
	var ts *btf.Struct
	require.NoError(t, spec.TypeByName("task_struct", &ts))
	hasNew := slices.ContainsFunc(ts.Members, func(m btf.Member) bool { return m.Name == "__state" })
	kv := runningKernel(t)
	assert.Equal(t, kv.Has(version.TaskStateRename), hasNew, "kernel %s: task_struct::__state is in 5.14+, its BTF disagrees", kv)
	if hasNew {
		return "__state"
	}
	return "state"
}

// startChild starts a child that sleeps (or stops) until the test's end
// kills it.
func startChild(t *testing.T, mode string) *exec.Cmd {
	t.Helper()
	cmd, err := childCommand(mode)
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// waitProcState waits until /proc/<path>/stat shows the wanted state: a
// child needs a moment to stop, block or exit.
func waitProcState(t *testing.T, path string, want byte) {
	t.Helper()
	deadline := time.Now().Add(eventTimeout)
	for {
		got := procState(t, path)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/proc/%s/stat still shows %c, not %c, after %v", path, got, want, eventTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
