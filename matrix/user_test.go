package matrix

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
	"github.com/kmatrix/kmatrix/matrix/guest"
	"github.com/kmatrix/kmatrix/matrix/outcome"
	"github.com/kmatrix/kmatrix/vmtest"
)

// TestProgramFactsRunAndVerifier: the guest's verifier figures and run
// statistics become the cell facts report diff and the HTML report read.
func TestProgramFactsRunAndVerifier(t *testing.T) {
	n, ns := uint64(4), uint64(1000)
	f := programFacts(guest.ProgramResult{Program: "p", Stage: guest.StageRun, Outcome: outcome.Pass,
		Facts: guest.Facts{RunCount: &n, RunTimeNS: &ns, Trigger: "exec", Variant: "xdp generic",
			Verifier: &guest.VerifierStats{InsnsProcessed: 12, InsnLimit: 1_000_000, TotalStates: 3, VerificationUS: 40, JitedBytes: 77}}})
	assert.Equal(t, map[string]string{
		"run_count": "4", "run_time_ns": "1000", "mean_run_ns": "250", "trigger": "exec", "variant": "xdp generic",
		"insns_processed": "12", "insn_limit": "1000000", "total_states": "3", "verification_us": "40", "jited_bytes": "77",
	}, f)
	zero := uint64(0)
	f = programFacts(guest.ProgramResult{Facts: guest.Facts{RunCount: &zero, RunTimeNS: &zero}})
	assert.Equal(t, map[string]string{"run_count": "0", "run_time_ns": "0"}, f, "0 runs is a fact; no mean")
}

func TestValidateAttachAndFiles(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "agent")
	require.NoError(t, os.WriteFile(bin, []byte("x"), 0o755))
	ok := Options{Attach: []string{"up=/usr/bin/agent:main.run"}, Files: []string{bin + ":/usr/bin/agent"}}
	require.NoError(t, ok.validate())
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Attach: []string{"up"}}, "--attach up: want PROGRAM=TARGET"},
		{Options{Files: []string{bin}}, "want HOST:GUEST"},
		{Options{Files: []string{bin + ":relative"}}, "the guest path absolute"},
		{Options{Files: []string{filepath.Join(dir, "nope") + ":/x"}}, "is not a readable file on the host"},
	} {
		err := tc.o.validate()
		if assert.Error(t, err) {
			assert.Contains(t, err.Error(), tc.want)
		}
	}
}

// TestRunObjectsBatch: a run's objects share one agent process per kernel,
// and one that kills it (killer.o SIGKILLs kmatrix-guest from a kprobe)
// costs nothing but its own cells: the objects after it ran again one
// process each, and its death is a cell of its own with the evidence.
func TestRunObjectsBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("boots every catalog kernel in QEMU; run without -short")
	}
	ks := kernelstest.Default(t)
	rep, err := Run(context.Background(), Options{
		BPFObjects: []string{"guest/testdata/tc.o", "guest/testdata/killer.o", "guest/testdata/noprograms.o", "guest/testdata/fentry_module.o"},
		OutDir:     t.TempDir(),
	})
	require.NoError(t, err, "no infra-error")
	for _, k := range ks {
		died := cellsOf(rep, k.Name, "bpf:killer", "agent")
		if assert.Len(t, died, 1, k.Name) {
			assert.Equal(t, outcome.Fail, died[0].Outcome, k.Name)
			assert.Contains(t, died[0].Evidence.Message, "signal 9", k.Name)
			assert.Contains(t, died[0].Evidence.Message, "in an agent process of its own", k.Name)
			assert.Equal(t, "2", died[0].Evidence.Facts["attempts"], k.Name)
		}
		for _, check := range []string{"kill_agent/load", "kill_agent/attach"} {
			c := cellsOf(rep, k.Name, "bpf:killer", check)
			if assert.Len(t, c, 1, "%s %s", k.Name, check) {
				assert.Equal(t, outcome.Pass, c[0].Outcome, "%s %s", k.Name, check)
				assert.Contains(t, c[0].Evidence.Facts["shared_agent_died"], "signal 9")
			}
		}
		for _, check := range []string{"tc_legacy/attach", "classifier_legacy/attach", "tc_legacy/run"} {
			c := cellsOf(rep, k.Name, "bpf:tc", check)
			if assert.Len(t, c, 1, "%s %s", k.Name, check) {
				assert.Equal(t, outcome.Pass, c[0].Outcome, "%s %s: %s", k.Name, check, c[0].Evidence.Message)
			}
		}
		// An object before the killer keeps its evidence from the shared
		// worker: verifier figures and run counts.
		load := cellsOf(rep, k.Name, "bpf:tc", "tc_legacy/load")
		run := cellsOf(rep, k.Name, "bpf:tc", "tc_legacy/run")
		if assert.Len(t, load, 1) && assert.Len(t, run, 1) {
			assert.NotEmpty(t, load[0].Evidence.Facts["insns_processed"], k.Name)
			assert.NotEmpty(t, run[0].Evidence.Facts["run_count"], k.Name)
			assert.NotEmpty(t, run[0].Evidence.Facts["mean_run_ns"], k.Name)
		}
		bad := cellsOf(rep, k.Name, "bpf:noprograms", "load")
		if assert.Len(t, bad, 1, k.Name) {
			assert.Equal(t, outcome.LoadError, bad[0].Outcome)
			assert.Contains(t, bad[0].Evidence.Message, "no BPF programs")
		}
		fm := cellsOf(rep, k.Name, "bpf:fentry_module", "fentry_misc/load")
		if assert.Len(t, fm, 1, k.Name) {
			want := outcome.Pass
			switch {
			case !k.Version.AtLeast(5, 11):
				want = outcome.LoadError
			case len(k.Modules) == 0:
				want = outcome.InfraError
			}
			assert.Equal(t, want, fm[0].Outcome, "%s: %s", k.Name, fm[0].Evidence.Message)
		}
	}
}

