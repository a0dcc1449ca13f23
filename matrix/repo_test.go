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

// Every `run:` step of every workflow is one command: a Makefile target
// that exists (`make [-C DIR] TARGET`, DIR being kmatrix's checkout in the
// reusable workflow), or a kmatrix subcommand that a test of
// matrix/cmd/kmatrix runs through the real command line. So the workflows
// cannot rot without `make` or `go test` noticing.
func TestWorkflowStepsAreTested(t *testing.T) {
	mk, err := os.ReadFile("../Makefile")
	require.NoError(t, err)
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z0-9-]*):`).FindAllStringSubmatch(string(mk), -1) {
		targets[m[1]] = true
	}
	tested := testedSubcommands(t)
	require.True(t, tested["run"] && tested["report merge"], "the scan of the CLI tests found nothing: %v", tested)

	files, err := filepath.Glob("../.github/workflows/*.yml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, wf := range files {
		b, err := os.ReadFile(wf)
		require.NoError(t, err)
		var doc struct {
			Jobs map[string]struct {
				Uses  string `yaml:"uses"`
				Steps []struct {
					Name string `yaml:"name"`
					Run  string `yaml:"run"`
				} `yaml:"steps"`
			} `yaml:"jobs"`
		}
		require.NoError(t, yaml.Unmarshal(b, &doc), wf)
		for job, j := range doc.Jobs {
			for _, s := range j.Steps {
				if s.Run == "" {
					continue
				}
				where := fmt.Sprintf("%s job %s step %q", filepath.Base(wf), job, s.Name)
				cmd := strings.TrimSpace(s.Run)
				if !assert.NotRegexp(t, `[\n;&|]`, cmd, "%s: one command per step, got %q", where, cmd) {
					continue
				}
				f := strings.Fields(cmd)
				switch f[0] {
				case "make":
					f = f[1:]
					for len(f) > 1 && f[0] == "-C" {
						f = f[2:]
					}
					if assert.NotEmpty(t, f, "%s: make with no target", where) {
						assert.True(t, targets[f[0]], "%s calls `make %s`, which the Makefile does not have", where, f[0])
					}
				case "kmatrix":
					sub := f[1]
					if len(f) > 2 && !strings.HasPrefix(f[2], "-") && tested[f[1]+" "+f[2]] {
						sub = f[1] + " " + f[2]
					}
					assert.True(t, tested[sub], "%s runs `kmatrix %s`, which no test in matrix/cmd/kmatrix runs (dispatch with []string{%q, ...})", where, sub, f[1])
				default:
					t.Errorf("%s: run steps must call a Makefile target or a kmatrix command, got %q", where, cmd)
				}
			}
		}
	}
}

// testedSubcommands scans the tests of matrix/cmd/kmatrix for the argument
// lists they pass to dispatch ([]string{"report", "merge", ...}) and
// returns the subcommands they name: "run", "report merge".
func testedSubcommands(t *testing.T) map[string]bool {
	files, err := filepath.Glob("cmd/kmatrix/*_test.go")
	require.NoError(t, err)
	lit := regexp.MustCompile(`\[\]string\{"([a-z-]+)"(?:,\s*"([a-z-]+)")?`)
	out := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		if !strings.Contains(string(b), "dispatch(") {
			continue
		}
		for _, m := range lit.FindAllStringSubmatch(string(b), -1) {
			out[m[1]] = true
			if m[2] != "" {
				out[m[1]+" "+m[2]] = true
			}
		}
	}
	return out
}

// README's caller of the reusable workflow is .github/examples/caller.yml
// (which make lint runs actionlint on), at most 15 lines, and passes only
// inputs that kmatrix.yml declares.
func TestREADMECallerExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	caller, err := os.ReadFile("../.github/examples/caller.yml")
	require.NoError(t, err)
	assert.True(t, strings.Contains(string(readme), "```yaml\n"+string(caller)+"```"), "README.md shows .github/examples/caller.yml verbatim, in a ```yaml block")
	assert.LessOrEqual(t, strings.Count(string(caller), "\n"), 15, "the caller example is at most 15 lines")

	var wf struct {
		On struct {
			WorkflowCall struct {
				Inputs map[string]any `yaml:"inputs"`
			} `yaml:"workflow_call"`
		} `yaml:"on"`
	}
	b, err := os.ReadFile("../.github/workflows/kmatrix.yml")
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &wf))
	require.NotEmpty(t, wf.On.WorkflowCall.Inputs)
	var doc struct {
		Jobs map[string]struct {
			Uses string         `yaml:"uses"`
			With map[string]any `yaml:"with"`
		} `yaml:"jobs"`
	}
	require.NoError(t, yaml.Unmarshal(caller, &doc))
	calls := 0
	for _, j := range doc.Jobs {
		if !strings.Contains(j.Uses, ".github/workflows/kmatrix.yml") {
			continue
		}
		calls++
		for k := range j.With {
			assert.Contains(t, wf.On.WorkflowCall.Inputs, k, "the caller passes %q, which kmatrix.yml does not take", k)
		}
	}
	assert.Equal(t, 1, calls, "the caller calls kmatrix.yml")
}

// The Makefile targets the workflows run (shard-plan, summary; plan and
// merge for a hand-made fan-out) run here too, on real inputs, so they
// cannot rot unnoticed.
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

	shardOut := filepath.Join(dir, "shard_output")
	run([]string{"GITHUB_OUTPUT=" + shardOut}, "shard-plan", "COUNT=3")
	b, err = os.ReadFile(shardOut)
	require.NoError(t, err)
	assert.Equal(t, "shards=[1,2,3]\n", string(b))

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
