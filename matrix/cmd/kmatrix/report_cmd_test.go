package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/matrix/report"
)

func TestReportUsage(t *testing.T) {
	ctx := context.Background()
	assert.Equal(t, 2, dispatch(ctx, []string{"report"}))
	assert.Equal(t, 2, dispatch(ctx, []string{"report", "frob"}))
	assert.Equal(t, 2, dispatch(ctx, []string{"report", "diff", "a.json", "b.json", "c.json"}))
	assert.Equal(t, 2, dispatch(ctx, []string{"report", "merge"}), "no reports to merge")
}

// `report diff OLD NEW` and `report diff --baseline OLD NEW` agree: exit 3
// on a regression, 0 without one.
func TestReportDiff(t *testing.T) {
	ctx := context.Background()
	old := "../../report/testdata/sample.json"
	rep, err := report.Read(old)
	require.NoError(t, err)
	flipped := false
	for i, c := range rep.Cells {
		if c.Outcome == outcome.Pass {
			rep.Cells[i].Outcome = outcome.Fail
			flipped = true
			break
		}
	}
	require.True(t, flipped, "the sample has a passing cell to break")
	dir := t.TempDir()
	require.NoError(t, rep.Write(dir))
	regressed := filepath.Join(dir, "report.json")

	assert.Equal(t, 0, dispatch(ctx, []string{"report", "diff", old, old}))
	assert.Equal(t, 3, dispatch(ctx, []string{"report", "diff", old, regressed}))
	assert.Equal(t, 3, dispatch(ctx, []string{"report", "diff", "--baseline", old, regressed}))
	assert.Equal(t, 2, dispatch(ctx, []string{"report", "diff", old, filepath.Join(dir, "missing.json")}), "no NEW report: usage")
}

// A regression gate cannot pass by accident: a mistyped or unreadable OLD
// is a usage error unless a first run is declared with --allow-missing-baseline.
func TestReportDiffMissingBaseline(t *testing.T) {
	ctx := context.Background()
	cur := "../../report/testdata/sample.json"
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope", "report.json")
	assert.Equal(t, 2, dispatch(ctx, []string{"report", "diff", missing, cur}), "missing OLD")
	assert.Equal(t, 2, dispatch(ctx, []string{"report", "diff", "--baseline", missing, cur}), "missing --baseline")
	// A declared first run compares against nothing: the sample's failing
	// cells are all new, so they fail it (exit 1), and nothing regressed.
	assert.Equal(t, 1, dispatch(ctx, []string{"report", "diff", "--allow-missing-baseline", missing, cur}), "declared first run")
	garbage := filepath.Join(dir, "garbage.json")
	require.NoError(t, os.WriteFile(garbage, []byte("{not json"), 0o644))
	assert.Equal(t, 2, dispatch(ctx, []string{"report", "diff", "--allow-missing-baseline", garbage, cur}), "an unreadable OLD is never a first run")
}
