package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
	"github.com/kmatrix/kmatrix/matrix/report"
)

// pathWithoutGo is $PATH without the directories that hold a go command:
// what a machine without a Go toolchain has.
func pathWithoutGo() string {
	var keep []string
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if _, err := os.Stat(filepath.Join(d, "go")); err != nil {
			keep = append(keep, d)
		}
	}
	return strings.Join(keep, string(filepath.ListSeparator))
}

// runOutside runs bin with args in dir, with a PATH that holds no go
// command and no Go settings in its environment, and returns its exit
// code and combined output.
func runOutside(t *testing.T, dir, bin string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "GO") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "PATH="+pathWithoutGo())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !assert.ErrorAs(t, err, &ee, "%s %v", bin, args) {
		return -1, out.String()
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

func readReport(t *testing.T, dir string) *report.Report {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "report", "report.json"))
	require.NoError(t, err)
	var r report.Report
	require.NoError(t, json.Unmarshal(b, &r))
	return &r
}

// TestSelfContainedBinary builds kmatrix, copies it far from the checkout,
// and runs it there with no go command on PATH: the guest init and the
// guest agent and guest tests it embeds must be all it needs: the default
// matrix (the built-in payloads), --bpf on a committed object and --kmod on
// a committed module directory all pass. The kernel is debian-trixie, where
// the committed tcx object attaches (Linux 6.6+).
func TestSelfContainedBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds kmatrix and boots a kernel three times; -short skips it")
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("the guests are x86-64 Linux; this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	ks := kernelstest.Default(t)
	kernel := ks[len(ks)-1].Name
	for _, k := range ks {
		if k.Name == "debian-trixie" {
			kernel = k.Name
		}
	}
	root := moduleRoot(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin", "kmatrix")
	build := exec.Command("go", "build", "-o", bin, "./matrix/cmd/kmatrix")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.NoError(t, os.CopyFS(filepath.Join(dir, "versionerror"), os.DirFS(filepath.Join(root, "kmod/testdata/versionerror"))))
	obj, err := os.ReadFile(filepath.Join(root, "bpf/testdata/tcx_kprobe_x86_bpfel.o"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "probe.o"), obj, 0o644))

	for _, c := range []struct {
		name    string
		args    []string
		payload string
	}{
		{"default", nil, "bpf"},
		{"bpf", []string{"--bpf", "../probe.o"}, "bpf:probe"},
		{"kmod", []string{"--kmod", "../versionerror"}, "kmod:versionerror"},
	} {
		t.Run(c.name, func(t *testing.T) {
			work := filepath.Join(dir, c.name)
			require.NoError(t, os.MkdirAll(work, 0o755))
			code, out := runOutside(t, work, bin, append([]string{"run", "--kernels", kernel}, c.args...)...)
			assert.Equal(t, 0, code, out)
			r := readReport(t, work)
			n := 0
			for _, cell := range r.Cells {
				assert.Equal(t, outcome.Pass, cell.Outcome, "%s/%s/%s: %s", cell.Kernel, cell.Payload, cell.Check, cell.Evidence.Message)
				if cell.Payload == c.payload {
					n++
				}
			}
			assert.GreaterOrEqual(t, n, 3, "cells of %s: %+v", c.payload, r.Cells)
			assert.NotEmpty(t, r.Host.Kmatrix, "the report names the kmatrix that made it")
		})
	}
	t.Run("exec", func(t *testing.T) {
		code, out := runOutside(t, dir, bin, "exec", "--kernel", kernel, "--", bin, "version")
		assert.Equal(t, 0, code, out)
		assert.Contains(t, out, "kmatrix")
	})
}
