package expect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/kmatrix/kmatrix/matrix/outcome"
	"github.com/kmatrix/kmatrix/matrix/report"
)

func sample(t *testing.T) *report.Report {
	t.Helper()
	r, err := report.Read("../report/testdata/sample.json")
	require.NoError(t, err)
	return r
}

func cell(t *testing.T, r *report.Report, kernel, payload, check string) report.Cell {
	t.Helper()
	for _, c := range r.Cells {
		if c.Kernel == kernel && c.Payload == payload && c.Check == check {
			return c
		}
	}
	t.Fatalf("no cell %s/%s/%s", kernel, payload, check)
	return report.Cell{}
}

func TestParseAndApply(t *testing.T) {
	s, err := Parse("expect.yml", []byte(`
expectations:
  - kernel: "< 6.1"
    payload: bpf
    check: load
    outcome: load-error
    reason: needs 6.1
  - kernel: debian-book*
    payload: kmod
    check: build
    reason: known compiler bug
  - kernel: ">= 6.12, < 7"
    payload: "bpf"
    check: "Test*Events"
    outcome: [load-error, attach-error]
    reason: wrong outcome on purpose
  - kernel: "= 7.2"
    payload: bpf
    check: load
    outcome: load-error
    reason: stale, it passes now
`))
	require.NoError(t, err)
	require.Len(t, s, 4)
	assert.Equal(t, "expect.yml:3", s[0].Source())

	r := sample(t)
	s.Apply(r)

	c := cell(t, r, "debian-bullseye", "bpf", "load")
	require.NotNil(t, c.Expected)
	assert.True(t, c.ExpectedFailure(), "5.10's load-error is expected by < 6.1")
	assert.False(t, c.Failing())
	assert.Equal(t, outcome.LoadError, c.Outcome, "the cell keeps its real outcome")
	assert.Equal(t, "needs 6.1", c.Expected.Reason)

	c = cell(t, r, "debian-bookworm", "kmod", "build")
	assert.True(t, c.ExpectedFailure(), "no outcome given: any failure")

	c = cell(t, r, "debian-trixie", "bpf", "TestExecEvents")
	require.NotNil(t, c.Expected)
	assert.False(t, c.ExpectedFailure(), "a fail is not a load-error or attach-error")
	assert.True(t, c.Failing())

	c = cell(t, r, "debian-sid", "bpf", "load")
	assert.True(t, c.UnexpectedPass(), "7.2's load passes: the expectation is stale")
	assert.True(t, c.Failing())

	assert.Nil(t, cell(t, r, "debian-bookworm", "bpf", "load").Expected, "6.1 is not < 6.1")

	ex := r.Expectations()
	assert.Equal(t, 2, ex.Expected)
	assert.Len(t, ex.UnexpectedPasses, 1)
	assert.Len(t, ex.Unmet, 1)

	// The marks survive report.json and show in every view.
	dir := t.TempDir()
	require.NoError(t, r.Write(dir))
	back, err := report.Read(filepath.Join(dir, "report.json"))
	require.NoError(t, err)
	assert.Equal(t, r.Cells, back.Cells)
	for file, want := range map[string][]string{
		"report.md":   {"(🚫)", "❗✅", "unexpected pass: **debian-sid/bpf/load**", "expected: needs 6.1"},
		"junit.xml":   {`<skipped message="expected load-error (needs 6.1:`, `type="unexpected-pass"`},
		"report.html": {"cell o-load-error xf", "cell o-pass xp", "unexpected pass"},
	} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		require.NoError(t, err)
		for _, w := range want {
			assert.Contains(t, string(b), w, file)
		}
	}

	var text strings.Builder
	require.NoError(t, r.WriteText(&text, false))
	assert.Contains(t, text.String(), "(LOAD)")
	assert.Contains(t, text.String(), "XPASS")
	assert.Contains(t, text.String(), "[expected: needs 6.1]")
	assert.Contains(t, text.String(), "(2 as expected, 1 unexpected pass)")

	// Applying again replaces the marks: an empty set clears them.
	Set(nil).Apply(r)
	for _, c := range r.Cells {
		assert.Nil(t, c.Expected)
	}
}

