package vmtest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// A corrupted vmlinuz (a real one, garbled past its boot header, or cut
// short) never reaches the init: an infra-error "the kernel did not boot"
// with the last console lines, within a minute, not at the VM's deadline.
func TestCorruptedKernel(t *testing.T) {
	noQEMULeft(t)
	good, err := os.ReadFile(newest(t).Vmlinuz)
	require.NoError(t, err)
	dir := t.TempDir()
	garbled := append([]byte(nil), good...)
	for i := len(good) / 3; i < len(good)/3+256<<10 && i < len(good); i++ {
		garbled[i] ^= 0x5a
	}
	for name, b := range map[string][]byte{"garbled": garbled, "truncated": good[:len(good)*2/3]} {
		t.Run(name, func(t *testing.T) {
			if name == "garbled" {
				slowFault(t, "waits out the 40 s boot deadline")
			}
			path := filepath.Join(dir, name)
			require.NoError(t, os.WriteFile(path, b, 0o644))
			start := time.Now()
			res, err := Run(context.Background(), Spec{Kernel: path, Timeout: 10 * time.Minute,
				Commands: []Command{{Name: "never", Path: "/init"}}})
			took := time.Since(start)
			t.Logf("%s vmlinuz: %v after %v: %v", name, res.Outcome, took.Round(time.Millisecond), err)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInfra)
			require.NotNil(t, res)
			assert.Equal(t, outcome.InfraError, res.Outcome)
			assert.Less(t, took, 60*time.Second, "within a minute, not at the 10-minute deadline")
			assert.NotEmpty(t, res.Excerpt, "the last console lines")
			assert.Equal(t, "not run: the kernel did not boot", res.Commands[0].Err)
			assert.Contains(t, res.Err, "the kernel did not boot")
			t.Logf("excerpt:\n%s\nconsole tail:\n%q", res.Excerpt, lastN(res.Console, 400))
		})
	}
}

func TestBootDeadline(t *testing.T) {
	assert.Equal(t, 40*time.Second, bootDeadline(Spec{}), "10 × the default floor")
	assert.Equal(t, 80*time.Second, bootDeadline(Spec{BootFloor: 8 * time.Second}))
	assert.Equal(t, 5*time.Second, bootDeadline(Spec{BootTimeout: 5 * time.Second, BootFloor: 8 * time.Second}))
}

func lastN(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// slowFault skips a slow case of the fault suite unless KMATRIX_FAULTS=1
// (make faults).
func slowFault(t *testing.T, why string) {
	if os.Getenv("KMATRIX_FAULTS") != "1" {
		t.Skipf("slow fault case (%s): run it with make faults (KMATRIX_FAULTS=1)", why)
	}
}
