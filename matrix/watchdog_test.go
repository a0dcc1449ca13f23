package matrix

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
)

// A module whose init spins with preemption off (soft lockup) or sleeps
// uninterruptibly (hung task), on a real kernel: the kernel's own report
// stops the guest soon after, the outcome is timeout with that report as
// evidence, well before the 10-minute VM deadline; no temp dir or partial
// download is left (vmtest's own tests check that no QEMU is).
func TestRunStuckModule(t *testing.T) {
	if os.Getenv("KMATRIX_FAULTS") != "1" {
		t.Skip("slow fault case (two VMs waiting for the kernel's hang reports, about 2 minutes): run it with make faults (KMATRIX_FAULTS=1)")
	}
	k := kernelstest.Default(t)[1] // bookworm 6.1: its gcc-12 is the host's, no build root needed
	for _, tc := range []struct {
		fixture, report string
		bound           time.Duration
	}{
		{"spinonload", "BUG: soft lockup", 90 * time.Second},
		{"hangonload", "blocked for more than 20 seconds", 90 * time.Second},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp) // the run's own temporary directory, to check it is left empty
			payload := "kmod:" + tc.fixture
			start := time.Now()
			rep, err := Run(context.Background(), Options{Kernels: []string{k.Name}, Payloads: []string{PayloadBPF},
				KmodDirs: []string{"../kmod/testdata/" + tc.fixture}})
			took := time.Since(start)
			t.Logf("%s on %s: run took %v", tc.fixture, k.Name, took.Round(time.Millisecond))
			require.NoError(t, err, "a stuck module is the payload's timeout, no infra error")
			assert.Less(t, took, tc.bound)

			boot := cellsOf(rep, k.Name, PayloadKernel, "boot")
			require.Len(t, boot, 1)
			assert.Equal(t, outcome.Timeout, boot[0].Outcome, "%s\n%s", boot[0].Evidence.Message, boot[0].Evidence.Log)
			assert.Contains(t, boot[0].Evidence.Message, "during command "+payload)
			assert.Contains(t, boot[0].Evidence.Log, tc.report, "the kernel's report is the evidence")
			t.Logf("boot cell: %s", boot[0].Evidence.Message)

			load := cellsOf(rep, k.Name, payload, "load")
			require.Len(t, load, 1)
			assert.Equal(t, outcome.Timeout, load[0].Outcome, "%s", load[0].Evidence.Message)

			// The payload before it ran and passed.
			for _, c := range cellsOf(rep, k.Name, PayloadBPF, "") {
				assert.Equal(t, outcome.Pass, c.Outcome, "%s: %s", c.Check, c.Evidence.Message)
			}
			left, _ := os.ReadDir(tmp)
			assert.Empty(t, left, "no run dir or build dir is left")
			cache, err := kernels.CacheDir()
			require.NoError(t, err)
			parts, _ := filepath.Glob(filepath.Join(cache, "downloads", "*.part"))
			assert.Empty(t, parts, "no partial download is left")
		})
	}
}
