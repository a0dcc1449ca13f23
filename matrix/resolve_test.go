package matrix

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
)

// A catalog entry that cannot be resolved is that kernel's infra-error
// cell and the others run; an entry --kernels does not select is not
// resolved at all.
func TestRunUnresolvableKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a kernel in QEMU; run without -short")
	}
	good := kernelstest.Default(t)[0]
	var hits atomic.Int32
	mirror := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.NotFound(w, r) // a mirror without that suite
	}))
	defer mirror.Close()
	t.Setenv(kernels.EnvMirror, mirror.URL+"/debian")
	t.Setenv(kernels.EnvSecurityMirror, mirror.URL+"/debian-security")

	dir := t.TempDir()
	gdir := filepath.Join(dir, "good")
	require.NoError(t, os.MkdirAll(gdir, 0o755))
	require.NoError(t, os.Symlink(good.Vmlinuz, filepath.Join(gdir, "vmlinuz")))
	require.NoError(t, os.Symlink(good.Config, filepath.Join(gdir, "config")))
	catalog := filepath.Join(dir, "catalog.yaml")
	require.NoError(t, os.WriteFile(catalog, []byte("kernels:\n  - name: good\n    local: "+gdir+"\n  - name: typo\n    suite: bookwrom\n"), 0o644))

	t.Run("all", func(t *testing.T) {
		rep, err := Run(context.Background(), Options{Catalog: catalog, Payloads: []string{PayloadBPF}})
		require.Error(t, err)
		assert.ErrorContains(t, err, `kernel "typo"`)
		require.NotNil(t, rep, "a report, not an aborted run")
		typo := cellsOf(rep, "typo", PayloadKernel, "")
		require.Len(t, typo, 1)
		assert.Equal(t, outcome.InfraError, typo[0].Outcome)
		assert.Contains(t, typo[0].Evidence.Message, `resolving: kernel "typo": suite "bookwrom"`)
		goodCells := cellsOf(rep, "good", PayloadBPF, "")
		require.Len(t, goodCells, len(builtinChecks[PayloadBPF]))
		for _, c := range goodCells {
			assert.Equal(t, outcome.Pass, c.Outcome, "%s: %s", c.Check, c.Evidence.Message)
		}
	})
	t.Run("selected", func(t *testing.T) {
		hits.Store(0)
		rep, err := Run(context.Background(), Options{Catalog: catalog, Kernels: []string{"good"}, Payloads: []string{PayloadBPF}})
		require.NoError(t, err)
		assert.Empty(t, cellsOf(rep, "typo", PayloadKernel, ""))
		assert.Zero(t, hits.Load(), "the unselected entry was never resolved")
	})
}
