package vmtest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/kernels"
)

// TestPruneSnapshots fills a cache with entries of every kind and prunes it.
func TestPruneSnapshots(t *testing.T) {
	t.Setenv(kernels.EnvCacheDir, t.TempDir())
	dir, err := SnapshotDir()
	require.NoError(t, err)
	kernelDir := t.TempDir()
	now := time.Now()
	put := func(key, kernel, kernelData string, refused string, lastUsed time.Time) {
		k := filepath.Join(kernelDir, kernel)
		sum := ""
		if kernelData != "" {
			require.NoError(t, os.WriteFile(k, []byte(kernelData), 0o644))
			sum, err = fileSHA256(k)
			require.NoError(t, err)
		}
		s := SnapshotInfo{Key: key, Format: snapshotFormat, Kernel: k, KernelSHA256: sum, MemoryMB: 1, Refused: refused, StateBytes: 3}
		b, _ := json.Marshal(s)
		require.NoError(t, os.WriteFile(filepath.Join(dir, key+".json"), b, 0o644))
		if refused == "" {
			require.NoError(t, os.WriteFile(filepath.Join(dir, key+".state"), []byte("abc"), 0o644))
			require.NoError(t, os.Truncate(filepath.Join(dir, key+".state"), 3))
			f, err := os.Create(filepath.Join(dir, key+".ram"))
			require.NoError(t, err)
			require.NoError(t, f.Truncate(1<<20))
			f.Close()
		}
		require.NoError(t, os.Chtimes(filepath.Join(dir, key+".json"), lastUsed, lastUsed))
	}
	put("fresh", "k1", "kernel one", "", now.Add(-time.Hour))
	put("old", "k2", "kernel two", "", now.Add(-40*24*time.Hour))
	put("gone", "k3", "", "", now)
	put("changed", "k4", "kernel four", "", now)
	require.NoError(t, os.WriteFile(filepath.Join(kernelDir, "k4"), []byte("kernel four, rebuilt"), 0o644))
	put("refused", "k1", "kernel one", "its boot reported splat", now)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "damaged.json"), []byte("{not json"), 0o644))
	tmp := filepath.Join(dir, ".killed.ram.tmp-123")
	require.NoError(t, os.WriteFile(tmp, nil, 0o644))
	require.NoError(t, os.Chtimes(tmp, now.Add(-2*time.Hour), now.Add(-2*time.Hour)))

	all, err := Snapshots()
	require.NoError(t, err)
	assert.Len(t, all, 6)

	removed, err := PruneSnapshots(30*24*time.Hour, now)
	require.NoError(t, err)
	var keys []string
	for _, s := range removed {
		keys = append(keys, s.Key)
		assert.NotEmpty(t, s.Refused, "says why %s went", s.Key)
	}
	sort.Strings(keys)
	assert.Equal(t, []string{"changed", "damaged", "gone", "old", "refused"}, keys)

	left, err := filepath.Glob(filepath.Join(dir, "*"))
	require.NoError(t, err)
	var names []string
	for _, l := range left {
		names = append(names, filepath.Base(l))
	}
	assert.ElementsMatch(t, []string{"fresh.json", "fresh.state", "fresh.ram",
		"old.lock", "gone.lock", "changed.lock", "refused.lock", "damaged.lock"}, names,
		"the fresh entry stays whole; the others leave only their locks; the killed creation's temporary file is gone")
}

// TestVerifySnapshots: a snapshot whose device state changed is removed.
func TestVerifySnapshots(t *testing.T) {
	t.Setenv(kernels.EnvCacheDir, t.TempDir())
	dir, err := SnapshotDir()
	require.NoError(t, err)
	for _, key := range []string{"sound", "damaged"} {
		state := filepath.Join(dir, key+".state")
		require.NoError(t, os.WriteFile(state, []byte("state"), 0o644))
		sum, err := hashFile(state)
		require.NoError(t, err)
		b, _ := json.Marshal(SnapshotInfo{Key: key, Format: snapshotFormat, MemoryMB: 1, StateBytes: 5, StateSHA256: sum})
		require.NoError(t, os.WriteFile(filepath.Join(dir, key+".json"), b, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, key+".ram"), nil, 0o644))
		require.NoError(t, os.Truncate(filepath.Join(dir, key+".ram"), 1<<20))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "damaged.state"), []byte("STATE"), 0o644))
	n, problems, err := VerifySnapshots()
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	require.Len(t, problems, 1)
	assert.Contains(t, problems[0].Error(), "snapshot damaged")
	assert.FileExists(t, filepath.Join(dir, "sound.state"))
	assert.NoFileExists(t, filepath.Join(dir, "damaged.state"))
}

// TestSnapshotKey: the key changes with every part of the machine's shape
// and only with them.
func TestSnapshotKey(t *testing.T) {
	k := newest(t)
	key := func(accel string, s Spec) string {
		t.Helper()
		s.Kernel = k.Vmlinuz
		p, err := newPlan(s)
		require.NoError(t, err)
		sh, err := snapshotShape(context.Background(), p, accel)
		require.NoError(t, err)
		return sh.Key
	}
	base := key("tcg", Spec{})
	assert.Equal(t, base, key("tcg", Spec{Timeout: time.Hour, Files: []File{{Data: []byte("x"), Guest: "/x"}}}), "the run's own parts do not count")
	others := map[string]string{
		"kvm":       key("kvm", Spec{}),
		"memory":    key("tcg", Spec{MemoryMB: 1024}),
		"cpus":      key("tcg", Spec{CPUs: 2}),
		"append":    key("tcg", Spec{Append: []string{"lsm=bpf"}}),
		"oopspanic": key("tcg", Spec{OopsPanic: true}),
	}
	seen := map[string]string{base: "base"}
	for name, k := range others {
		_, dup := seen[k]
		assert.False(t, dup, "%s has its own key", name)
		seen[k] = name
	}
}
