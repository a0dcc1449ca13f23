package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/vmtest"
)

func TestCacheVerifyUsage(t *testing.T) {
	ctx := context.Background()
	assert.Equal(t, exitUsage, dispatch(ctx, []string{"cache"}))
	assert.Equal(t, exitUsage, dispatch(ctx, []string{"cache", "frob"}))
	assert.Equal(t, exitOK, dispatch(ctx, []string{"cache", "-h"}))
}

// An empty cache verifies; an entry whose manifest is garbage is a problem
// (exit 4) and is removed.
func TestCacheVerify(t *testing.T) {
	ctx := context.Background()
	cache := t.TempDir()
	t.Setenv(kernels.EnvCacheDir, cache)
	assert.Equal(t, exitOK, dispatch(ctx, []string{"cache", "verify"}))
	entry := filepath.Join(cache, "kernels", "1.0-test-000000000000")
	require.NoError(t, os.MkdirAll(entry, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(entry, "entry.json"), []byte(`{"vmlinuz":"v"}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(entry, "manifest.json"), []byte(`{not json`), 0o644))
	assert.Equal(t, exitInfra, dispatch(ctx, []string{"cache", "verify"}))
	assert.NoDirExists(t, entry)
}

// TestCachePrune: a snapshot whose kernel is gone is removed, a fresh one
// of a present kernel stays (vmtest's own tests cover every other case).
func TestCachePrune(t *testing.T) {
	t.Setenv(kernels.EnvCacheDir, t.TempDir())
	dir, err := vmtest.SnapshotDir()
	require.NoError(t, err)
	kernel := filepath.Join(t.TempDir(), "vmlinuz")
	require.NoError(t, os.WriteFile(kernel, []byte("a kernel"), 0o644))
	sum := sha256.Sum256([]byte("a kernel"))
	for key, k := range map[string]string{"kept": kernel, "gone": kernel + ".removed"} {
		b, _ := json.Marshal(map[string]any{"key": key, "format": 1, "kernel": k, "memory_mb": 1, "state_bytes": 0,
			"kernel_sha256": hex.EncodeToString(sum[:])})
		require.NoError(t, os.WriteFile(filepath.Join(dir, key+".json"), b, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, key+".state"), nil, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, key+".ram"), make([]byte, 1<<20), 0o644))
	}
	var out, errb bytes.Buffer
	require.Equal(t, 0, cacheMain([]string{"snapshots"}, &out, &errb), errb.String())
	assert.Contains(t, out.String(), "2 snapshots, 2.0 MiB")

	out.Reset()
	require.Equal(t, 0, cacheMain([]string{"prune", "--days", "7"}, &out, &errb), errb.String())
	assert.Contains(t, out.String(), "removed snapshot gone ("+kernel+".removed): its kernel is gone")
	assert.NotContains(t, out.String(), "snapshot kept")
	assert.Contains(t, out.String(), "removed 1 snapshots, 1.0 MiB")
	assert.FileExists(t, filepath.Join(dir, "kept.ram"))
	assert.NoFileExists(t, filepath.Join(dir, "gone.ram"))

	assert.Equal(t, exitUsage, cacheMain([]string{"prune", "--days", "-1"}, &out, &errb))
	assert.Equal(t, exitUsage, cacheMain([]string{"frob"}, &out, &errb))
	assert.Contains(t, errb.String(), `unknown subcommand "frob"`)
}

// TestCachePruneBudget: --max-mib removes the least recently used
// snapshots until the rest fit.
func TestCachePruneBudget(t *testing.T) {
	t.Setenv(kernels.EnvCacheDir, t.TempDir())
	dir, err := vmtest.SnapshotDir()
	require.NoError(t, err)
	kernel := filepath.Join(t.TempDir(), "vmlinuz")
	require.NoError(t, os.WriteFile(kernel, []byte("a kernel"), 0o644))
	sum := sha256.Sum256([]byte("a kernel"))
	now := time.Now()
	for i, key := range []string{"oldest", "older", "newest"} {
		b, _ := json.Marshal(map[string]any{"key": key, "format": 1, "kernel": kernel, "memory_mb": 1, "state_bytes": 0,
			"kernel_sha256": hex.EncodeToString(sum[:])})
		require.NoError(t, os.WriteFile(filepath.Join(dir, key+".json"), b, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, key+".state"), nil, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, key+".ram"), make([]byte, 1<<20), 0o644))
		used := now.Add(time.Duration(i-3) * time.Hour)
		require.NoError(t, os.Chtimes(filepath.Join(dir, key+".json"), used, used))
	}
	var out, errb bytes.Buffer
	require.Equal(t, 0, cacheMain([]string{"prune", "--max-mib", "1"}, &out, &errb), errb.String())
	assert.Contains(t, out.String(), "removed snapshot oldest")
	assert.Contains(t, out.String(), "removed snapshot older")
	assert.Contains(t, out.String(), "over the budget of 1 MiB")
	assert.Contains(t, out.String(), "removed 2 snapshots, 2.0 MiB")
	assert.FileExists(t, filepath.Join(dir, "newest.ram"))
	assert.NoFileExists(t, filepath.Join(dir, "older.ram"))

	assert.Equal(t, exitUsage, cacheMain([]string{"prune", "--max-mib", "-1"}, &out, &errb))
	assert.Contains(t, errb.String(), "--max-mib -1 is negative")
}
