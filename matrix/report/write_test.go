package report

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteCreatesEveryFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out", "report") // created on demand
	r := sample(t)
	require.NoError(t, r.Write(dir))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		info, err := e.Info()
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o644), info.Mode().Perm(), e.Name())
		assert.Greater(t, info.Size(), int64(1000), e.Name())
	}
	// Exactly the four files: no temporary file left behind.
	assert.Equal(t, []string{JUnitFile, HTMLFile, JSONFile, MarkdownFile}, names)

	back, err := Read(filepath.Join(dir, JSONFile))
	require.NoError(t, err)
	assert.Equal(t, r, back)
}

func TestWriteRefusesInvalidReportAndKeepsTheOldOne(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, sample(t).Write(dir))
	before, err := os.ReadFile(filepath.Join(dir, JSONFile))
	require.NoError(t, err)

	bad := sample(t)
	bad.Cells[0].Kernel = "nowhere"
	err = bad.Write(dir)
	require.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), `write report: cells[`)
	assert.Contains(t, err.Error(), `kernel "nowhere" is not in kernels[]`)

	after, err := os.ReadFile(filepath.Join(dir, JSONFile))
	require.NoError(t, err)
	assert.Equal(t, string(before), string(after))
}

func TestWriteIntoAFileFails(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(f, nil, 0o644))
	err := sample(t).Write(f)
	require.Error(t, err)
	assert.Contains(t, err.Error(), f)
}

func TestWriteFinalizesAFreshReport(t *testing.T) {
	// What a driver builds: no schema, no time, cells in run order, no summary.
	r := &Report{
		Kernels: []Kernel{{Name: "b", Version: "6.12.1"}, {Name: "a", Version: "6.1.1"}},
		Cells: []Cell{
			{Kernel: "b", Payload: "bpf", Check: "load", Outcome: "pass", Stage: "load"},
			{Kernel: "a", Payload: "bpf", Check: "load", Outcome: "fail", Stage: "load"},
		},
	}
	require.NoError(t, r.Write(t.TempDir()))
	assert.Equal(t, Schema, r.Schema)
	assert.False(t, r.GeneratedAt.IsZero())
	assert.Equal(t, "a", r.Kernels[0].Name)
	assert.Equal(t, "a", r.Cells[0].Kernel)
	assert.Equal(t, 1, r.Summary["fail"])
}

func TestWriteEmptyReport(t *testing.T) {
	// A run whose every kernel failed to fetch still writes a report that says so.
	r := &Report{}
	dir := t.TempDir()
	require.NoError(t, r.Write(dir))
	md, err := os.ReadFile(filepath.Join(dir, MarkdownFile))
	require.NoError(t, err)
	assert.Contains(t, string(md), "## kmatrix: no cells ran on 0 kernels")
	back, err := Read(filepath.Join(dir, JSONFile))
	require.NoError(t, err)
	assert.Empty(t, back.Cells)
	html, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	require.NoError(t, err)
	assert.Contains(t, string(html), "no cells ran on 0 kernels")
}
