package build

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
	"github.com/kmatrix/kmatrix/kmod"
)

// TestCached builds a module once, gets the same result from the
// cache the second time without compiling, and builds again when the
// source changes; a build error is cached with its first error.
func TestCached(t *testing.T) {
	hostOnly(t)
	k := kernelstest.Default(t)[0]
	cache := t.TempDir()
	src := t.TempDir()
	require.NoError(t, kmod.WriteSource(src))
	opts := Options{OutDir: t.TempDir(), CacheDir: cache}
	ctx := context.Background()

	first, err := Cached(ctx, k, src, opts)
	require.NoError(t, err)
	require.Equal(t, outcome.Pass, first.Outcome, first.Log)
	assert.False(t, first.Cached)

	again, err := Cached(ctx, k, src, opts)
	require.NoError(t, err)
	assert.True(t, again.Cached, "an unchanged module is not compiled again")
	assert.Equal(t, outcome.Pass, again.Outcome)
	assert.Equal(t, first.Compiler, again.Compiler)
	a, err := os.ReadFile(first.Ko)
	require.NoError(t, err)
	b, err := os.ReadFile(again.Ko)
	require.NoError(t, err)
	assert.Equal(t, a, b, "the cached .ko is the built one")

	f, err := os.OpenFile(filepath.Join(src, "kmatrix.c"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("\n/* changed */\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	changed, err := Cached(ctx, k, src, opts)
	require.NoError(t, err)
	assert.False(t, changed.Cached, "a changed source is built again")

	if k.Version.AtLeast(5, 14) {
		return // the fixture's error is only on older kernels
	}
	bad1, err := Cached(ctx, k, "../testdata/versionerror", opts)
	require.NoError(t, err)
	bad2, err := Cached(ctx, k, "../testdata/versionerror", opts)
	require.NoError(t, err)
	assert.Equal(t, outcome.BuildError, bad2.Outcome)
	assert.True(t, bad2.Cached)
	assert.Equal(t, bad1.FirstError, bad2.FirstError)
}
