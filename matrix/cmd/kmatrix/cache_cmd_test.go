package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/kernels"
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
