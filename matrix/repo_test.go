package matrix

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/kmatrix/kmatrix/matrix/report"
)

// readmeCommands returns the commands of README.md's "Two commands" block:
// the first runs the matrix, the second the tests.
func readmeCommands(t *testing.T) []string {
	b, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(b), "## Two commands")
	require.True(t, ok, "README.md has no '## Two commands' section")
	block := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(after)
	require.NotNil(t, block, "README.md's 'Two commands' section has no ```sh block")
	var cmds []string
	for _, l := range strings.Split(block[1], "\n") {
		cmd, _, _ := strings.Cut(l, "#")
		if cmd = strings.TrimSpace(cmd); cmd != "" {
			cmds = append(cmds, cmd)
		}
	}
	require.Len(t, cmds, 2, "README.md must show exactly two commands: the matrix and the tests")
	return cmds
}

func TestCIRunsTheREADMETestCommand(t *testing.T) {
	cmds := readmeCommands(t)
	assert.Equal(t, "make matrix", cmds[0])
	ci, err := os.ReadFile("../.ci/run")
	require.NoError(t, err)
	var lines []string
	for _, l := range strings.Split(string(ci), "\n") {
		lines = append(lines, strings.TrimSpace(l))
	}
	assert.Contains(t, lines, cmds[1], ".ci/run must run README.md's test command %q on a line of its own", cmds[1])
}

// Every `run:` step of the workflows calls a Makefile target that exists,
// so the workflows cannot rot without `make` (which CI runs here) noticing.
func TestWorkflowStepsCallMakeTargets(t *testing.T) {
	mk, err := os.ReadFile("../Makefile")
	require.NoError(t, err)
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z0-9-]*):`).FindAllStringSubmatch(string(mk), -1) {
		targets[m[1]] = true
	}
	for _, wf := range []string{"ci.yml", "matrix.yml"} {
		b, err := os.ReadFile("../.github/workflows/" + wf)
		require.NoError(t, err)
		var doc struct {
			Jobs map[string]struct {
				Steps []struct {
					Name string `yaml:"name"`
					Run  string `yaml:"run"`
				} `yaml:"steps"`
			} `yaml:"jobs"`
		}
		require.NoError(t, yaml.Unmarshal(b, &doc), wf)
		runs := 0
		for job, j := range doc.Jobs {
			for _, s := range j.Steps {
				if s.Run == "" {
					continue
				}
				runs++
				f := strings.Fields(s.Run)
				if assert.True(t, len(f) >= 2 && f[0] == "make", "%s job %s step %q: run steps must call a Makefile target, got %q", wf, job, s.Name, s.Run) {
					assert.True(t, targets[f[1]], "%s job %s step %q calls `make %s`, which the Makefile does not have", wf, job, s.Name, f[1])
				}
			}
		}
		assert.NotZero(t, runs, wf)
	}
}

// The Makefile targets the scheduled workflow runs (plan, merge, summary)
// run here too, on real inputs, so they cannot rot unnoticed.
func TestWorkflowMakeTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("runs make and go run; run without -short")
	}
	run := func(env []string, args ...string) string {
		cmd := exec.Command("make", append([]string{"--no-print-directory", "-C", ".."}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "make %v:\n%s", args, out)
		return string(out)
	}
	dir := t.TempDir()

	ghOut := filepath.Join(dir, "github_output")
	run([]string{"GITHUB_OUTPUT=" + ghOut}, "plan")
	b, err := os.ReadFile(ghOut)
	require.NoError(t, err)
	assert.Regexp(t, `^kernels=\["debian-bullseye","debian-bookworm","debian-trixie","debian-sid"\]\n$`, string(b))

	// Two shards of a real-shaped report, merged, diffed against the whole.
	whole, err := report.Read("report/testdata/sample.json")
	require.NoError(t, err)
	for i, k := range whole.Kernels {
		shard := &report.Report{Schema: report.Schema, GeneratedAt: whole.GeneratedAt, Host: whole.Host, Kernels: []report.Kernel{k}}
		for _, c := range whole.Cells {
			if c.Kernel == k.Name {
				shard.Cells = append(shard.Cells, c)
			}
		}
		require.NoError(t, shard.Write(filepath.Join(dir, "shards", fmt.Sprintf("shard-%d", i))))
	}
	out := filepath.Join(dir, "merged")
	run([]string{"GITHUB_OUTPUT=" + ghOut}, "merge", "SHARDS="+filepath.Join(dir, "shards"), "REPORT="+out, "BASELINE="+filepath.Join("matrix/report/testdata/sample.json"))
	merged, err := report.Read(filepath.Join(out, "report.json"))
	require.NoError(t, err)
	assert.Equal(t, len(whole.Cells), len(merged.Cells))
	assert.FileExists(t, filepath.Join(out, "diff.md"))
	b, err = os.ReadFile(ghOut)
	require.NoError(t, err)
	assert.Contains(t, string(b), "regressions=0\n")

	summary := filepath.Join(dir, "summary.md")
	run([]string{"GITHUB_STEP_SUMMARY=" + summary}, "summary", "REPORT="+out)
	b, err = os.ReadFile(summary)
	require.NoError(t, err)
	assert.Contains(t, string(b), "| check |")
}
