package matrix

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
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
