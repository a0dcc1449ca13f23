package matrix

import (
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFuzzTargetsInMakefile: every native fuzz target in the repository
// is run by `make fuzz`, so a new parser's fuzzer is not silently skipped.
func TestFuzzTargetsInMakefile(t *testing.T) {
	out, err := exec.Command("git", "-C", "..", "grep", "--untracked", "-n", "-E", `^func Fuzz[A-Za-z0-9_]+\(`, "--", "*_test.go").Output()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) { // 1: no match, which the count below catches
		t.Skipf("not in a git checkout (%v): cannot list the fuzz targets", err)
	}
	mk, err := os.ReadFile("../Makefile")
	require.NoError(t, err)
	re := regexp.MustCompile(`^([^:]+)/[^/:]+:\d+:func (Fuzz\w+)\(`)
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		m := re.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		n++
		assert.Contains(t, string(mk), "./"+m[1]+":"+m[2], "make fuzz runs %s of ./%s", m[2], m[1])
	}
	assert.GreaterOrEqual(t, n, 8)
}