// objectCells: an object's last attempt gives its cells; a worker that
// died on it, or overran its limit, is an "agent" cell with the evidence,
// and an object a dead guest never reached says so.
func TestObjectCells(t *testing.T) {
	out := strings.Join([]string{
		`{"object":"/k/a.o","attempt":1,"begin":{"worker":10}}`,
		`{"object":"/k/a.o","attempt":1,"result":{"program":"p","stage":"load","outcome":"pass","facts":{"verifier":{"insns_processed":7}}}}`,
		`{"object":"/k/a.o","attempt":1,"end":{}}`,
		`{"object":"/k/s.o","attempt":1,"begin":{"alone":true,"worker":11}}`,
		`{"object":"/k/s.o","attempt":1,"result":{"program":"stop","stage":"attach","outcome":"pass"}}`,
		`{"object":"/k/s.o","attempt":1,"end":{"died":"killed after overrunning the object's time limit of 20s","timed_out":true,"stderr":"goroutine 1"}}`,
	}, "\n")
	g := GuestRun{Kernel: &kernels.Kernel{Name: "k"}, Missing: outcome.Fail, Why: "it crashed",
		Results: map[string]vmtest.CommandResult{"bpf:a/batch": {Name: "bpf:a/batch", Stdout: []byte(out)}}}

	a := objectCells(g, "bpf:a", "bpf:a/batch", "/k/a.o")
	require.Len(t, a, 1)
	assert.Equal(t, "p/load", a[0].Check)
	assert.Equal(t, "7", a[0].Evidence.Facts["insns_processed"])

	s := objectCells(g, "bpf:s", "bpf:a/batch", "/k/s.o")
	require.Len(t, s, 2)
	assert.Equal(t, "agent", s[1].Check)
	assert.Equal(t, outcome.Timeout, s[1].Outcome)
	assert.Contains(t, s[1].Evidence.Message, "in an agent process of its own")
	assert.Contains(t, s[1].Evidence.Log, "goroutine 1")

	// Never reached: the guest went down before it.
	g.Missing, g.Why, g.KernelLog = outcome.KernelPanic, "the kernel panicked during command bpf:a/batch", "Kernel panic - not syncing"
	n := objectCells(g, "bpf:n", "bpf:a/batch", "/k/n.o")
	require.Len(t, n, 1)
	assert.Equal(t, outcome.KernelPanic, n[0].Outcome)
	assert.Equal(t, "load", n[0].Check)
	assert.Contains(t, n[0].Evidence.Message, "the kernel panicked")
	assert.Contains(t, n[0].Evidence.Log, "Kernel panic")
}