func TestFromNode(t *testing.T) {
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte("kernels: [a]\nexpectations:\n  - kernel: debian-sid\n    reason: r\n"), &doc))
	root := doc.Content[0]
	s, err := FromNode("kmatrix.yaml", root.Content[3])
	require.NoError(t, err)
	require.Len(t, s, 1)
	assert.Equal(t, "kmatrix.yaml:3", s[0].Source())

	require.NoError(t, yaml.Unmarshal([]byte("expectations:\n  kernel: x\n"), &doc))
	_, err = FromNode("kmatrix.yaml", doc.Content[0].Content[1])
	assert.EqualError(t, err, "kmatrix.yaml:2: expectations: want a list of expectations, each a mapping with kernel, payload, check, outcome and reason")
}

// Every bad input is refused with its file, line, field and what to do.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, err string }{
		{"", "e.yml:1: expectations: the file is empty; want a list of expectations (kernel, payload, check, outcome, reason)"},
		{"- kernel: a\n  reason: r\n  colour: red\n", "e.yml:3: expectations: [0].colour: unknown field; known: kernel, payload, check, outcome, reason"},
		{"- kernel: a\n", "e.yml:1: expectations: [0].reason: missing: say why"},
		{"- payload: p\n  reason: r\n- reason: r\n", "e.yml:3: expectations: [1]: selects every cell"},
		{"- kernel: a\n  reason: r\n  outcome: pass\n", "e.yml:3: expectations: [0].outcome: pass is not expected"},
		{"- kernel: a\n  reason: r\n  outcome: [fail, infra-error]\n", "e.yml:3: expectations: [0].outcome: infra-error is kmatrix's own failure"},
		{"- kernel: a\n  reason: r\n  outcome: broken\n", `e.yml:3: expectations: [0].outcome: unknown outcome "broken"`},
		{"- kernel: \"< six\"\n  reason: r\n", `e.yml:1: expectations: [0].kernel: "< six" is not a version range`},
		{"- kernel: a\n  kernel: b\n  reason: r\n", "e.yml:2: expectations: [0].kernel: given twice (also on line 1)"},
		{"- kernel: a\n  reason: [r]\n", "e.yml:2: expectations: [0].reason: want a non-empty string"},
		{"kernels: []\n", `e.yml:1: expectations: kernels: unknown top-level field`},
		{"- kernel: a\n  reason: r\n  check: \"a\n", "e.yml:3: expectations: not valid YAML"},
		{"- just a string\n", "e.yml:1: expectations: [0]: want a mapping"},
	} {
		_, err := Parse("e.yml", []byte(tc.in))
		if assert.Error(t, err, tc.in) {
			assert.Contains(t, err.Error(), tc.err, tc.in)
		}
	}
	_, err := Load(filepath.Join(t.TempDir(), "missing.yml"))
	assert.ErrorContains(t, err, "missing.yml: no such file")
}

func TestRanges(t *testing.T) {
	for _, tc := range []struct {
		rng, ver string
		in       bool
	}{
		{"< 6.6", "6.1.192", true},
		{"< 6.6", "6.6.3", false},
		{"< 6.6", "5.10.262", true},
		{"<= 6.6", "6.6.3", true},
		{"> 6.6", "6.6.3", false},
		{"> 6.6", "6.12.1", true},
		{">= 5.15, < 6.1", "5.15.0", true},
		{">= 5.15, < 6.1", "6.1.0", false},
		{">= 5.15, < 6.1", "5.10.262", false},
		{"= 6.1", "6.1.192", true},
		{"== 6.1.192", "6.1.192", true},
		{"!= 6.1", "6.12.1", true},
		{"< 7", "6.12.1", true},
		{"< 7", "7.2.13", false},
		{"< 6.6", "", false},
	} {
		b, err := parseRange(tc.rng)
		require.NoError(t, err, tc.rng)
		assert.Equal(t, tc.in, inRange(tc.ver, b), "%s in %q", tc.ver, tc.rng)
	}
}

func TestGlob(t *testing.T) {
	assert.True(t, glob("count_*").MatchString("count_ingress/attach"), "* crosses /")
	assert.True(t, glob("bpf:tcx_?probe*").MatchString("bpf:tcx_kprobe_x86_bpfel"))
	assert.False(t, glob("bpf").MatchString("bpf:tcx"), "anchored")
	assert.True(t, glob("a.b").MatchString("a.b"))
	assert.False(t, glob("a.b").MatchString("axb"), ". is literal")
}

func TestUnused(t *testing.T) {
	s, err := Parse("e.yml", []byte("- kernel: debian-bullseye\n  payload: bpf\n  check: load\n  reason: r\n- kernel: debian-*\n  payload: renamed\n  reason: r\n"))
	require.NoError(t, err)
	u := s.Unused(sample(t))
	require.Len(t, u, 1)
	assert.Equal(t, "e.yml:5", u[0].Source())
}
