package vmtest

import (
	"context"
	_ "embed"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/gobin"
)

//go:embed init.sha256
var initSums string

// TestCommittedInitUpToDate rebuilds the guest init and compares it with
// the committed, embedded one: it fails when vminit or package wire
// changed without `make generate` (or the binary was edited by hand).
func TestCommittedInitUpToDate(t *testing.T) {
	sums, err := gobin.ParseSums(initSums)
	require.NoError(t, err)
	assert.Equal(t, sums.SHA256["vminit/kmatrix-init"], gobin.Sum(initImage), "the embedded init does not match init.sha256: run make generate")
	assert.Equal(t, sums.SHA256["vminit/kmatrix-init-arm64"], gobin.Sum(initImageArm64), "the embedded arm64 init does not match init.sha256: run make generate")
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("rebuilding the init needs the go command")
	}
	ctx := context.Background()
	v, err := gobin.GoVersion(ctx)
	require.NoError(t, err)
	if v != sums.GoVersion {
		t.Skipf("the committed init was built by %s and this is %s: Go releases build different bytes, so only the same release can tell whether it is stale", sums.GoVersion, v)
	}
	b, err := gobin.Build(ctx, ".", "./vminit", false)
	require.NoError(t, err)
	assert.Equal(t, gobin.Sum(initImage), gobin.Sum(b), "vminit/kmatrix-init is stale: its source changed; run make generate")
	b, err = gobin.BuildFor(ctx, "arm64", ".", "./vminit", false)
	require.NoError(t, err)
	assert.Equal(t, gobin.Sum(initImageArm64), gobin.Sum(b), "vminit/kmatrix-init-arm64 is stale: its source changed; run make generate")
}
