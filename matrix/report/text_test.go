package report

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/matrix/outcome"
)

func TestTextTable(t *testing.T) {
	// 8 checks on 4 kernels: a row per check, a column per kernel.
	var b bytes.Buffer
	require.NoError(t, sample(t).WriteText(&b, false))
	want := `                  debian-bullseye  debian-bookworm  debian-trixie  debian-sid
                  5.10.262         6.1.192          6.12.118       7.2.13
CHECK             gcc-10           gcc-12           gcc-14         gcc-16      WORKS SINCE
bpf
  load            LOAD             ok               ok             ok          6.1.192
  attach          -                ok               ok             ok          6.1.192
  TestExecEvents  -                ok               FAIL           ok          7.2.13
  TestTCX         -                skip             ok             ok          6.12.118
kmod
  build           ok               BUILD            ok             ok          6.12.118
  load            ok               -                ok             ok          6.12.118
  TestProcEntry   ok               -                ok             PANIC       -
  unload          ok               -                SPLAT          -           -
5 of 25 cells failing on 4 kernels: 19 pass, 1 skip, 1 fail, 1 build-error, 1 load-error, 1 splat, 1 kernel-panic
`
	assert.True(t, strings.HasPrefix(b.String(), want), b.String())
	assert.Contains(t, b.String(), "  kernel-panic debian-sid/kmod/TestProcEntry: BUG: kernel NULL pointer dereference")
	assert.NotContains(t, b.String(), "\x1b[")
}

func TestTextTableRowPerKernel(t *testing.T) {
	// 2 checks on 4 kernels: a row per kernel, and "works since" last.
	r := sample(t)
	var keep []Cell
	for _, c := range r.Cells {
		if c.Payload == "bpf" && c.Check == "load" || c.Check == "build" {
			keep = append(keep, c)
		}
	}
	r.Cells = keep
	r.Finalize()
	var b bytes.Buffer
	require.NoError(t, r.WriteText(&b, false))
	want := `KERNEL           VERSION   COMPILER  bpf/load  kmod/build
debian-bullseye  5.10.262  gcc-10    LOAD      ok
debian-bookworm  6.1.192   gcc-12    ok        BUILD
debian-trixie    6.12.118  gcc-14    ok        ok
debian-sid       7.2.13    gcc-16    ok        ok
WORKS SINCE                          6.1.192   6.12.118
2 of 8 cells failing on 4 kernels: 6 pass, 1 build-error, 1 load-error
`
	assert.True(t, strings.HasPrefix(b.String(), want), b.String())
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

// textTableLines is the table part of WriteText's output: the lines before
// the summary line.
func textTableLines(t *testing.T, r *Report) []string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, r.WriteText(&b, false))
	out := b.String()
	i := strings.Index(out, headline(r)+": ")
	require.Positive(t, i, out)
	return strings.Split(strings.TrimSuffix(out[:i], "\n"), "\n")
}

func TestTextTableOf30ChecksFits120Columns(t *testing.T) {
	r := wide()
	require.Len(t, r.Columns(), 30)
	require.Len(t, r.Kernels, 4)
	lines := textTableLines(t, r)
	widest := 0
	for _, l := range lines {
		widest = max(widest, utf8.RuneCountInString(l))
	}
	assert.LessOrEqual(t, widest, textWidth, "the table:\n%s", strings.Join(lines, "\n"))
	// 3 header lines, a heading per payload (6), a row per check (30).
	assert.Len(t, lines, 3+6+30)
	table := strings.Join(lines, "\n")
	for _, k := range r.Kernels {
		assert.Contains(t, lines[0], k.Name)
		assert.Contains(t, lines[1], k.Version)
	}
	assert.Contains(t, table, "\n  count_ingress/attach                        ATTACH           ATTACH           ok             ok          6.12.118\n")
	assert.Contains(t, table, "\n  TestAttach/tcx_ingress                      skip             skip             ok             ok          6.12.118\n")
	assert.Contains(t, table, "\n  TestCounts/exec_events_are_counted_per_pid  ok               ok               ok             ok          all\n")
	assert.Contains(t, table, "\nkmod:versionerror\n  Build ")
	// Every failure keeps its line under the table, with its full name.
	var b bytes.Buffer
	require.NoError(t, r.WriteText(&b, false))
	assert.Contains(t, b.String(), "  attach-error debian-bookworm/bpf:tcx_kprobe_x86_bpfel/count_ingress/attach: tcx ingress on lo: requires Linux 6.6: tcx not supported\n")
	assert.Contains(t, b.String(), "  skip         debian-bullseye/gotest:./probe/TestAttach/tcx_ingress: probe_test.go:41: tcx needs Linux 6.6; this kernel is 5.10.262\n")
}

func TestTextTableShortensLongCheckNames(t *testing.T) {
	r := wide()
	long := "TestAttach/tcx_ingress_with_a_priority_and_a_replace_flag_on_the_loopback_device"
	for i := range r.Cells {
		if r.Cells[i].Check == "TestAttach/tcx_ingress" {
			r.Cells[i].Check = long
		}
	}
	r.Finalize()
	lines := textTableLines(t, r)
	for _, l := range lines {
		assert.LessOrEqual(t, utf8.RuneCountInString(l), textWidth, l)
	}
	table := strings.Join(lines, "\n")
	assert.NotContains(t, table, long)
	assert.Contains(t, table, "  TestAttach/tcx_ingres…on_the_loopback_device  skip ")
	// The line under the table names it in full.
	var b bytes.Buffer
	require.NoError(t, r.WriteText(&b, false))
	assert.Contains(t, b.String(), "debian-bullseye/gotest:./probe/"+long+": ")
}

func TestShorten(t *testing.T) {
	assert.Equal(t, "TestAttach/kprobe", shorten("TestAttach/kprobe", 17))
	assert.Equal(t, "Tes…robe", shorten("TestAttach/kprobe", 8))
	assert.Equal(t, 8, utf8.RuneCountInString(shorten("TestAttach/kprobe", 8)))
}

func TestTextCodeForEveryOutcome(t *testing.T) {
	for _, o := range outcome.All {
		assert.NotEmpty(t, textCode[o], "%s has no short code in the terminal table", o)
		assert.LessOrEqual(t, len(textCode[o]), len("ATTACH"), o)
		assert.NotEmpty(t, textColor[o], "%s has no colour in the terminal table", o)
	}
}
