package main

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/matrix"
	"github.com/kmatrix/kmatrix/matrix/project"
)

func TestInitWritesAStarterOnce(t *testing.T) {
	dir := t.TempDir()
	require.Equal(t, exitOK, dispatch(context.Background(), []string{"init", dir}))
	b, err := os.ReadFile(filepath.Join(dir, project.FileName))
	require.NoError(t, err)
	assert.Equal(t, project.Starter, b)
	assert.Equal(t, exitUsage, dispatch(context.Background(), []string{"init", dir}), "never overwrites by accident")
	assert.Equal(t, exitOK, dispatch(context.Background(), []string{"init", "--force", dir}))
}

// Flags given on the command line win over the project file; the others
// come from it.
func TestFlagsOverTheProjectFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, project.FileName)
	require.NoError(t, os.WriteFile(file, []byte("kernels:\n  names: [debian-sid]\npayloads:\n  builtin: [bpf]\ntimeout: 3m\nout: out\n"), 0o644))
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var kernels listFlag
	var timeout time.Duration
	fs.Var(&kernels, "kernels", "")
	fs.DurationVar(&timeout, "timeout", 10*time.Minute, "")
	require.NoError(t, fs.Parse([]string{"--kernels", "debian-bullseye"}))
	opts, err := withProject(matrix.Options{Kernels: kernels, Timeout: timeout, OutDir: "report"}, file, fs, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []string{"debian-bullseye"}, opts.Kernels, "the flag")
	assert.Equal(t, []string{"bpf"}, opts.Payloads, "the file")
	assert.Equal(t, 3*time.Minute, opts.Timeout, "the file: --timeout was not given")
	assert.Equal(t, filepath.Join(dir, "out"), opts.OutDir)

	_, err = withProject(matrix.Options{}, filepath.Join(dir, "nope.yaml"), fs, io.Discard)
	assert.ErrorContains(t, err, "no such file; `kmatrix init` writes one")
	opts, err = withProject(matrix.Options{Kernels: []string{"x"}}, "none", fs, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []string{"x"}, opts.Kernels)
}
