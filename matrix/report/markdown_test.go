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
	// Every kernel row shows release, version, package version and compiler.
	assert.Contains(t, md, "| **debian-bookworm**<br><sub>6.1.0-56-cloud-amd64</sub> | 6.1.192<br><sub>6.1.192-1</sub> | gcc-12 |")
	// Rows hold the outcome symbols, with footnotes on the cells that did not pass.
	assert.Contains(t, md, "| ✅ | ✅ | ✅ | ⏭️[^2] | 🔨[^3] | — | — | — |")
	assert.Contains(t, md, "[^3]: **debian-bookworm · kmod · build** 🔨 build-error at build: kmatrix\\_mod.c:57:17: error: too few arguments to function 'class\\_create'")
	// A verifier log shows its tail: the verdict is at the end.
	assert.Contains(t, md, "    unknown func bpf_loop#181\n")
	assert.Contains(t, md, "7 earlier log lines in report.html and report.json")
	// The legend and the summary line.
	assert.Contains(t, md, "✅ 19 pass · ⏭️ 1 skip · ❌ 1 fail · 🔨 1 build-error · 🚫 1 load-error · 🟠 1 splat · 💥 1 kernel-panic")
	assert.Contains(t, md, "💥 kernel-panic / oops")
	// Each table row has as many cells as the header.
	var rows []string
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "|") {
			rows = append(rows, l)
		}
	}
	require.Len(t, rows, 2+4)
	for _, l := range rows {
		assert.Equal(t, 11, strings.Count(strings.ReplaceAll(l, `\|`, ""), "|")-1, l)
	}
}

func TestMarkdownEscapesPipesAndNewlines(t *testing.T) {
	r := sample(t)
	c := cell(t, r, "debian-trixie/bpf/TestExecEvents")
	c.Check = "TestPipe|Check"
	c.Evidence.Message = "want a | b\ngot *c* <script>alert(1)</script>\n\nsecond paragraph"
	c.Evidence.Log = "```\nfenced inside the log\n````\n"
	r.Kernels[2].Release = "6.12|evil"
	r.Finalize()
	md := r.Markdown()

	assert.Contains(t, md, `TestPipe\|Check`, "a pipe in a header would split the column")
	assert.NotContains(t, md, "TestPipe|Check")
	assert.Contains(t, md, `6.12\|evil`)
	assert.Contains(t, md, `want a \| b got \*c\* \<script\>alert(1)\</script\> second paragraph`,
		"a message stays one line, with markup escaped")
	// The log's own fences cannot close the code block early.
	assert.Contains(t, md, "    `````text\n    ```\n    fenced inside the log\n    ````\n    `````\n")
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "|") {
			assert.Equal(t, 12, strings.Count(strings.ReplaceAll(l, `\|`, ""), "|")-1, "the renamed check is a 9th column: %s", l)
		}
	}
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
