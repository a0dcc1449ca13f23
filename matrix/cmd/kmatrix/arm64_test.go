package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
	"github.com/kmatrix/kmatrix/matrix/report"
)

// TestRunArchArm64 is `kmatrix run --arch arm64`: the built-in BPF and
// module payloads on Debian's arm64 kernels (bookworm 6.1, sid 7.2),
// every cell passing, the rows marked arm64 in every rendering.
func TestRunArchArm64(t *testing.T) {
	if os.Getenv("KMATRIX_ARM64") == "" {
		t.Skip("arm64 guests run under TCG: run them with KMATRIX_ARM64=1 (make arm64)")
	}
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := runMain(context.Background(), []string{"--arch", "arm64", "--out", dir}, &out, &errb)
	require.Equal(t, 0, code, "%s\n%s", out.String(), errb.String())
	rep, err := report.Read(filepath.Join(dir, "report.json"))
	require.NoError(t, err)
	require.Len(t, rep.Kernels, 2)
	assert.Equal(t, "debian-bookworm-arm64", rep.Kernels[0].Name)
	assert.Equal(t, "debian-sid-arm64", rep.Kernels[1].Name)
	for _, k := range rep.Kernels {
		assert.Equal(t, "arm64", k.Arch)
	}
	payloads := map[string]int{}
	for _, c := range rep.Cells {
		payloads[c.Payload]++
		assert.Equal(t, outcome.Pass, c.Outcome, "%s %s %s: %s", c.Kernel, c.Payload, c.Check, c.Evidence.Message)
	}
	assert.Positive(t, payloads["bpf"])
	assert.Positive(t, payloads["kmod"])
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "<sub>6.1.192-3 · gcc-12 · arm64</sub>")
	assert.Contains(t, out.String(), "gcc-16 arm64", "the terminal table too")
}

// TestRunArchUsage: an arch kmatrix does not boot, or a catalog without
// kernels of the arch, is a usage error (exit 2) before anything boots.
func TestRunArchUsage(t *testing.T) {
	for args, want := range map[string][]string{
		"arch sparc":   {"--arch", "sparc"},
		"series arm64": {"--arch", "arm64", "--catalog", "series"},
	} {
		var out, errb bytes.Buffer
		code := runMain(context.Background(), append(want, "--out", t.TempDir()), &out, &errb)
		assert.Equal(t, exitUsage, code, args)
		assert.Contains(t, errb.String(), "--arch", args)
	}
}

// TestGoTestExecArm64 is `GOARCH=arm64 go test -exec 'kmatrix exec
// --kernel debian-sid-arm64 --'`: go test builds the arm64 test binary,
// kmatrix exec finds the kernel in the arm64 catalog and runs it there.
func TestGoTestExecArm64(t *testing.T) {
	if os.Getenv("KMATRIX_ARM64") == "" {
		t.Skip("arm64 guests run under TCG: run them with KMATRIX_ARM64=1 (make arm64)")
	}
	k := kernelstest.Arm64(t, "debian-sid-arm64")
	root := moduleRoot(t)
	bin := filepath.Join(t.TempDir(), "kmatrix")
	build := exec.Command("go", "build", "-o", bin, "./matrix/cmd/kmatrix")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	adapter := bin + " exec --kernel " + k.Name + " --env VMTEST_GUEST=1 --env WANT_RELEASE=" + k.Release + " --"
	cmd := exec.Command("go", "test", "-count=1", "-v", "-exec", adapter, "-run", "TestKernelRelease|TestGuestSetup", "./vmtest/internal/guesttest")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOARCH=arm64", "CGO_ENABLED=0")
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "release "+k.Release, "the tests ran in the arm64 guest kernel")
	assert.Contains(t, string(out), "--- PASS: TestGuestSetup/bpffs")
}
