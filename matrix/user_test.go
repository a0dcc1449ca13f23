package matrix

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/matrix/guest"
	"github.com/kmatrix/kmatrix/matrix/outcome"
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
