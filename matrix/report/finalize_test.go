package report

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

func TestFinalizeOrdersKernelsByVersionNotString(t *testing.T) {
	r := sample(t)
	var names, versions []string
	for _, k := range r.Kernels {
		names = append(names, k.Name)
		versions = append(versions, k.Version)
	}
	// As strings "6.12.118" < "6.1.192" and "5.10" sorts after "5.9": numbers, not text.
	assert.Equal(t, []string{"5.10.262", "6.1.192", "6.12.118", "7.2.13"}, versions)
	assert.Equal(t, []string{"debian-bullseye", "debian-bookworm", "debian-trixie", "debian-sid"}, names)
}

func TestFinalizeOrdersColumnsByStage(t *testing.T) {
	r := sample(t)
	var cols []string
	for _, c := range r.Columns() {
		cols = append(cols, c.Payload+"/"+c.Check)
	}
	assert.Equal(t, []string{
		"bpf/load", "bpf/attach", "bpf/TestExecEvents", "bpf/TestTCX",
		"kmod/build", "kmod/load", "kmod/TestProcEntry", "kmod/unload",
	}, cols)
	// Cells follow kernel order, then the columns.
	assert.Equal(t, "debian-bullseye/bpf/load", r.Cells[0].ID())
	assert.Equal(t, "debian-bullseye/kmod/build", r.Cells[1].ID())
	assert.Equal(t, "debian-sid/kmod/TestProcEntry", r.Cells[len(r.Cells)-1].ID())
}

func TestFinalizeColumnStageIsTheMajorityStage(t *testing.T) {
	// A behaviour check that failed at load on one kernel stays a behaviour
	// column: it does not jump before "load".
	r := &Report{Kernels: []Kernel{{Name: "a", Version: "5.10"}, {Name: "b", Version: "6.1"}, {Name: "c", Version: "6.12"}}}
	for _, k := range []string{"a", "b", "c"} {
		r.Cells = append(r.Cells, Cell{Kernel: k, Payload: "bpf", Check: "load", Outcome: outcome.Pass, Stage: "load"})
	}
	r.Cells = append(r.Cells,
		Cell{Kernel: "a", Payload: "bpf", Check: "Events", Outcome: outcome.LoadError, Stage: "load"},
		Cell{Kernel: "b", Payload: "bpf", Check: "Events", Outcome: outcome.Pass, Stage: "behave"},
		Cell{Kernel: "c", Payload: "bpf", Check: "Events", Outcome: outcome.Pass, Stage: "behave"},
	)
	r.Finalize()
	cols := r.Columns()
	require.Len(t, cols, 2)
	assert.Equal(t, "load", cols[0].Check)
	assert.Equal(t, "Events", cols[1].Check)
	assert.Equal(t, outcome.StageBehave, cols[1].Stage)
}

func TestFinalizeRecomputesSummary(t *testing.T) {
	r := sample(t) // the file claims 999 passes
	assert.Equal(t, 19, r.Summary[outcome.Pass])
	assert.Equal(t, 1, r.Summary[outcome.KernelPanic])
	assert.Equal(t, 0, r.Summary[outcome.Timeout], "every outcome is present, zero included")
	assert.Len(t, r.Summary, len(outcome.All))
	total := 0
	for _, n := range r.Summary {
		total += n
	}
	assert.Equal(t, len(r.Cells), total)
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"5.10.262", "6.1.192", -1},
		{"6.1.192", "6.12.118", -1},
		{"6.12.118", "6.12.9", 1},
		{"7.2", "7.2.0", 0},
		{"6.1", "weird", -1},
		{"weird", "6.1", 1},
		{"a", "b", -1},
	} {
		assert.Equal(t, c.want, compareVersions(c.a, c.b), "%s vs %s", c.a, c.b)
	}
}
