package report

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// cell returns a pointer to the cell id of r, failing the test when absent.
func cell(t *testing.T, r *Report, id string) *Cell {
	t.Helper()
	for i := range r.Cells {
		if r.Cells[i].ID() == id {
			return &r.Cells[i]
		}
	}
	t.Fatalf("no cell %s", id)
	return nil
}

func TestDiffOfIdenticalReportsIsEmpty(t *testing.T) {
	d := Diff(sample(t), sample(t))
	assert.True(t, d.Empty())
	assert.False(t, d.Regressed())
	require.NoError(t, d.Err())
	assert.Equal(t, 25, d.Unchanged)
	assert.Contains(t, d.Markdown(), "Every one of the 25 cells has the same outcome")
}

func TestDiffFindsInjectedRegression(t *testing.T) {
	base, cur := sample(t), sample(t)
	c := cell(t, cur, "debian-bookworm/bpf/TestExecEvents")
	c.Outcome = outcome.Fail
	c.Evidence.Message = "exec_test.go:48: expected 3 exec events, got 0"
	cur.Kernels[1].Version, cur.Kernels[1].PackageVersion = "6.1.200", "6.1.200-1"

	d := Diff(base, cur)
	require.True(t, d.Regressed())
	require.Len(t, d.Regressions, 1)
	r := d.Regressions[0]
	assert.Equal(t, Change{Kernel: "debian-bookworm", Payload: "bpf", Check: "TestExecEvents", Was: outcome.Pass, Now: outcome.Fail,
		Evidence: c.Evidence, KernelChange: "version 6.1.192 → 6.1.200, package version 6.1.192-1 → 6.1.200-1"}, r)
	assert.Empty(t, d.Fixes)
	assert.Empty(t, d.Changed)
	require.Len(t, d.KernelChanges, 1)
	assert.Equal(t, "debian-bookworm", d.KernelChanges[0].Name)

	err := d.Err()
	require.True(t, errors.Is(err, ErrRegression))
	assert.Contains(t, err.Error(), "debian-bookworm/bpf/TestExecEvents (pass → fail)")

	md := d.Markdown()
	assert.Contains(t, md, "## ❌ kmatrix diff: 1 regression, 1 updated kernel")
	assert.Contains(t, md, "| debian-bookworm<br><sub>version 6.1.192 → 6.1.200, package version 6.1.192-1 → 6.1.200-1</sub> | bpf | TestExecEvents | ✅ pass | ❌ fail | exec\\_test.go:48: expected 3 exec events, got 0 |")

	var txt bytes.Buffer
	require.NoError(t, d.WriteText(&txt))
	assert.Contains(t, txt.String(), "debian-bookworm/bpf/TestExecEvents: pass → fail: exec_test.go:48")
}

func TestDiffClassifiesChanges(t *testing.T) {
	base, cur := sample(t), sample(t)
	// A skip that now fails is a regression too: the check ran and broke.
	cell(t, cur, "debian-bookworm/bpf/TestTCX").Outcome = outcome.AttachError
	// A fix.
	cell(t, cur, "debian-trixie/bpf/TestExecEvents").Outcome = outcome.Pass
	// One failure for another: neither regression nor fix.
	cell(t, cur, "debian-bookworm/kmod/build").Outcome = outcome.Timeout
	// Infra errors either way are never the payload's regression or fix.
	cell(t, cur, "debian-sid/bpf/load").Outcome = outcome.InfraError
	cell(t, base, "debian-trixie/kmod/unload").Outcome = outcome.InfraError // was infra, now splat
	// A cell that is gone, one that is new, a kernel that is new.
	cur.Cells = slicesDelete(cur.Cells, "debian-bullseye/kmod/unload")
	cur.Kernels = append(cur.Kernels, Kernel{Name: "local-6.18", Version: "6.18.1", Release: "6.18.1-custom"})
	cur.Cells = append(cur.Cells, Cell{Kernel: "local-6.18", Payload: "bpf", Check: "load", Outcome: outcome.LoadError, Stage: "load"})
	cur.Finalize()
	require.NoError(t, cur.Validate())

	d := Diff(base, cur)
	ids := func(cs []Change) (s []string) {
		for _, c := range cs {
			s = append(s, c.Kernel+"/"+c.Payload+"/"+c.Check+" "+string(c.Was)+"→"+string(c.Now))
		}
		return s
	}
	assert.Equal(t, []string{"debian-bookworm/bpf/TestTCX skip→attach-error"}, ids(d.Regressions))
	assert.Equal(t, []string{"debian-trixie/bpf/TestExecEvents fail→pass"}, ids(d.Fixes))
	assert.Equal(t, []string{"debian-bookworm/kmod/build build-error→timeout"}, ids(d.Changed))
	assert.Equal(t, []string{"debian-trixie/kmod/unload infra-error→splat", "debian-sid/bpf/load pass→infra-error"}, ids(d.Infra))
	require.Len(t, d.Removed, 1)
	assert.Equal(t, "debian-bullseye/kmod/unload", d.Removed[0].ID())
	require.Len(t, d.Added, 1)
	assert.Equal(t, "local-6.18/bpf/load", d.Added[0].ID())
	require.Len(t, d.AddedKernels, 1)
	assert.Equal(t, "local-6.18", d.AddedKernels[0].Name)
	assert.Equal(t, "1 regression, 1 fix, 1 other change, 2 infrastructure changes, 1 new kernel, 1 new cell, 1 removed cell", d.Headline())

	md := d.Markdown()
	for _, w := range []string{"### ❌ Regressions (1)", "### ✅ Fixes (1)", "### 🔄 Other changes (1)",
		"### 🛠️ Infrastructure changes (not the payload's; never counted as a regression or fix) (2)",
		"| local-6.18 | new: 6.18.1 (6.18.1-custom) |", "<summary>New cells (1, 1 not passing)</summary>"} {
		assert.Contains(t, md, w)
	}
}

func TestDiffOnlyInfraIsNotARegression(t *testing.T) {
	base, cur := sample(t), sample(t)
	for i := range cur.Cells {
		cur.Cells[i].Outcome = outcome.InfraError // QEMU missing: every cell is ours
	}
	d := Diff(base, cur)
	assert.False(t, d.Regressed())
	require.NoError(t, d.Err())
	assert.Len(t, d.Infra, 25)
}

func TestDiffMarkdownStaysUnderGitHubLimit(t *testing.T) {
	base, cur := big(40, 60), big(40, 60)
	for i := range cur.Cells {
		cur.Cells[i].Outcome = outcome.Fail
		cur.Cells[i].Evidence.Message = strings.Repeat("long message ", 30)
	}
	md := Diff(base, cur).Markdown()
	assert.LessOrEqual(t, len(md), MaxMarkdown)
	assert.Contains(t, md, "### ❌ Regressions (2400)")
	assert.Contains(t, md, "more, left out to fit GitHub's comment limit")
}

func slicesDelete(cs []Cell, id string) []Cell {
	out := cs[:0:0]
	for _, c := range cs {
		if c.ID() != id {
			out = append(out, c)
		}
	}
	return out
}
