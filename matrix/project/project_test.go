package project

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/kernels"
)

func TestStarterParses(t *testing.T) {
	opts, err := Parse("/repo/kmatrix.yaml", Starter)
	require.NoError(t, err)
	assert.Equal(t, "default", opts.Catalog)
	assert.Equal(t, 10*time.Minute, opts.Timeout)
	assert.Equal(t, "/repo/report", opts.OutDir)
	assert.Empty(t, opts.Expectations)
}

// TestParseShippedCatalog: a catalog kmatrix ships is named, not a path
// next to the project file.
func TestParseShippedCatalog(t *testing.T) {
	for _, name := range kernels.ShippedNames {
		opts, err := Parse(filepath.Join(t.TempDir(), FileName), []byte("kernels:\n  catalog: "+name+"\n"))
		require.NoError(t, err)
		assert.Equal(t, name, opts.Catalog)
	}
	assert.Contains(t, kernels.ShippedNames, "series-arm64")
}

func TestParse(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "probe.o"), []byte("x"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "driver"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "check"), []byte("x"), 0o755))
	file := filepath.Join(dir, FileName)
	opts, err := Parse(file, []byte(`
kernels:
  catalog: series
  names: [linux-6.1, linux-7.3]
  arch: amd64
payloads:
  builtin: []
  bpf: probe.o
  kmod: [driver]
  gotest: [./..., example.com/x/probe]
  gotest_args: -test.run=TestX -test.count=2
  check: ./check --expect 3
  files: ["probe.o:/kmatrix/probe.o"]
  no_fire: [handle_rare]
timeout: 3m
parallel: 2
expectations:
  - kernel: "< 6.6"
    check: "*/attach"
    outcome: attach-error
    reason: tcx needs Linux 6.6
`))
	require.NoError(t, err)
	assert.Equal(t, "series", opts.Catalog)
	assert.Equal(t, "amd64", opts.Arch)
	assert.Equal(t, []string{"linux-6.1", "linux-7.3"}, opts.Kernels)
	assert.Equal(t, []string{}, opts.Payloads, "builtin: [] means none")
	assert.Equal(t, []string{filepath.Join(dir, "probe.o")}, opts.BPFObjects)
	assert.Equal(t, []string{filepath.Join(dir, "driver")}, opts.KmodDirs)
	assert.Equal(t, []string{dir + "/...", "example.com/x/probe"}, opts.GoTests)
	assert.Equal(t, []string{"-test.run=TestX", "-test.count=2"}, opts.GoTestArgs)
	assert.Equal(t, []string{filepath.Join(dir, "check"), "--expect", "3"}, opts.CheckCmd)
	assert.Equal(t, []string{filepath.Join(dir, "probe.o") + ":/kmatrix/probe.o"}, opts.Files)
	assert.Equal(t, []string{"handle_rare"}, opts.NoFire)
	assert.Equal(t, 3*time.Minute, opts.Timeout)
	assert.Equal(t, 2, opts.Parallel)
	require.Len(t, opts.Expectations, 1)
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown field", "kernels:\n  catalog: default\n  kernel: [x]\n", "kmatrix.yaml:3: kernels.kernel: unknown field; known: arch, catalog, names"},
		{"twice", "timeout: 1m\ntimeout: 2m\n", "kmatrix.yaml:2: timeout: given twice (also on line 1)"},
		{"bad timeout", "\ntimeout: soon\n", `kmatrix.yaml:2: timeout: "soon": want a positive duration`},
		{"bad parallel", "parallel: -1\n", "kmatrix.yaml:1: parallel"},
		{"missing object", "payloads:\n  bpf: [nope.o]\n", "kmatrix.yaml:2: payloads.bpf: nope.o: no such file or directory"},
		{"bad expectation", "expectations:\n  - kernel: x\n", "kmatrix.yaml:2"},
		{"top level", "payload:\n  bpf: x\n", "kmatrix.yaml:1: payload: unknown field"},
		{"empty", "", "the file is empty; `kmatrix init` writes a starter"},
		{"not a mapping", "- a\n", "want a mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(filepath.Join(t.TempDir(), FileName), []byte(tc.yaml))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestFind(t *testing.T) {
	root := t.TempDir()
	sub := filepath.Join(root, "a", "b")
	require.NoError(t, os.MkdirAll(sub, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n"), 0o644))
	assert.Equal(t, "", Find(sub), "none up to the module root")
	require.NoError(t, os.WriteFile(filepath.Join(root, FileName), Starter, 0o644))
	assert.Equal(t, filepath.Join(root, FileName), Find(sub))
	require.NoError(t, os.WriteFile(filepath.Join(root, "a", "go.mod"), []byte("module y\n"), 0o644))
	assert.Equal(t, "", Find(sub), "a nested module's root stops the search")
}
