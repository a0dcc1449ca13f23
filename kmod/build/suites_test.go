package build

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
	"github.com/kmatrix/kmatrix/kmod"
	"github.com/kmatrix/kmatrix/matrix/outcome"
)

// TestBuildBackportsAndExperimental builds the real module for kernels
// outside the default catalog, each of which failed before for a reason of
// kmatrix's own: trixie-backports 7.3 (its build root must be trixie plus
// trixie-backports: mmdebstrap of trixie-backports alone exits 25),
// bookworm-backports 6.12 (gcc-12 like the host, but its build runs pahole
// for the modules' BTF: without pahole on the host it must go to a build
// root, never be a build-error "pahole: not found") and experimental (sid
// plus experimental). Cold, each makes a build root (about 30 s each), so
// it runs in the series lane only (make series, or KMATRIX_SERIES=1).
func TestBuildBackportsAndExperimental(t *testing.T) {
	hostOnly(t)
	if os.Getenv("KMATRIX_SERIES") == "" {
		t.Skip("fetches 3 more kernels and makes their build roots: set KMATRIX_SERIES=1 (make series) to run it")
	}
	dir := t.TempDir()
	catFile := filepath.Join(dir, "suites.yaml")
	require.NoError(t, os.WriteFile(catFile, []byte(`kernels:
  - name: bookworm-backports-6.12
    suite: bookworm-backports
    series: "6.12"
  - name: experimental
    suite: experimental
`), 0o644))
	cat, err := kernels.LoadCatalog(catFile)
	require.NoError(t, err)
	ks := []*kernels.Kernel{kernelstest.Series(t, "linux-7.3"), kernelstest.FromCatalog(t, cat, "bookworm-backports-6.12"), kernelstest.FromCatalog(t, cat, "experimental")}
	src := t.TempDir()
	require.NoError(t, kmod.WriteSource(src))
	results, err := All(context.Background(), ks, src, Options{OutDir: t.TempDir(), Jobs: 1})
	require.NoError(t, err)
	for i, r := range results {
		k := ks[i]
		t.Run(k.Name, func(t *testing.T) {
			require.Equal(t, outcome.Pass, r.Outcome, "%s: %v\n%s", r.Compiler, r.FirstError, r.Log)
			info, err := kmod.ModInfo(r.Ko)
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(info["vermagic"], k.Release+" "), "vermagic %q is not for %s", info["vermagic"], k.Release)
			missing := HostMissing(k)
			if len(missing) > 0 {
				assert.Contains(t, r.Compiler, "build root", "the host lacks %s", toolList(missing))
			}
			t.Logf("kmatrix-evidence %s compiler=%q needs=%q host_missing=%q setup=%s make=%s root_created=%v",
				k.Name, r.Compiler, toolList(Needs(k)), toolList(missing), r.Setup, r.Duration, r.BuildRootCreated)
		})
	}
}

func TestRootSuites(t *testing.T) {
	for suite, want := range map[string][]string{
		"trixie":             {"trixie", "trixie", "trixie-updates", "trixie-security"},
		"trixie-backports":   {"trixie", "trixie", "trixie-updates", "trixie-security", "trixie-backports"},
		"bookworm-backports": {"bookworm", "bookworm", "bookworm-updates", "bookworm-security", "bookworm-backports"},
		"experimental":       {"sid", "sid", "experimental"},
		"sid":                {"sid", "sid"},
	} {
		base, suites := rootSuites(suite)
		assert.Equal(t, want, append([]string{base}, suites...), suite)
	}
}

func TestMissingTool(t *testing.T) {
	assert.Equal(t, "pahole", missingTool("  BTF [M] /tmp/m/kmatrix.ko\n/bin/sh: 1: pahole: not found\nmake[2]: *** [...] Error 127\n"))
	assert.Equal(t, "as", missingTool("x86_64-linux-gnu-gcc-14: fatal error: cannot execute 'as': posix_spawnp: No such file or directory\ncompilation terminated.\n"))
	assert.Equal(t, "", missingTool("kmatrix.c:3:1: error: unknown type name 'foo'\n"))
	assert.True(t, versionAtLeast("1.30", "1.24"))
	assert.False(t, versionAtLeast("1.24", "1.30"))
	assert.True(t, versionAtLeast("1.30", "1.30"))
}
