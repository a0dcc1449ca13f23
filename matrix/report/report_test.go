package report

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden from the current renderers")

// sample reads testdata/sample.json: a realistic run over the four Debian
// kernels (5.10, 6.1, 6.12, 7.2) with the bpf and kmod payloads and a mix
// of outcomes: a load error with a verifier log, a build error with
// file:line, a skip that names the version it needs, a failed assertion, a
// WARN splat at unload, a kernel panic with its oops trace, and checks
// that did not run after an earlier stage failed. The file lists kernels
// and cells in reverse and carries a wrong summary on purpose: Read must
// sort and recompute.
func sample(t testing.TB) *Report {
	t.Helper()
	r, err := Read(filepath.Join("testdata", "sample.json"))
	require.NoError(t, err)
	return r
}

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "no golden file: run `go test ./matrix/report -run %s -update` and review the diff", t.Name())
	require.Equal(t, string(want), string(got), "%s changed: if on purpose, rerun with -update and review the diff", path)
}
