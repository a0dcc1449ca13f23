package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTextTable(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, sample(t).WriteText(&b, false))
	want := `KERNEL           VERSION   COMPILER  bpf/load  bpf/attach  bpf/TestExecEvents  bpf/TestTCX  kmod/build  kmod/load  kmod/TestProcEntry  kmod/unload
debian-bullseye  5.10.262  gcc-10    LOAD      -           -                   -            ok          ok         ok                  ok
debian-bookworm  6.1.192   gcc-12    ok        ok          ok                  skip         BUILD       -          -                   -
debian-trixie    6.12.118  gcc-14    ok        ok          FAIL                ok           ok          ok         ok                  SPLAT
debian-sid       7.2.13    gcc-16    ok        ok          ok                  ok           ok          ok         PANIC               -
5 of 25 cells failing on 4 kernels: 19 pass, 1 skip, 1 fail, 1 build-error, 1 load-error, 1 splat, 1 kernel-panic
`
	assert.True(t, strings.HasPrefix(b.String(), want), b.String())
	assert.Contains(t, b.String(), "  kernel-panic debian-sid/kmod/TestProcEntry: BUG: kernel NULL pointer dereference")
	assert.NotContains(t, b.String(), "\x1b[")
}

func TestTextTableColour(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, sample(t).WriteText(&b, true))
	s := b.String()
	assert.Contains(t, s, "\x1b[1;35mPANIC\x1b[0m")
	assert.Contains(t, s, "\x1b[32mok\x1b[0m")
	// Colour codes do not shift the columns: strip them and the table is the plain one.
	var plain bytes.Buffer
	require.NoError(t, sample(t).WriteText(&plain, false))
	assert.Equal(t, plain.String(), ansiRE.ReplaceAllString(s, ""))
}
