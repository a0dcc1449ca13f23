package matrix

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestProgressPlainLines(t *testing.T) {
	var buf bytes.Buffer
	p := NewProgress(&buf)
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p.start, p.now = clock, func() time.Time { return clock }
	p.Stage("debian-sid", StageFetch, "")
	clock = clock.Add(1500 * time.Millisecond)
	p.Stage("debian-sid", StageBuild, "gcc-16 build root")
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
	p.Stage("k", StageBoot, "") // must not panic: Run accepts no progress
	p.Cells("k", 1)
	p.Stop()
}
