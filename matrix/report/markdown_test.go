package report

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

func TestMarkdownGolden(t *testing.T) {
	golden(t, "report.md", []byte(sample(t).Markdown()))
}

func TestMarkdownTable(t *testing.T) {
	md := sample(t).Markdown()
	assert.Contains(t, md, "## kmatrix: 5 of 25 cells failing on 4 kernels")
	// 8 checks on 4 kernels: a column per kernel, whose header shows its
	// release, package version and compiler; then "works since".
	assert.Contains(t, md, "| check | **debian-bullseye**<br><sub>5.10.0-46-cloud-amd64</sub><br><sub>5.10.262-1 · gcc-10</sub> | **debian-bookworm**<br><sub>6.1.0-56-cloud-amd64</sub><br><sub>6.1.192-1 · gcc-12</sub> |")
	assert.Contains(t, md, " | works since |\n|:--|:-:|:-:|:-:|:-:|:-:|\n")
	// A bold row per payload, then a row per check with its outcome
	// symbols, footnotes on the cells that did not pass, and since which
	// kernel it passes.
	assert.Contains(t, md, "\n| **bpf** | | | | | |\n| load | 🚫[^1] | ✅ | ✅ | ✅ | 6.1.192 |\n")
	assert.Contains(t, md, "\n| TestTCX | — | ⏭️[^3] | ✅ | ✅ | 6.12.118 |\n")
	assert.Contains(t, md, "\n| **kmod** | | | | | |\n| build | ✅ | 🔨[^4] | ✅ | ✅ | 6.12.118 |\n")
	assert.Contains(t, md, "\n| TestProcEntry | ✅ | — | ✅ | 💥[^5] | — |\n")
	assert.Contains(t, md, "[^4]: **debian-bookworm · kmod · build** 🔨 build-error at build: kmatrix\\_mod.c:57:17: error: too few arguments to function 'class\\_create'")
	// A verifier log shows its tail: the verdict is at the end.
	assert.Contains(t, md, "    unknown func bpf_loop#181\n")
	assert.Contains(t, md, "7 earlier log lines in report.html and report.json")
	// The legend and the summary line.
	assert.Contains(t, md, "✅ 19 pass · ⏭️ 1 skip · ❌ 1 fail · 🔨 1 build-error · 🚫 1 load-error · 🟠 1 splat · 💥 1 kernel-panic")
	assert.Contains(t, md, "💥 kernel-panic / oops")
	// Each table row has as many cells as the header.
	rows := mdRows(md)
	require.Len(t, rows, 2+2+8)
	for _, l := range rows {
		assert.Equal(t, 6, strings.Count(strings.ReplaceAll(l, `\|`, ""), "|")-1, l)
	}
}

func TestMarkdownTableRowPerKernel(t *testing.T) {
	// More kernels than checks: a row per kernel, and "works since" last.
	r := big(6, 3)
	r.Cells[0].Outcome = outcome.LoadError // kernel-00, bpf/TestCheck00
	r.Cells[len(r.Cells)-1].Outcome = outcome.Fail
	r.Finalize()
	md := r.Markdown()
	assert.Contains(t, md, "| kernel | version | compiler | bpf<br>TestCheck00 | bpf<br>TestCheck02 | kmod<br>TestCheck01 |\n")
	assert.Contains(t, md, "| **kernel-00**<br><sub>6.0.0-1-cloud-amd64</sub> | 6.0.7 | gcc-12 | 🚫 | ✅ | ✅ |\n")
	assert.Contains(t, md, "| _works since_ | | | 6.1.7 | all | — |\n")
	rows := mdRows(md)
	require.Len(t, rows, 2+6+1)
	for _, l := range rows {
		assert.Equal(t, 6, strings.Count(l, "|")-1, l)
	}
}

func TestMarkdownOf30ChecksHasShortLines(t *testing.T) {
	// The old layout's header of 30 checks was one 945-byte line. Now the
	// longest line is the header of 4 kernel columns, about 100 bytes per
	// kernel (name, release, package version, compiler); each check's row
	// is short.
	r := wide()
	md := r.Markdown()
	rows := mdRows(md)
	require.Len(t, rows, 2+6+30)
	assert.LessOrEqual(t, len(rows[0]), 20+100*len(r.Kernels), rows[0])
	for _, l := range rows[1:] {
		assert.LessOrEqual(t, len(l), 120, l)
	}
	for _, l := range strings.Split(md, "\n") {
		assert.LessOrEqual(t, len(l), 20+100*len(r.Kernels), l)
	}
	assert.Contains(t, md, "\n| count\\_ingress/attach | 🔌[^2] | 🔌[^3] | ✅ | ✅ | 6.12.118 |\n")
	// Every failure keeps its footnote.
	assert.Equal(t, 8, strings.Count(md, "\n[^"))
}

func mdRows(md string) []string {
	var rows []string
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "|") {
			rows = append(rows, l)
		}
	}
	return rows
}

func TestMarkdownStaysUnderGitHubLimit(t *testing.T) {
	for _, c := range []struct {
		name string
		r    *Report
		want string
	}{
		{"long logs", withLogs(big(4, 8), 400), "more log lines in report.html and report.json"},
		{"many failures", withLogs(big(20, 40), 400), "more cells with evidence are not footnoted here"},
		{"huge table", withLogs(big(60, 200), 10), "The table was cut to fit GitHub's comment limit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			md := c.r.Markdown()
			assert.LessOrEqual(t, len(md), MaxMarkdown)
			assert.Contains(t, md, c.want)
			assert.True(t, strings.HasPrefix(md, "## kmatrix: "))
		})
	}
}

func TestMarkdownAllPass(t *testing.T) {
	md := big(2, 3).Markdown()
	assert.Contains(t, md, "## kmatrix: all 6 cells pass on 2 kernels")
	assert.NotContains(t, md, "[^")
}

func TestMarkdownCleansTerminalEscapes(t *testing.T) {
	r := big(1, 1)
	r.Cells[0].Outcome = outcome.BuildError
	r.Cells[0].Evidence.Log = "\x1b[01;31m\x1b[Kerror:\x1b[m\x1b[K bad\r\nnext\x00line"
	md := r.Markdown()
	assert.Contains(t, md, "    error: bad\n    nextline\n")
	assert.NotContains(t, md, "\x1b")
}

func TestMarkdownNewerAvailable(t *testing.T) {
	r := sample(t)
	assert.NotContains(t, r.Markdown(), "Newer kernel available")
	r.Kernels[1].NewerAvailable = "6.1.192-3 (linux-image-6.1.0-57-cloud-amd64 in bookworm-security)"
	assert.Contains(t, r.Markdown(), "> Newer kernel available: debian-bookworm 6.1.192-1 tested, the archive has 6.1.192-3 (linux-image-6.1.0-57-cloud-amd64 in bookworm-security)")
}
