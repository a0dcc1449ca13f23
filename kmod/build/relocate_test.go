package build

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
	"github.com/kmatrix/kmatrix/kmod"
)

// The cache is relocatable: a headers tree copied, then moved, builds the
// module against itself, never against the tree it was copied from (its
// Makefile holds no absolute cache path).
func TestHeadersRelocatable(t *testing.T) {
	hostOnly(t)
	var k0 = kernelstest.Default(t)[1] // bookworm 6.1: the host's gcc-12 builds it
	if len(HostMissing(k0)) > 0 {
		t.Skipf("the host lacks %s for %s: this test builds on the host", toolList(HostMissing(k0)), k0.Name)
	}
	orig := filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(k0.Headers)))) // <cache>/headers/<key>
	rel, err := filepath.Rel(orig, k0.Headers)
	require.NoError(t, err)
	mk, err := os.ReadFile(filepath.Join(k0.Headers, "Makefile"))
	require.NoError(t, err)
	assert.NotContains(t, string(mk), orig, "no absolute cache path in the headers tree")

	src := t.TempDir()
	require.NoError(t, kmod.WriteSource(src))
	dir := t.TempDir()
	copied := filepath.Join(dir, "a", "headers", filepath.Base(orig))
	require.NoError(t, os.MkdirAll(filepath.Dir(copied), 0o755))
	out, err := exec.Command("cp", "-a", orig, copied).CombinedOutput()
	require.NoError(t, err, "%s", out)
	moved := filepath.Join(dir, "b", "headers", filepath.Base(orig))

	build := func(entry string, notUsed ...string) {
		k := *k0
		k.Headers = filepath.Join(entry, rel)
		res, err := Module(context.Background(), &k, src, Options{OutDir: t.TempDir(), HostOnly: true})
		require.NoError(t, err)
		require.Equal(t, outcome.Pass, res.Outcome, res.Log)
		cmds, _ := filepath.Glob(filepath.Join(res.Dir, ".*.o.cmd"))
		require.NotEmpty(t, cmds, "kbuild's .cmd files say which headers the compiler read")
		var all strings.Builder
		for _, c := range cmds {
			b, err := os.ReadFile(c)
			require.NoError(t, err)
			all.Write(b)
		}
		assert.Contains(t, all.String(), entry, "built against the tree at %s", entry)
		for _, n := range notUsed {
			assert.NotContains(t, all.String(), n+"/", "never against the tree at %s", n)
		}
	}
	build(copied, orig)
	require.NoError(t, os.Rename(filepath.Dir(filepath.Dir(copied)), filepath.Dir(filepath.Dir(moved))))
	build(moved, orig, copied)
}

// A build against a damaged headers tree is a build error, and cached;
// once the tree is repaired (a new identity, kernels.Kernel.HeadersDigest)
// the module is built again and passes: no stale build error.
func TestCachedHeadersRepaired(t *testing.T) {
	hostOnly(t)
	k0 := kernelstest.Default(t)[1]
	if len(HostMissing(k0)) > 0 {
		t.Skipf("the host lacks %s for %s: this test builds on the host", toolList(HostMissing(k0)), k0.Name)
	}
	orig := filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(k0.Headers))))
	rel, err := filepath.Rel(orig, k0.Headers)
	require.NoError(t, err)
	copied := filepath.Join(t.TempDir(), filepath.Base(orig))
	out, err := exec.Command("cp", "-a", orig, copied).CombinedOutput()
	require.NoError(t, err, "%s", out)
	k := *k0
	k.Headers = filepath.Join(copied, rel)
	autoconf := filepath.Join(k.Headers, "include/generated/autoconf.h")
	good, err := os.ReadFile(autoconf)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(autoconf, []byte("#error damaged header\n"), 0o644))

	src := t.TempDir()
	require.NoError(t, kmod.WriteSource(src))
	opts := Options{OutDir: t.TempDir(), CacheDir: t.TempDir(), HostOnly: true}
	k.HeadersDigest = "damaged@1"
	bad, err := Cached(context.Background(), &k, src, opts)
	require.NoError(t, err)
	require.Equal(t, outcome.BuildError, bad.Outcome)
	again, err := Cached(context.Background(), &k, src, opts)
	require.NoError(t, err)
	assert.True(t, again.Cached, "the same tree gives the cached result")

	require.NoError(t, os.WriteFile(autoconf, good, 0o644))
	k.HeadersDigest = "repaired@2"
	fixed, err := Cached(context.Background(), &k, src, opts)
	require.NoError(t, err)
	assert.False(t, fixed.Cached, "a repaired tree is built against again")
	assert.Equal(t, outcome.Pass, fixed.Outcome, fixed.Log)
}
