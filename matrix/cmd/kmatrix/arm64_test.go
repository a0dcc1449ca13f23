package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels"
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
		"arch sparc":         {"--arch", "sparc"},
		"series-arm64 amd64": {"--arch", "amd64", "--catalog", "series-arm64"},
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

// captureOutput runs f with os.Stdout and os.Stderr going to files, and
// returns what f wrote to each.
func captureOutput(t *testing.T, f func()) (stdout, stderr string) {
	t.Helper()
	var out string
	stderr = captureStderr(t, func() {
		tmp, err := os.CreateTemp(t.TempDir(), "stdout")
		require.NoError(t, err)
		defer tmp.Close()
		old := os.Stdout
		os.Stdout = tmp
		defer func() { os.Stdout = old }()
		f()
		b, err := os.ReadFile(tmp.Name())
		require.NoError(t, err)
		out = string(b)
	})
	return out, stderr
}

// TestKernelsArch: kmatrix kernels --arch picks a catalog's kernels of
// that arch as kmatrix run --arch does (the arm64 twins of the shipped
// default and series catalogs); an arch kmatrix does not boot, or a
// catalog without kernels of the arch, is a usage error naming it.
func TestKernelsArch(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--arch", "arm64"}, `["debian-bookworm-arm64","debian-sid-arm64"]`},
		{[]string{"--arch", "arm64", "--catalog", "series"}, `["linux-5.10-arm64","linux-6.1-arm64","linux-6.12-arm64","linux-6.16-arm64",` +
			`"linux-6.17-arm64","linux-6.18-arm64","linux-6.19-arm64","linux-7.0-arm64","linux-7.1-arm64","linux-7.2-arm64","linux-7.3-arm64"]`},
		{[]string{"--catalog", "series-arm64"}, `["linux-5.10-arm64",`},
		{[]string{"--arch", "amd64"}, `["debian-bullseye","debian-bookworm","debian-trixie","debian-sid"]`},
	} {
		var code int
		out, errb := captureOutput(t, func() { code = dispatch(context.Background(), append([]string{"kernels", "--names"}, c.args...)) })
		assert.Equal(t, 0, code, "%v: %s", c.args, errb)
		assert.Contains(t, out, c.want, c.args)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--arch", "sparc"}, "kmatrix kernels: --arch sparc: kmatrix boots amd64 and arm64 kernels: want one of them"},
		{[]string{"--series", "--arch", "aarch64"}, "kmatrix kernels: --arch aarch64: kmatrix boots amd64 and arm64 kernels"},
		{[]string{"--arch", "amd64", "--catalog", "series-arm64"}, "kmatrix kernels: --arch amd64: catalog series-arm64 has no amd64 kernels (it has linux-5.10-arm64 (arm64)"},
	} {
		var code int
		_, errb := captureOutput(t, func() { code = dispatch(context.Background(), append([]string{"kernels"}, c.args...)) })
		assert.Equal(t, exitUsage, code, c.args)
		assert.Contains(t, errb, c.want, c.args)
	}
}

// TestKernelsSeriesArm64 is `kmatrix kernels --series --arch arm64 --write`
// against the archive: the newest signed cloud-arm64 kernel of each series
// (from linux-signed-arm64, as the arm64 index lists them), written as a
// catalog whose entries are arm64 and whose lock pins arm64 images.
func TestKernelsSeriesArm64(t *testing.T) {
	if os.Getenv("KMATRIX_ARM64") == "" {
		t.Skip("reads the archive's arm64 indexes: run it with KMATRIX_ARM64=1 (make arm64)")
	}
	file := filepath.Join(t.TempDir(), "series-arm64.yaml")
	var code int
	out, errb := captureOutput(t, func() {
		code = dispatch(context.Background(), []string{"kernels", "--series", "--arch", "arm64", "--json", "--write", file})
	})
	require.Equal(t, 0, code, errb)
	var listed []kernels.Available
	require.NoError(t, json.Unmarshal([]byte(out), &listed))
	require.NotEmpty(t, listed)
	series := map[string]bool{}
	for _, a := range listed {
		series[a.Series] = true
		assert.Equal(t, "arm64", a.Arch, a.Package)
		assert.Equal(t, "linux-signed-arm64", a.Source, a.Package)
		assert.Regexp(t, `^linux-image-.*-cloud-arm64$`, a.Package)
	}
	for _, sr := range []string{"6.1", "6.12"} {
		assert.True(t, series[sr], "bookworm's 6.1 and trixie's 6.12 have signed arm64 cloud kernels")
	}
	cat, err := kernels.LoadCatalog(file)
	require.NoError(t, err)
	require.Len(t, cat.Kernels, len(listed))
	l, err := kernels.ReadLock(cat.LockPath)
	require.NoError(t, err)
	for i, e := range cat.Kernels {
		assert.Equal(t, "linux-"+listed[i].Series+"-arm64", e.Name)
		assert.Equal(t, "arm64", e.Arch)
		assert.Equal(t, "arm64", l.Kernels[i].GetArch(), e.Name)
		assert.Equal(t, listed[i].Version, l.Kernels[i].Version, "the lock pins the version listed")
	}
	t.Logf("kmatrix-evidence series-arm64 kernels=%d", len(listed))
}
