package vmtest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAccelForced(t *testing.T) {
	t.Setenv(EnvAccel, "tcg")
	c, err := chooseAccel(context.Background(), &plan{arch: hostArch()})
	require.NoError(t, err)
	assert.Equal(t, "tcg", c.Accel)
	assert.Equal(t, "KMATRIX_ACCEL=tcg", c.Reason)

	t.Setenv(EnvAccel, "hvf")
	_, err = chooseAccel(context.Background(), &plan{arch: hostArch()})
	assert.ErrorIs(t, err, ErrInvalidSpec)
	assert.ErrorContains(t, err, `KMATRIX_ACCEL="hvf": want "tcg" or "kvm"`)
}

// TestAccelOtherArch: a guest of another arch than the host's runs under
// TCG, whatever KMATRIX_ACCEL says: KVM cannot run it.
func TestAccelOtherArch(t *testing.T) {
	other := archARM64
	if hostArch() == archARM64 {
		other = archAMD64
	}
	t.Setenv(EnvAccel, "kvm")
	c, err := chooseAccel(context.Background(), &plan{arch: other})
	require.NoError(t, err)
	assert.Equal(t, "tcg", c.Accel)
	assert.Contains(t, c.Reason, "KVM only runs guests of the host's architecture")
}

func TestAccelCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accel.json")
	probes := 0
	probe := func() *AccelChoice { probes++; return &AccelChoice{Accel: "tcg", Reason: "because"} }

	c, err := cachedAccel(context.Background(), path, "key1", probe)
	require.NoError(t, err)
	assert.Equal(t, "tcg", c.Accel)
	assert.Equal(t, 1, probes)

	c, err = cachedAccel(context.Background(), path, "key1", probe)
	require.NoError(t, err)
	assert.Equal(t, "because", c.Reason)
	assert.Equal(t, 1, probes, "the answer comes from the cache")

	_, err = cachedAccel(context.Background(), path, "key2", probe)
	require.NoError(t, err)
	assert.Equal(t, 2, probes, "a changed host setup runs the trial again")

	require.NoError(t, os.WriteFile(path, []byte("{garbage"), 0o644))
	_, err = cachedAccel(context.Background(), path, "key2", probe)
	require.NoError(t, err)
	assert.Equal(t, 3, probes, "a damaged cache file is replaced")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = cachedAccel(ctx, filepath.Join(t.TempDir(), "accel.json"), "k", probe)
	assert.ErrorIs(t, err, context.Canceled, "an interrupted trial is not cached")
}

// TestKVMTrial runs the real trial boot. On this project's machines KVM
// hangs (QEMU spins forever at the firmware): the trial must see that
// within its bound and fall back to TCG; where KVM works it must say so.
func TestKVMTrial(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a kernel under KVM; -short skips it")
	}
	noQEMULeft(t)
	p, err := newPlan(Spec{Kernel: newest(t).Vmlinuz})
	require.NoError(t, err)
	_, err = baseArchive(context.Background(), p.arch)
	require.NoError(t, err)
	start := time.Now()
	c := probeKVM(context.Background(), p)
	elapsed := time.Since(start)
	t.Logf("%s: %s (%v)", c.Accel, c.Reason, elapsed)
	assert.Less(t, elapsed, kvmTrialTimeout+10*time.Second, "the trial is bounded")
	if _, err := os.Stat("/dev/kvm"); err != nil {
		assert.Equal(t, "tcg", c.Accel)
		assert.Contains(t, c.Reason, "/dev/kvm")
		return
	}
	switch c.Accel {
	case "tcg":
		assert.Contains(t, c.Reason, "KVM unusable: a trial boot of "+p.spec.Kernel+" under KVM failed")
	case "kvm":
		assert.Contains(t, c.Reason, "reached the init")
	default:
		t.Fatalf("accel %q", c.Accel)
	}
}
