//go:build linux

package bpf

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"testing"

	"github.com/kmatrix/kmatrix/kernels/version"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// brokenCORE is testdata/broken_core.c compiled: it reads
// task_struct::__state with no bpf_core_field_exists guard.
//
//go:embed testdata/broken_core_bpfel.o
var brokenCORE []byte

func brokenCORESpec(t *testing.T) *ebpf.CollectionSpec {
	t.Helper()
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(brokenCORE))
	require.NoError(t, err)
	return spec
}

// TestBrokenCORE proves that kmatrix reports CO-RE failures instead of
// hiding them: the unguarded read of __state must fail to load before 5.14,
// with an error that says it is a CO-RE relocation and names the field, and
// must load on 5.14+.
func TestBrokenCORE(t *testing.T) {
	requireBPF(t)
	coll, err := LoadCollection("testdata/broken_core_bpfel.o", brokenCORESpec(t))
	kv := runningKernel(t)
	if kv.Has(version.TaskStateRename) {
		require.NoError(t, err, "kernel %s has task_struct::__state (5.14+): the unguarded read must load", kv)
		coll.Close()
		evidence(t, "broken_core", "loaded")
		return
	}
	require.Error(t, err, "kernel %s has no task_struct::__state (5.14+): the unguarded read must not load", kv)
	evidence(t, "broken_core", "load-error")
	t.Logf("the expected failure: %v", err)
	var le *LoadError
	require.ErrorAs(t, err, &le)
	var ve *ebpf.VerifierError
	require.True(t, errors.As(err, &ve), "want a verifier error with its log, got %T: %v", err, err)
	t.Logf("its verifier log:\n%s", fmt.Sprintf("%+v", ve))
	assert.Contains(t, err.Error(), "bad CO-RE relocation", "the error must say it is a CO-RE relocation failure")
	require.Len(t, le.CORE, 1, "unresolved relocations")
	assert.Equal(t, "task_struct", le.CORE[0].Type)
	assert.Equal(t, "__state", le.CORE[0].Field)
	assert.Equal(t, "unguarded_state", le.CORE[0].Program)
	assert.Contains(t, err.Error(), "task_struct.__state", "the error must name the field")
}

// fakeKernelBTF is BTF with one task_struct that has the given int members,
// standing in for a kernel's.
func fakeKernelBTF(t *testing.T, fields ...string) *btf.Spec {
	t.Helper()
	i32 := &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
	ts := &btf.Struct{Name: "task_struct", Size: uint32(4 * len(fields))}
	for i, f := range fields {
		ts.Members = append(ts.Members, btf.Member{Name: f, Type: i32, Offset: btf.Bits(32 * i)})
	}
	b, err := btf.NewBuilder([]btf.Type{ts}, nil)
	require.NoError(t, err)
	raw, err := b.Marshal(nil, nil)
	require.NoError(t, err)
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	require.NoError(t, err)
	return spec
}

// TestUnresolvedCORE needs no privileges: it resolves the broken object
// and the tracer against made-up kernels with and without __state.
func TestUnresolvedCORE(t *testing.T) {
	old := fakeKernelBTF(t, "state", "pid", "tgid", "exit_state")
	fs, err := UnresolvedCORE(brokenCORESpec(t), old)
	require.NoError(t, err)
	require.Len(t, fs, 1)
	assert.Equal(t, COREFailure{Program: "unguarded_state", Kind: "byte_off", Type: "task_struct", Field: "__state",
		Source: "last_state = BPF_CORE_READ(p, __state);"}, fs[0])
	assert.Equal(t, `task_struct.__state (byte_off) in program unguarded_state at "last_state = BPF_CORE_READ(p, __state);"`, fs[0].String())

	fs, err = UnresolvedCORE(brokenCORESpec(t), fakeKernelBTF(t, "__state"))
	require.NoError(t, err)
	assert.Empty(t, fs, "a kernel with __state")

	// The tracer guards the read: against the old kernel only __state (in
	// the guarded branch) and the fields this fake lacks are unresolved,
	// never the old `state`.
	spec, err := loadTracer()
	require.NoError(t, err)
	fs, err = UnresolvedCORE(spec, old)
	require.NoError(t, err)
	for _, f := range fs {
		assert.NotEqual(t, "state", f.Field, "%s", f)
	}
	assert.True(t, containsField(fs, "task_struct", "__state"), "%v", fs)
}

func containsField(fs []COREFailure, typ, field string) bool {
	for _, f := range fs {
		if f.Type == typ && f.Field == field {
			return true
		}
	}
	return false
}
