package matrix

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProgressPlainLines(t *testing.T) {
	var buf bytes.Buffer
	p := NewProgress(&buf)
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p.start, p.now = clock, func() time.Time { return clock }
	p.Phase("debian-sid", PhaseFetch, "")
	clock = clock.Add(1500 * time.Millisecond)
	p.Phase("debian-sid", PhaseBuild, "gcc-16 build root")
	p.Cells("debian-sid", 3)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	assert.Len(t, lines, 2, "a bytes.Buffer is not a terminal: one plain line per change, none for cell counts")
	assert.Contains(t, lines[0], "03:04:05 debian-sid")
	assert.Contains(t, lines[1], "build")
	assert.Contains(t, lines[1], "1.5s")
	assert.Contains(t, lines[1], "gcc-16 build root")
	assert.NotContains(t, buf.String(), "\x1b[", "no escape sequences outside a terminal")
}

func TestProgressNil(t *testing.T) {
	var p *Progress
	p.Phase("k", PhaseBoot, "") // must not panic: Run accepts no progress
	p.Cells("k", 1)
	p.Stop()
}

// The guest's test events, in pieces as the serial port delivers them,
// move the kernel to the checks phase and count top-level results only.
func TestLiveCounter(t *testing.T) {
	var buf bytes.Buffer
	p := NewProgress(&buf)
	p.Phase("debian-sid", PhaseBoot, "")
	c := (&Env{progress: p}).Live("debian-sid", "bpf", false)
	// The testing package's own lines, as -test.v=test2json marks them.
	out := "\x16=== RUN   TestLoad\n\x16--- PASS: TestLoad (0.05s)\n\x16=== RUN   TestTaskState\n" +
		"--- PASS: TestTaskState output that only looks like a result\n" +
		"\x16--- PASS: TestTaskState/sub (0.01s)\n\x16--- FAIL: TestTaskState (0.58s)\n\x16--- SKIP: TestVariant (0.00s)\n\x16PASS\n"
	for i := 0; i < len(out); i += 7 {
		_, err := c.Write([]byte(out[i:min(i+7, len(out))]))
		require.NoError(t, err)
	}
	assert.Equal(t, 3, p.states["debian-sid"].cells, "PASS, FAIL and SKIP of top-level tests; not the subtest")
	assert.Equal(t, PhaseChecks, p.states["debian-sid"].phase)
	assert.Contains(t, buf.String(), "checks")
	assert.Contains(t, buf.String(), "bpf", "the payload whose checks run")
	p.SetCells("debian-sid", 16)
	assert.Equal(t, 16, p.states["debian-sid"].cells)
}
