package guestagent

import (
	"context"
	_ "embed"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/gobin"
)

//go:embed agent.sha256
var sums string

// TestCommittedAgentUpToDate rebuilds kmatrix-guest and compares it with
// the committed, embedded one: it fails when its source (or a dependency)
// changed without `make generate`.
func TestCommittedAgentUpToDate(t *testing.T) {
	s, err := gobin.ParseSums(sums)
	require.NoError(t, err)
	assert.Equal(t, s.SHA256[Name], gobin.Sum(binary), "the embedded agent does not match agent.sha256: run make generate")
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("rebuilding the agent needs the go command")
	}
	ctx := context.Background()
	v, err := gobin.GoVersion(ctx)
	require.NoError(t, err)
	if v != s.GoVersion {
		t.Skipf("the committed agent was built by %s and this is %s: Go releases build different bytes, so only the same release can tell whether it is stale", s.GoVersion, v)
	}
	b, err := gobin.Build(ctx, ".", "../cmd/kmatrix-guest")
	require.NoError(t, err)
	assert.Equal(t, gobin.Sum(binary), gobin.Sum(b), "kmatrix-guest is stale: its source changed; run make generate")
}

func TestWrite(t *testing.T) {
	p, err := Write(t.TempDir())
	require.NoError(t, err)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, binary, b)
	out, err := exec.Command(p, "-h").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "usage: kmatrix-guest")
}
