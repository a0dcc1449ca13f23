//go:build linux

package bpf

import (
	"errors"
	"testing"

	"github.com/kmatrix/kmatrix/kernels/version"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestVariant checks that the variant Load picks is what the kernel's
// feature probe says, and that the probe agrees with the kernel version
// (bpf_loop arrived in 5.17).
func TestVariant(t *testing.T) {
	requireBPF(t)
	probe, err := ProbeVariant()
	require.NoError(t, err)
	kv := runningKernel(t)
	evidence(t, "variant", probe)

	want := VariantBoundedLoop
	if kv.Has(version.BPFLoop) {
		want = VariantBPFLoop
	}
	assert.Equal(t, want, probe, "kernel %s: bpf_loop is in 5.17+, the probe disagrees", kv)

	tr := load(t, Options{})
	assert.Equal(t, probe, tr.Variant(), "Load's default variant")

	if probe == VariantBoundedLoop {
		// Forcing the variant this kernel cannot run fails with a reason.
		_, err := Load(Options{Variant: VariantBPFLoop})
		var le *LoadError
		require.ErrorAs(t, err, &le)
		assert.ErrorIs(t, err, ebpf.ErrNotSupported)
		assert.Contains(t, err.Error(), "bpf_loop")
		assert.Contains(t, err.Error(), "5.17")
	}
}

func TestLoadRejectsUnknownVariant(t *testing.T) {
	_, err := Load(Options{Variant: "bpf-loop"})
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrInvalidOptions), "%v", err)
	assert.EqualError(t, err, `bpf: Options.Variant "bpf-loop": invalid options: want "bpf_loop", "bounded_loop", or empty to probe the kernel`)
}
