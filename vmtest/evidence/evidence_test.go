package evidence

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFactHelper(t *testing.T) {
	if os.Getenv("EVIDENCE_HELPER") != "1" {
		t.Skip("run by TestFactRoundTrip in a child process")
	}
	Fact(t, "verified_insns", 1234)
	Fact(t, "message", "a \"quoted\" value\nwith a newline")
	t.Log("an ordinary line")
}

// TestFactRoundTrip prints facts from a real test and reads them back from
// its real output.
func TestFactRoundTrip(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run", "^TestFactHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "EVIDENCE_HELPER=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	facts, rest := Parse(string(out))
	assert.Equal(t, map[string]string{"verified_insns": "1234", "message": "a \"quoted\" value\nwith a newline"}, facts)
	assert.Contains(t, rest, "an ordinary line")
	assert.NotContains(t, rest, marker)
}

func TestParseKeepsLookalikes(t *testing.T) {
	facts, rest := Parse("    x_test.go:3: kmatrix-fact not json\n")
	assert.Empty(t, facts)
	assert.Equal(t, "    x_test.go:3: kmatrix-fact not json\n", rest)
}
