package bpf

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
)

// Task is one task's state as the task_states iterator read it from the
// kernel's task_struct.
type Task struct {
	Pid, Tgid uint32
	// State is the raw state bits (TASK_INTERRUPTIBLE = 1, ...).
	State uint32
	// ExitState is task_struct::exit_state (EXIT_ZOMBIE = 0x20, EXIT_DEAD = 0x10).
	ExitState int32
	// StateField is the field State came from: "__state" (5.14+) or "state".
	StateField string
}

// Tasks runs the task iterator once and returns every task (every thread)
// of the kernel, as the BPF program saw it. The tracer must be attached.
func (t *Tracer) Tasks() ([]Task, error) {
	if t.iterLink == nil {
		return nil, fmt.Errorf("bpf: Tasks needs an attached tracer: call Attach first")
	}
	rc, err := t.iterLink.Open()
	if err != nil {
		return nil, fmt.Errorf("bpf: opening the task iterator: %w", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("bpf: reading the task iterator: %w", err)
	}
	return decodeTasks(b)
}

func decodeTasks(b []byte) ([]Task, error) {
	var raw tracerTaskRecord
	n := binary.Size(raw)
	if len(b)%n != 0 {
		return nil, fmt.Errorf("bpf: task iterator wrote %d bytes, not a multiple of its %d-byte record: the object and its Go bindings disagree (run make generate)", len(b), n)
	}
	tasks := make([]Task, 0, len(b)/n)
	for off := 0; off < len(b); off += n {
		if _, err := binary.Decode(b[off:off+n], binary.NativeEndian, &raw); err != nil {
			return nil, fmt.Errorf("bpf: decoding a task record: %w", err)
		}
		tasks = append(tasks, Task{
			Pid: raw.Pid, Tgid: raw.Tgid, State: raw.State, ExitState: raw.ExitState,
			StateField: stateField(raw.Flags),
		})
	}
	return tasks, nil
}

// Task state bits (include/linux/sched.h). Those in taskReport have kept
// their values since 4.14.
const (
	taskUninterruptible = 0x0002
	taskReport          = 0x007f // TASK_REPORT: the bits /proc shows
	taskNoload          = 0x0400
	taskIdle            = taskUninterruptible | taskNoload
	// Shown as "D": TASK_RTLOCK_WAIT (5.15+, PREEMPT_RT sleeping spinlocks)
	// and, since a later fix backported to the stable trees, TASK_FROZEN
	// (6.1+). Older kernels never set these bits, so testing them is right
	// everywhere; only a frozen task on a kernel without the fix reads
	// differently (its underlying state instead of "D").
	taskRTLockWait = 0x1000
	taskFrozen     = 0x8000
)

// procStates is fs/proc/array.c's task_state_array, by state index.
const procStates = "RSDTtXZPI"

// ProcState is the letter /proc/<pid>/stat shows for this task, computed
// from the raw bits as the kernel's task_state_index() does.
func (t Task) ProcState() byte { return ProcStateLetter(t.State, t.ExitState) }

// ProcStateLetter maps raw task state and exit state bits to the letter
// /proc/<pid>/stat shows (R, S, D, T, t, X, Z, P or I), following
// __task_state_index() in include/linux/sched.h.
func ProcStateLetter(state uint32, exitState int32) byte {
	if state&(taskRTLockWait|taskFrozen) != 0 {
		return 'D'
	}
	if state&taskIdle == taskIdle {
		return 'I'
	}
	return procStates[bits.Len32((state|uint32(exitState))&taskReport)]
}
