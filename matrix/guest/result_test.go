package guest

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	code := 3
	in := []ProgramResult{
		{Program: "p", Section: "xdp", Type: "XDP", Stage: StageLoad, Outcome: outcome.Pass, Message: "loaded",
			Facts: Facts{VerifiedInsns: &InsnCount{N: 12, Known: true}}, DurationMS: 1.5},
		{Program: "p", Section: "xdp", Type: "XDP", Stage: StageLoad, Outcome: outcome.Pass,
			Facts: Facts{VerifiedInsns: &InsnCount{}}},
		{Program: "q", Section: "tcx/ingress", Stage: StageAttach, Outcome: outcome.AttachError, Message: "m", Log: "a\nb",
			Facts: Facts{AttachPoint: "tcx ingress on lo", Errno: "ENOTSUPP", ErrnoValue: 524, Class: ClassNotSupported, RequiresKernel: "6.6"}},
		{Stage: StageCheck, Outcome: outcome.Fail, Facts: Facts{ExitCode: &code}},
	}
	var buf bytes.Buffer
	for _, r := range in {
		require.NoError(t, Encode(&buf, r))
	}
	assert.Equal(t, len(in), strings.Count(buf.String(), "\n"), "one line per result")
	assert.Contains(t, buf.String(), `"verified_insns":12`)
	assert.Contains(t, buf.String(), `"verified_insns":"unknown"`)

	out, err := Decode(&buf)
	require.NoError(t, err)
	assert.Equal(t, in, out)
}

func TestDecodeBadInput(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"console noise", `{"program":"p","stage":"load","outcome":"pass"}` + "\n\n[    1.234] random: crng init done\n", "line 3: not a program result"},
		{"unknown outcome", `{"program":"p","stage":"load","outcome":"great"}`, `line 1: unknown outcome "great"`},
		{"no outcome", `{}`, `line 1: unknown outcome ""`},
		{"bad verified_insns", `{"outcome":"pass","facts":{"verified_insns":"lots"}}`, `verified_insns "lots": want a number or "unknown"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tc.in))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestInsnCountJSON(t *testing.T) {
	for _, tc := range []struct {
		c    InsnCount
		json string
	}{{InsnCount{N: 7, Known: true}, "7"}, {InsnCount{}, `"unknown"`}} {
		b, err := json.Marshal(tc.c)
		require.NoError(t, err)
		assert.Equal(t, tc.json, string(b))
		var back InsnCount
		require.NoError(t, json.Unmarshal(b, &back))
		assert.Equal(t, tc.c, back)
		assert.Equal(t, strings.Trim(tc.json, `"`), tc.c.String())
	}
}

func TestStageCell(t *testing.T) {
	for s, want := range map[Stage]outcome.Stage{StageLoad: outcome.StageLoad, StageAttach: outcome.StageAttach,
		StageDetach: outcome.StageUnload, StageRun: outcome.StageBehave, StageCheck: outcome.StageBehave, StageUnload: outcome.StageUnload} {
		assert.Equal(t, want, s.Cell(), s)
		assert.True(t, s.Cell().Valid(), s)
	}
}

// A program at 0 runs is kmatrix's limit, not never-ran, only when the
// traffic its hook needs was not sent.
func TestUntriggered(t *testing.T) {
	failed := errors.New("socket: address family not supported by protocol")
	trig := triggerRun{missed: map[string]error{trafficIPv6: failed}}
	assert.Empty(t, untriggered(&loaded{}, trig), "a hook every part of the workload reaches")
	assert.Empty(t, untriggered(&loaded{traffic: trafficIPv4}, trig), "its traffic was sent")
	assert.Contains(t, untriggered(&loaded{traffic: trafficIPv6}, trig), "the hook sees only IPv6 over loopback, which kmatrix could not send: socket: address family")
	assert.Contains(t, untriggered(&loaded{fireErr: failed}, triggerRun{}), "sending what the hook sees failed: socket")
}
