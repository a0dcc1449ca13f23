package vmtest

import (
	"archive/tar"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
	"github.com/kmatrix/kmatrix/kmod"
	"github.com/kmatrix/kmatrix/kmod/build"
	"github.com/kmatrix/kmatrix/vmtest/internal/wire"
)

// TestRestoredRunsShareNothing runs twice from one snapshot on every
// default kernel: what the first run changes (a file in /tmp, a sysctl, a
// module it loads: kmatrix's own, built for the kernel) is gone in the
// second, the two read different random bytes, and both see the host's
// clock, though the snapshot's clock is older.
func TestRestoredRunsShareNothing(t *testing.T) {
	noQEMULeft(t)
	src := filepath.Join(t.TempDir(), "kmatrix-src")
	require.NoError(t, kmod.WriteSource(src))
	for _, k := range kernelstest.Default(t) {
		t.Run(k.Name, func(t *testing.T) {
			t.Parallel()
			b, err := build.Cached(context.Background(), k, src, build.Options{OutDir: t.TempDir()})
			require.NoError(t, err)
			require.Equal(t, outcome.Pass, b.Outcome, b.Log)
			runOnce := func(first bool) *Result {
				cmds := []Command{
					gp(t, "stat", "stat", "/tmp/leak", "/data/in"),
					gp(t, "hostname", "read", "/proc/sys/kernel/hostname"),
					gp(t, "random", "random", "32"),
					gp(t, "now", "now"),
					gp(t, "modules", "read", "/proc/modules"),
				}
				if first {
					cmds = append(cmds, gp(t, "leak", "write", "/tmp/leak", "x"), gp(t, "sysctl", "write", "/proc/sys/kernel/hostname", "changed-by-run-1"),
						gp(t, "insmod", "insmod", "/data/kmatrix.ko"), gp(t, "loaded", "read", "/proc/modules"))
				}
				before := time.Now()
				res := run(t, Spec{Kernel: k.Vmlinuz, Commands: cmds,
					Files: []File{{Data: []byte("in"), Guest: "/data/in"}, {Host: b.Ko, Guest: "/data/kmatrix.ko"}}})
				require.Equal(t, outcome.Pass, res.Outcome, "%s\n%s", res.Err, res.Console)
				require.NotEmpty(t, res.Snapshot, "restored from a snapshot (cold because: %s)", res.ColdReason)
				assertHostClock(t, before, time.Now(), string(res.Commands[3].Stdout))
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
			modules := regexp.MustCompile(`(?m)^kmatrix `)
			assert.NotRegexp(t, modules, string(r1.Commands[4].Stdout), "no module loaded before run 1 loads it")
			assert.Regexp(t, modules, string(r1.Commands[8].Stdout), "run 1 loaded the module")
			assert.NotRegexp(t, modules, string(r2.Commands[4].Stdout), "run 1's module is gone in run 2")
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

// TestSharedFiles: a File.Shared reaches a restored guest from the
// snapshot, not in the run; another content is another snapshot, which
// supersedes the first (removed once unused for supersededGrace), as it
// does a snapshot of the same machine made by another init; a cold boot
// copies it like any file.
func TestSharedFiles(t *testing.T) {
	noQEMULeft(t)
	k := newest(t)
	host := filepath.Join(t.TempDir(), "shared")
	// Contents of this test run only, so that its snapshots are new (and
	// supersede those of the test's earlier runs).
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	runWith := func(data string, cold bool) *Result {
		t.Helper()
		data += nonce
		require.NoError(t, os.WriteFile(host, []byte(data), 0o644))
		res := run(t, Spec{Kernel: k.Vmlinuz, Cold: cold, Append: []string{"kmatrix.test=shared-files"},
			Files:    []File{{Host: host, Guest: "/data/shared", Shared: true}, {Data: []byte("own"), Guest: "/data/own"}},
			Commands: []Command{gp(t, "read", "read", "/data/shared", "/data/own")}})
		require.Equal(t, outcome.Pass, res.Outcome, "%s\n%s", res.Err, res.Console)
		assert.Equal(t, data+"own", string(res.Commands[0].Stdout))
		return res
	}
	one := runWith("one", false)
	require.NotEmpty(t, one.Snapshot, "restored (cold because: %s)", one.ColdReason)
	assert.True(t, one.SnapshotMade, "the first run of new contents makes its snapshot")
	again := runWith("one", false)
	assert.Equal(t, one.Snapshot, again.Snapshot)
	assert.False(t, again.SnapshotMade)

	// The same machine as made by another build of vmtest's init: the
	// real files under another key (hard links), its init changed.
	dir, err := SnapshotDir()
	require.NoError(t, err)
	s, err := readSnapshot(dir, one.Snapshot)
	require.NoError(t, err)
	// And another machine's, unused for longer than unusedLimit.
	copyAs := func(key string, change func(*SnapshotInfo)) *SnapshotInfo {
		c := *s
		c.Key = key
		change(&c)
		for _, ext := range []string{".ram", ".state"} {
			require.NoError(t, os.Link(s.path(ext), c.path(ext)))
		}
		b, err := json.Marshal(c)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(c.path(".json"), b, 0o644))
		t.Cleanup(func() { removeSnapshot(&c) })
		_, err = readSnapshot(dir, c.Key)
		require.NoError(t, err, "a sound entry")
		return &c
	}
	other := *copyAs("0123456789abcdef0123456789abcdef", func(c *SnapshotInfo) { c.Init = "another-init+park" })
	ancient := copyAs("fedcba9876543210fedcba9876543210", func(c *SnapshotInfo) { c.Cmdline += " another-machine" })
	long := time.Now().Add(-unusedLimit - time.Hour)
	require.NoError(t, os.Chtimes(ancient.path(".json"), long, long))
	// In use by another build a moment ago: kept through the next commit.
	inUse := one.Snapshot
	used := time.Now().Add(-supersededGrace / 2)
	require.NoError(t, os.Chtimes(other.path(".json"), used, used))
	mid := runWith("mid", false)
	require.NotEmpty(t, mid.Snapshot)
	for _, kept := range []*SnapshotInfo{s, &other} {
		assert.FileExists(t, kept.path(".ram"), "used %v ago: kept", supersededGrace/2)
	}
	// Unused since long enough: removed by the next commit.
	used = time.Now().Add(-2 * supersededGrace)
	for _, key := range []string{inUse, other.Key, mid.Snapshot} {
		require.NoError(t, os.Chtimes(filepath.Join(dir, key+".json"), used, used))
	}

	two := runWith("two", false)
	require.NotEmpty(t, two.Snapshot)
	assert.NotEqual(t, one.Snapshot, two.Snapshot, "another shared content, another snapshot")
	midInfo := &SnapshotInfo{Key: mid.Snapshot, dir: dir}
	for _, gone := range []*SnapshotInfo{s, &other, midInfo, ancient} {
		for _, ext := range []string{".json", ".ram", ".state"} {
			assert.NoFileExists(t, gone.path(ext), "superseded by %s", two.Snapshot)
		}
	}
	assert.Equal(t, two.Snapshot, runWith("two", false).Snapshot)
	cold := runWith("three", true)
	assert.Empty(t, cold.Snapshot)
}

// TestRunFileLeavesSharedFilesOut: a restored run's file carries its own
// files, not the shared ones the snapshot holds.
func TestRunFileLeavesSharedFilesOut(t *testing.T) {
	k := newest(t)
	p, err := newPlan(Spec{Kernel: k.Vmlinuz, Files: []File{
		{Data: []byte("big test binary"), Guest: "/kmatrix/bpf.test", Shared: true},
		{Data: []byte("module"), Guest: "/kmatrix/kmod.ko"}}})
	require.NoError(t, err)
	f, err := writeRunFile(p, &p.wire)
	require.NoError(t, err)
	defer f.Close()
	_, err = f.Seek(0, 0)
	require.NoError(t, err)
	_, err = wire.ReadRunHeader(f)
	require.NoError(t, err)
	var names []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		names = append(names, h.Name)
	}
	assert.Contains(t, names, "kmatrix/kmod.ko")
	assert.NotContains(t, names, "kmatrix/bpf.test")
}

// assertHostClock: the guest's clock (Unix ns, as guestprog prints it)
// read during a run is the host's: within the time the run took, give or
// take the second settimeofday and the tick may cost. (A clock left at
// the snapshot's time would be older than the run's start: the tests
// restore a snapshot made at least seconds before.)
func assertHostClock(t *testing.T, before, after time.Time, guestNS string) {
	t.Helper()
	ns, err := strconv.ParseInt(strings.TrimSpace(guestNS), 10, 64)
	require.NoError(t, err)
	guest := time.Unix(0, ns)
	assert.True(t, !guest.Before(before.Add(-time.Second)) && !guest.After(after.Add(time.Second)),
		"the guest's clock is the host's: %v, the run took %v to %v", guest, before, after)
}
