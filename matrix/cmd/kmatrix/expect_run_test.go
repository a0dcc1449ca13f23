package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/kmatrix/kmatrix/kernels/version"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/kernels/kernelstest"
	"github.com/kmatrix/kmatrix/matrix/outcome"
	"github.com/kmatrix/kmatrix/matrix/report"
)

// A project whose object has a tcx program (Linux 6.6+) can be green: with
// an expectation for kernels < 6.6, kmatrix run exits 0 on the default
// kernels; without it, 1; and an expectation on a cell that passes is an
// unexpected pass, 1 again; and against a baseline that failed the same
// way, 0. Real kernels, the real object, the real CLI.
func TestRunExpectations(t *testing.T) {
	if testing.Short() {
		t.Skip("boots every default kernel, then one kernel three times; -short skips it")
	}
	ks := kernelstest.Default(t)
	ctx := context.Background()
	obj := "../../../bpf/testdata/tcx_kprobe_x86_bpfel.o"
	tcx := writeFile(t, "tcx.yml", `- kernel: "< 6.6"
  payload: "bpf:tcx_kprobe*"
  check: count_ingress/attach
  outcome: attach-error
  reason: tcx needs Linux 6.6
`)
	stale := writeFile(t, "stale.yml", `- kernel: "< 6.6"
  payload: "bpf:tcx_kprobe*"
  check: count_ingress/attach
  outcome: attach-error
  reason: tcx needs Linux 6.6
- kernel: debian-sid
  payload: "bpf:tcx_kprobe*"
  check: count_getpid/attach
  reason: "stale on purpose: kprobes attach everywhere"
`)
	// Only the first run needs every kernel; the others pick the one
	// kernel that shows their case.
	run := func(expectFile string, kernels ...string) (int, *report.Report) {
		out := t.TempDir()
		args := []string{"run", "--bpf", obj, "--out", out}
		if expectFile != "" {
			args = append(args, "--expect", expectFile)
		}
		for _, k := range kernels {
			args = append(args, "--kernels", k)
		}
		code := dispatch(ctx, args)
		rep, err := report.Read(filepath.Join(out, "report.json"))
		require.NoError(t, err)
		if len(kernels) == 0 {
			require.Len(t, rep.Kernels, len(ks))
		}
		return code, rep
	}
	find := func(rep *report.Report, kernel, check string) report.Cell {
		for _, c := range rep.Cells {
			if c.Kernel == kernel && c.Payload == "bpf:tcx_kprobe_x86_bpfel" && c.Check == check {
				return c
			}
		}
		t.Fatalf("no cell %s %s", kernel, check)
		return report.Cell{}
	}

	code, rep := run(tcx)
	assert.Equal(t, exitOK, code, "every failure is the declared tcx one")
	for _, k := range ks {
		c := find(rep, k.Name, "count_ingress/attach")
		if k.Version.Has(version.TCX) {
			assert.Equal(t, outcome.Pass, c.Outcome, k.Name)
			assert.Nil(t, c.Expected, k.Name)
		} else {
			assert.Equal(t, outcome.AttachError, c.Outcome, "%s keeps its real outcome", k.Name)
			require.NotNil(t, c.Expected, k.Name)
			assert.True(t, c.Expected.Met, k.Name)
			assert.Equal(t, "tcx needs Linux 6.6", c.Expected.Reason)
		}
	}

	old := ""
	for _, k := range ks {
		if !k.Version.Has(version.TCX) {
			old = k.Name
			break
		}
	}
	require.NotEmpty(t, old, "a default kernel before 6.6")
	code, rep = run("", old)
	assert.Equal(t, exitFailed, code, "without the expectation the tcx cell fails the run")
	assert.Equal(t, outcome.AttachError, find(rep, old, "count_ingress/attach").Outcome)
	assert.Nil(t, find(rep, old, "count_ingress/attach").Expected)

	// With a baseline that failed the same way, nothing is new: exit 0
	// (one kernel is enough to show it).
	base := t.TempDir()
	require.NoError(t, rep.Write(base))
	assert.Equal(t, exitOK, dispatch(ctx, []string{"run", "--bpf", obj, "--kernels", old, "--out", t.TempDir(),
		"--baseline", filepath.Join(base, "report.json")}), "an unchanged failure is not a regression")

	code, rep = run(stale, "debian-sid")
	assert.Equal(t, exitFailed, code, "an unexpected pass fails the run")
	c := find(rep, "debian-sid", "count_getpid/attach")
	assert.Equal(t, outcome.Pass, c.Outcome)
	assert.True(t, c.UnexpectedPass())
	assert.Len(t, rep.Expectations().UnexpectedPasses, 1)
}
