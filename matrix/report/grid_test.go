package report

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/kmatrix/kmatrix/matrix/outcome"
)

func TestWorksSince(t *testing.T) {
	// Kernels are given out of order: "works since" follows versions, not
	// the order of the report's list.
	kernels := []Kernel{{Name: "sid", Version: "7.2.13"}, {Name: "bullseye", Version: "5.10.262"}, {Name: "trixie", Version: "6.12.118"}, {Name: "bookworm", Version: "6.1.192"}}
	for _, c := range []struct {
		name string
		// outcomes on 5.10, 6.1, 6.12, 7.2; "" is no cell (not run)
		on   [4]outcome.Outcome
		want string
	}{
		{"passes everywhere", [4]outcome.Outcome{outcome.Pass, outcome.Pass, outcome.Pass, outcome.Pass}, "all"},
		{"tcx: attach errors before 6.6", [4]outcome.Outcome{outcome.AttachError, outcome.AttachError, outcome.Pass, outcome.Pass}, "6.12.118"},
		{"skipped on old kernels", [4]outcome.Outcome{outcome.Skip, outcome.Pass, outcome.Pass, outcome.Pass}, "6.1.192"},
		{"not run on the oldest", [4]outcome.Outcome{"", outcome.Pass, outcome.Pass, outcome.Pass}, "6.1.192"},
		{"broke on 6.12, fixed on 7.2", [4]outcome.Outcome{outcome.Pass, outcome.Pass, outcome.Fail, outcome.Pass}, "7.2.13"},
		{"fails on the newest", [4]outcome.Outcome{outcome.Pass, outcome.Pass, outcome.Pass, outcome.Fail}, "—"},
		{"skipped on the newest", [4]outcome.Outcome{outcome.Pass, outcome.Pass, outcome.Pass, outcome.Skip}, "—"},
		{"not run on the newest", [4]outcome.Outcome{outcome.Pass, outcome.Pass, outcome.Pass, ""}, "—"},
		{"a kernel panic counts as a failure", [4]outcome.Outcome{outcome.KernelPanic, outcome.Pass, outcome.Pass, outcome.Pass}, "6.1.192"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &Report{Kernels: append([]Kernel(nil), kernels...)}
			for i, name := range []string{"bullseye", "bookworm", "trixie", "sid"} {
				if c.on[i] != "" {
					r.Cells = append(r.Cells, Cell{Kernel: name, Payload: "bpf", Check: "TestTCX", Outcome: c.on[i], Stage: "behave"})
				}
			}
			r.Finalize()
			assert.Equal(t, c.want, r.worksSince(r.cellIndex(), Column{Payload: "bpf", Check: "TestTCX"}))
		})
	}
}

func TestWorksSinceNamesAKernelWithoutVersion(t *testing.T) {
	r := &Report{Kernels: []Kernel{{Name: "old", Version: "5.10"}, {Name: "my-build"}}}
	r.Cells = []Cell{
		{Kernel: "old", Payload: "kmod", Check: "build", Outcome: outcome.BuildError, Stage: "build"},
		{Kernel: "my-build", Payload: "kmod", Check: "build", Outcome: outcome.Pass, Stage: "build"},
	}
	r.Finalize()
	assert.Equal(t, "my-build", r.worksSince(r.cellIndex(), Column{Payload: "kmod", Check: "build"}))
}

func TestOrientation(t *testing.T) {
	// More checks than kernels: a row per check; otherwise a row per kernel.
	assert.True(t, big(4, 30).checksAsRows())
	assert.True(t, big(4, 5).checksAsRows())
	assert.False(t, big(4, 4).checksAsRows(), "a tie keeps a row per kernel")
	assert.False(t, big(29, 16).checksAsRows(), "a series lane: a row per kernel")
}
