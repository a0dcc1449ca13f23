package bpf

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestDecodeEventTooShort(t *testing.T) {
	_, err := decodeEvent(make([]byte, 10))
	require.Error(t, err)
	assert.EqualError(t, err, "bpf: event record of 10 bytes, want 296: the object and its Go bindings disagree (run make generate)")
}

func TestDecodeTasksBadLength(t *testing.T) {
	_, err := decodeTasks(make([]byte, 30))
	require.Error(t, err)
	assert.EqualError(t, err, "bpf: task iterator wrote 30 bytes, not a multiple of its 20-byte record: the object and its Go bindings disagree (run make generate)")
}

func TestDecodeEvent(t *testing.T) {
	raw := make([]byte, 296)
	put := func(off int, v uint32) {
		raw[off], raw[off+1], raw[off+2], raw[off+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	put(0, 42)
	put(4, 42)
	put(8, 7)
	put(16, 2)
	put(20, flagStateFromNewField|flagViaBPFLoop)
	copy(raw[24:], "bpf.test\x00junk")
	copy(raw[40:], "/kmatrix/bpf.test")
	e, err := decodeEvent(raw)
	require.NoError(t, err)
	assert.Equal(t, Event{Pid: 42, Tgid: 42, ParentTgid: 7, Depth: 2, StateField: "__state", ViaBPFLoop: true,
		Comm: "bpf.test", Filename: "/kmatrix/bpf.test"}, e)
}

func TestLoadErrorWrapsVerifierLog(t *testing.T) {
	// A verifier error as cilium/ebpf builds it, wrapped like Load does.
	inner := fmt.Errorf("program exec_bounded: %w", &ebpf.VerifierError{Cause: unix.EACCES, Log: []string{"0: (85) call unknown#195896080", "invalid func unknown#195896080"}})
	err := error(&LoadError{Object: tracerObject(VariantBoundedLoop), Err: inner})
	var le *LoadError
	require.ErrorAs(t, err, &le)
	assert.ErrorIs(t, err, unix.EACCES)
	assert.Equal(t, []string{"0: (85) call unknown#195896080", "invalid func unknown#195896080"}, le.VerifierLog())
	assert.Contains(t, le.FullError(), "verifier log:\n0: (85) call unknown#195896080\ninvalid func unknown#195896080")
	assert.Contains(t, err.Error(), "bpf: loading the bounded_loop tracer: program exec_bounded")

	plain := &LoadError{Object: tracerObject(VariantBPFLoop), Err: errors.New("no BTF")}
	assert.Nil(t, plain.VerifierLog())
	assert.Equal(t, plain.Error(), plain.FullError())
}

func TestAttachErrorWraps(t *testing.T) {
	err := error(&AttachError{Program: "exec_bpf_loop", Point: execAttachPoint, Err: fmt.Errorf("raw tracepoint: %w", unix.ENOENT)})
	assert.ErrorIs(t, err, unix.ENOENT)
	assert.EqualError(t, err, "bpf: attaching exec_bpf_loop to tp_btf/sched_process_exec: raw tracepoint: no such file or directory")
}
