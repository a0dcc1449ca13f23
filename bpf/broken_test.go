package bpf

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// brokenCORE is testdata/broken_core.c compiled: it reads
// task_struct::__state with no bpf_core_field_exists guard.
//
//go:embed testdata/broken_core_bpfel.o
var brokenCORE []byte

// TestBrokenCORE proves that kmatrix reports CO-RE failures instead of
// hiding them: the unguarded read of __state must fail to load before 5.14,
// with an error that says it is a CO-RE relocation and names the field, and
// must load on 5.14+.
func TestBrokenCORE(t *testing.T) {
	requireBPF(t)
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(brokenCORE))
	require.NoError(t, err)
	coll, err := ebpf.NewCollection(spec)
	kv := runningKernel(t)
	if kv.AtLeast(5, 14) {
		require.NoError(t, err, "kernel %s has task_struct::__state (5.14+): the unguarded read must load", kv)
		coll.Close()
		evidence(t, "broken_core", "loaded")
		return
	}
	require.Error(t, err, "kernel %s has no task_struct::__state (5.14+): the unguarded read must not load", kv)
	evidence(t, "broken_core", "load-error")
	var ve *ebpf.VerifierError
	require.True(t, errors.As(err, &ve), "want a verifier error with its log, got %T: %v", err, err)
	full := fmt.Sprintf("%+v", ve)
	t.Logf("expected failure, full verifier log:\n%s", full)
	assert.Contains(t, err.Error(), "bad CO-RE relocation", "the error must say it is a CO-RE relocation failure")
	assert.True(t, strings.Contains(full, "__state"), "the verifier log must name the field __state")
}
