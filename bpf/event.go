package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// Flags the C program sets (c/task_state.h, c/tracer.c).
const (
	flagStateFromNewField = 1 << 0 // STATE_FROM___STATE
	flagViaBPFLoop        = 1 << 1 // EVENT_VIA_BPF_LOOP
)

// ErrClosed is returned by Read after Close.
var ErrClosed = ringbuf.ErrClosed

// Event is one successful exec.
type Event struct {
	// Pid and Tgid identify the task that exec'd (after exec, Pid == Tgid).
	Pid, Tgid uint32
	// ParentTgid is task->real_parent->tgid.
	ParentTgid uint32
	// State is the raw task state at exec time (TASK_RUNNING, 0).
	State uint32
	// StateField is the task_struct field the state was read from:
	// "__state" (5.14+) or "state".
	StateField string
	// Depth is how many generations below Options.FilterTgid the task is
	// (1: a child); 0 when the tracer does not filter.
	Depth uint32
	// ViaBPFLoop says the ancestor walk ran through bpf_loop, i.e. the event
	// came from VariantBPFLoop's program.
	ViaBPFLoop bool
	// Comm is the task's command name after exec (at most 15 bytes).
	Comm string
	// Filename is the path that was exec'd, as the caller passed it.
	Filename string
}

// Read blocks until the next event, the deadline set by SetDeadline
// (os.ErrDeadlineExceeded) or Close (ErrClosed). After a deadline it still
// returns the events that are already waiting before the deadline error.
func (t *Tracer) Read() (Event, error) {
	if t.reader == nil {
		return Event{}, fmt.Errorf("bpf: reading events: %w", ErrClosed)
	}
	rec, err := t.reader.Read()
	if err != nil {
		if errors.Is(err, ringbuf.ErrClosed) {
			return Event{}, fmt.Errorf("bpf: reading events: %w", ErrClosed)
		}
		return Event{}, fmt.Errorf("bpf: reading events: %w", err)
	}
	return decodeEvent(rec.RawSample)
}

// SetDeadline makes Read return os.ErrDeadlineExceeded after d; the zero
// time means no deadline.
func (t *Tracer) SetDeadline(d time.Time) {
	if t.reader != nil {
		t.reader.SetDeadline(d)
	}
}

func decodeEvent(b []byte) (Event, error) {
	var raw tracerEvent
	if n := binary.Size(raw); len(b) < n {
		return Event{}, fmt.Errorf("bpf: event record of %d bytes, want %d: the object and its Go bindings disagree (run make generate)", len(b), n)
	}
	if _, err := binary.Decode(b, binary.NativeEndian, &raw); err != nil {
		return Event{}, fmt.Errorf("bpf: decoding an event: %w", err)
	}
	return Event{
		Pid:        raw.Pid,
		Tgid:       raw.Tgid,
		ParentTgid: raw.Ppid,
		State:      raw.State,
		StateField: stateField(raw.Flags),
		Depth:      raw.Depth,
		ViaBPFLoop: raw.Flags&flagViaBPFLoop != 0,
		Comm:       cString(raw.Comm[:]),
		Filename:   cString(raw.Filename[:]),
	}, nil
}

func stateField(flags uint32) string {
	if flags&flagStateFromNewField != 0 {
		return "__state"
	}
	return "state"
}

func cString(b []int8) string {
	u := make([]byte, len(b))
	for i, c := range b {
		u[i] = byte(c)
	}
	return unix.ByteSliceToString(u)
}
