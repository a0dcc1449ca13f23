package vmtest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
)

// TestRestoredRunsShareNothing runs twice from one snapshot on every
// default kernel: what the first run changes (a file in /tmp, a sysctl) is
// gone in the second, the two read different random bytes, and both see
// the host's clock, though the snapshot's clock is older.
func TestRestoredRunsShareNothing(t *testing.T) {
	noQEMULeft(t)
	for _, k := range kernelstest.Default(t) {
		t.Run(k.Name, func(t *testing.T) {
			t.Parallel()
			runOnce := func(first bool) *Result {
				cmds := []Command{
					gp(t, "stat", "stat", "/tmp/leak", "/data/in"),
					gp(t, "hostname", "read", "/proc/sys/kernel/hostname"),
					gp(t, "random", "random", "32"),
					gp(t, "now", "now"),
				}
				if first {
					cmds = append(cmds, gp(t, "leak", "write", "/tmp/leak", "x"), gp(t, "sysctl", "write", "/proc/sys/kernel/hostname", "changed-by-run-1"))
				}
				res := run(t, Spec{Kernel: k.Vmlinuz, Files: []File{{Data: []byte("in"), Guest: "/data/in"}}, Commands: cmds})
				require.Equal(t, outcome.Pass, res.Outcome, "%s\n%s", res.Err, res.Console)
				require.NotEmpty(t, res.Snapshot, "restored from a snapshot (cold because: %s)", res.ColdReason)
				host := time.Now()
				ns, err := strconv.ParseInt(strings.TrimSpace(string(res.Commands[3].Stdout)), 10, 64)
				require.NoError(t, err)
				assert.WithinDuration(t, host, time.Unix(0, ns), 3*time.Second, "the guest's clock is the host's")
				return res
			}
			r1 := runOnce(true)
			// Long enough for a guest clock left at the snapshot's time to show.
			time.Sleep(5 * time.Second)
			r2 := runOnce(false)
			assert.Equal(t, r1.Snapshot, r2.Snapshot, "both runs restore one snapshot")
			assert.Equal(t, "/tmp/leak exists=false\n/data/in exists=true\n", string(r1.Commands[0].Stdout))
			assert.Equal(t, "/tmp/leak exists=false\n/data/in exists=true\n", string(r2.Commands[0].Stdout), "run 1's file is gone")
			assert.Equal(t, string(r1.Commands[1].Stdout), string(r2.Commands[1].Stdout), "run 1's sysctl is gone")
			assert.NotEqual(t, "changed-by-run-1\n", string(r2.Commands[1].Stdout))
			assert.NotEqual(t, r1.Commands[2].Stdout, r2.Commands[2].Stdout, "two runs from one snapshot read different random bytes")
			assert.Positive(t, r2.Timings.Restore)
			assert.Zero(t, r2.Timings.Kernel)
			assert.Equal(t, r2.Timings.Total, r2.Timings.Restore+r2.Timings.Init+r2.Timings.Commands+r2.Timings.Poweroff)
		})
	}
}

// TestDamagedSnapshotBootsCold: a snapshot whose device state no longer
// loads is removed and the run boots cold, saying why; the next run makes
// a new one. (Its own machine, by its kernel command line, so no other
// test's snapshot is touched.)
func TestDamagedSnapshotBootsCold(t *testing.T) {
	noQEMULeft(t)
	k := newest(t)
	spec := Spec{Kernel: k.Vmlinuz, Append: []string{"kmatrix.test=damaged-snapshot"},
		Commands: []Command{gp(t, "stat", "stat", "/tmp")}}
	res := run(t, spec)
	require.Equal(t, outcome.Pass, res.Outcome, res.Err)
	require.NotEmpty(t, res.Snapshot)
	dir, err := SnapshotDir()
	require.NoError(t, err)
	state := filepath.Join(dir, res.Snapshot+".state")
	fi, err := os.Stat(state)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(state, make([]byte, fi.Size()), 0o600))

	res = run(t, spec)
	require.Equal(t, outcome.Pass, res.Outcome, res.Err)
	assert.Empty(t, res.Snapshot)
	assert.Equal(t, "the snapshot failed to restore", res.ColdReason)
	require.NotEmpty(t, res.Warnings)
	assert.Contains(t, res.Warnings[len(res.Warnings)-1], "failed to restore and was removed")
	assert.NoFileExists(t, state)

	res = run(t, spec)
	require.Equal(t, outcome.Pass, res.Outcome, res.Err)
	assert.NotEmpty(t, res.Snapshot, "made again")
}
