package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/kernels/kernelstest"
)

func TestExecUnameEveryKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("boots every default kernel; -short skips it")
	}
	for _, k := range kernelstest.Default(t) {
		t.Run(k.Name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			code := execMain(context.Background(), []string{"--kernel", k.Name, "--", "uname", "-r"}, nil, &out, &errb)
			require.Equal(t, 0, code, errb.String())
			assert.Equal(t, k.Release+"\n", out.String())
		})
	}
}

func TestExecExitStatusAndStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a kernel; -short skips it")
	}
	ks := kernelstest.Default(t)
	var out, errb bytes.Buffer
	code := execMain(context.Background(), []string{"--kernel", ks[0].Name, "--env", "X=from-host", "--",
		"sh", "-c", `echo "out $X"; echo err >&2; exit 3`}, nil, &out, &errb)
	assert.Equal(t, 3, code)
	assert.Equal(t, "out from-host\n", out.String())
	assert.Equal(t, "err\n", errb.String())
}

// TestExecForwardsStdin pipes input into a command in the guest, as
// `echo hi | kmatrix exec --kernel debian-bookworm -- cat` does: the host's
// cat, copied in with its libraries, reads it from its standard input.
func TestExecForwardsStdin(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a kernel; -short skips it")
	}
	k := kernelstest.Default(t)[1] // bookworm
	in := "hi\nfrom the host's stdin\n"
	var out, errb bytes.Buffer
	code := execMain(context.Background(), []string{"--kernel", k.Name, "--", "cat"}, strings.NewReader(in), &out, &errb)
	require.Equal(t, 0, code, errb.String())
	assert.Equal(t, in, out.String())

	// --stdin=false: the command reads /dev/null.
	out.Reset()
	code = execMain(context.Background(), []string{"--kernel", k.Name, "--stdin=false", "--", "cat"}, strings.NewReader(in), &out, &errb)
	require.Equal(t, 0, code, errb.String())
	assert.Empty(t, out.String())
}

func TestExecUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--", "uname"}, "want --kernel NAME and a command after --"},
		{[]string{"--kernel", "debian-sid"}, "want --kernel NAME and a command after --"},
		{[]string{"--kernel", t.TempDir(), "--", "uname"}, "no file named vmlinuz"},
	} {
		var errb bytes.Buffer
		code := execMain(context.Background(), tc.args, nil, &bytes.Buffer{}, &errb)
		assert.NotEqual(t, 0, code, tc.args)
		assert.Contains(t, errb.String(), tc.want, tc.args)
	}
	ks := kernelstest.Default(t)
	var errb bytes.Buffer
	code := execMain(context.Background(), []string{"--kernel", ks[0].Name, "--file", "nocolon", "--", "uname"}, nil, &bytes.Buffer{}, &errb)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errb.String(), `--file "nocolon": want HOST:GUEST`)
}

func TestDefaultExecTimeout(t *testing.T) {
	assert.Equal(t, 10*time.Minute, defaultExecTimeout([]string{"-test.v"}))
	assert.Equal(t, 7*time.Minute, defaultExecTimeout([]string{"-test.paniconexit0", "-test.timeout=5m0s"}))
	assert.Equal(t, 3*time.Minute, defaultExecTimeout([]string{"-test.timeout", "1m"}))
}

// TestGoTestExec is the vimto use case: go test runs a package's test
// binary through `kmatrix exec`, which runs it inside the kernel.
func TestGoTestExec(t *testing.T) {
	if testing.Short() {
		t.Skip("builds kmatrix and boots a kernel; -short skips it")
	}
	ks := kernelstest.Default(t)
	k := ks[len(ks)-1]
	root := moduleRoot(t)
	bin := filepath.Join(t.TempDir(), "kmatrix")
	build := exec.Command("go", "build", "-o", bin, "./matrix/cmd/kmatrix")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	adapter := bin + " exec --kernel " + k.Name + " --env VMTEST_GUEST=1 --env WANT_RELEASE=" + k.Release + " --"
	gotest := func(run string) (string, error) {
		cmd := exec.Command("go", "test", "-count=1", "-v", "-exec", adapter, "-run", run, "./vmtest/internal/guesttest")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out2, err := gotest("TestKernelRelease|TestGuestSetup")
	require.NoError(t, err, out2)
	assert.Contains(t, out2, "release "+k.Release, "the tests ran in the guest kernel")
	assert.Contains(t, out2, "--- PASS: TestGuestSetup/bpffs")

	out2, err = gotest("TestFailsOnPurpose")
	require.Error(t, err, "a failing test in the guest fails go test")
	assert.Contains(t, out2, "--- FAIL: TestFailsOnPurpose")
}

func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/kmatrix/kmatrix\n") {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "no go.mod of github.com/kmatrix/kmatrix above the working directory")
		dir = parent
	}
}
