package guestagent

import (
	"context"
	"debug/elf"
	_ "embed"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/gobin"
)

//go:embed agent.sha256
var sums string

// TestCommittedBinariesUpToDate rebuilds every embedded binary and
// compares it with the committed one: it fails when a source (or a
// dependency) changed without `make generate`.
func TestCommittedBinariesUpToDate(t *testing.T) {
	s, err := gobin.ParseSums(sums)
	require.NoError(t, err)
	for name, b := range binaries {
		assert.Equal(t, s.SHA256[name], gobin.Sum(b.data), "the embedded %s does not match agent.sha256: run make generate", name)
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("rebuilding the agent needs the go command")
	}
	ctx := context.Background()
	v, err := gobin.GoVersion(ctx)
	require.NoError(t, err)
	if v != s.GoVersion {
		t.Skipf("the committed binaries were built by %s and this is %s: Go releases build different bytes, so only the same release can tell whether they are stale", s.GoVersion, v)
	}
	for name, b := range binaries {
		got, err := gobin.BuildFor(ctx, b.arch, ".", b.pkg, b.test)
		require.NoError(t, err)
		assert.Equal(t, gobin.Sum(b.data), gobin.Sum(got), "%s is stale: its source changed; run make generate", name)
	}
}

func TestWrite(t *testing.T) {
	p, err := Write(t.TempDir(), Agent)
	require.NoError(t, err)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, agent, b)
	out, err := exec.Command(p, "-h").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "usage: kmatrix-guest")
}

// TestWriteFor: the arm64 builds are aarch64 executables, written under
// the name of their amd64 twin in a directory of their own.
func TestWriteFor(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{Agent, BPFTests, KmodTests} {
		p, err := WriteFor(dir, name, "arm64")
		require.NoError(t, err)
		assert.Equal(t, filepath.Join(dir, "arm64", name), p)
		f, err := elf.Open(p)
		require.NoError(t, err)
		assert.Equal(t, elf.EM_AARCH64, f.Machine, name)
		f.Close()
	}
	_, err := WriteFor(dir, Agent, "riscv64")
	assert.EqualError(t, err, `guestagent: no binary "kmatrix-guest" for riscv64 guests`)
}

func TestWriteUnknown(t *testing.T) {
	_, err := Write(t.TempDir(), "nope")
	assert.EqualError(t, err, `guestagent: no binary "nope" for amd64 guests`)
}
