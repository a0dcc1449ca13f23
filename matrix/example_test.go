package matrix

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
	"github.com/kmatrix/kmatrix/kernels/version"
	"github.com/kmatrix/kmatrix/matrix/report"
)

// exampleDir is the example project: its own module, a cilium/ebpf program
// and its Go tests, a kmatrix.yaml and a matrix test through the Go API.
const exampleDir = "../examples/tracer"

// exampleWant is what each of the example's tests must be on a kernel:
// tcx arrived in Linux 6.6, so its test skips before, saying so.
func exampleWant(t *testing.T, ver string) map[string]outcome.Outcome {
	tcx := outcome.Pass
	if v, err := version.Parse(ver); err == nil && !v.Has(version.TCX) {
		tcx = outcome.Skip
	} else {
		require.NoError(t, err)
	}
	return map[string]outcome.Outcome{"TestLoad": outcome.Pass, "TestExecCounted": outcome.Pass, "TestTCXCountsPackets": tcx}
}

// TestExampleWithKmatrixRun runs the example the way its README says, with
// `kmatrix run` in its directory (reading its kmatrix.yaml): one cell per
// test on every default kernel, the tcx test a skip with its reason below 6.6.
func TestExampleWithKmatrixRun(t *testing.T) {
	if testing.Short() {
		t.Skip("boots every default kernel in QEMU; run without -short")
	}
	kernelstest.Default(t)
	kmatrixDir, err := filepath.Abs("cmd/kmatrix")
	require.NoError(t, err)
	out := t.TempDir()
	cmd := exec.Command("go", "run", kmatrixDir, "run", "--out", out)
	cmd.Dir = exampleDir
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	assert.Contains(t, string(b), "project file")
	rep, err := report.Read(filepath.Join(out, "report.json"))
	require.NoError(t, err)
	require.Len(t, rep.Kernels, 4)
	for _, k := range rep.Kernels {
		for check, want := range exampleWant(t, k.Version) {
			cs := cellsOf(rep, k.Name, "gotest:./probe", check)
			require.Len(t, cs, 1, "%s %s", k.Name, check)
			assert.Equal(t, want, cs[0].Outcome, "%s %s: %s", k.Name, check, cs[0].Evidence.Message)
			if want == outcome.Skip {
				assert.Contains(t, cs[0].Evidence.Message, "tcx needs Linux 6.6", k.Name)
			}
		}
	}
}

// TestExampleWithGoTest runs the example's own `go test ./matrix/` (the Go
// API, matrix.Test) and reads its subtests from go test -json.
func TestExampleWithGoTest(t *testing.T) {
	if testing.Short() {
		t.Skip("boots every default kernel in QEMU; run without -short")
	}
	ks := kernelstest.Default(t)
	cmd := exec.Command("go", "test", "-count=1", "-json", "./matrix/")
	cmd.Dir = exampleDir
	cmd.Env = append(os.Environ(), "KMATRIX_REPORT_DIR=")
	b, err := cmd.Output()
	require.NoError(t, err, "%s", b)
	got := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var e struct{ Action, Test string }
		if json.Unmarshal(sc.Bytes(), &e) == nil && (e.Action == "pass" || e.Action == "skip" || e.Action == "fail") {
			got[e.Test] = e.Action
		}
	}
	for _, k := range ks {
		for check, want := range exampleWant(t, k.Version.String()) {
			name := "TestMatrix/" + k.Name + "/gotest:./probe/" + check
			assert.Equal(t, string(want), got[name], name)
		}
	}
}
