package matrix

import (
	"context"
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
	"github.com/kmatrix/kmatrix/vmtest"
)

// fileCheckPayload is a kind of payload made here, in a test file, with no
// change to the runner: it runs a static binary in the guest that exits 0
// when a file exists there, one cell per file.
type fileCheckPayload struct {
	bin   string
	files []string
}

func (p *fileCheckPayload) Name() string { return "custom" }

func (p *fileCheckPayload) Checks() []Check {
	var cs []Check
	for _, f := range p.files {
		cs = append(cs, Check{Name: "exists" + f, Stage: outcome.StageBehave, Doc: f + " exists in the guest"})
	}
	return cs
}

func (p *fileCheckPayload) Prepare(ctx context.Context, k *kernels.Kernel, env *Env) (*Plan, error) {
	plan := &Plan{Files: []vmtest.File{{Host: p.bin, Guest: "/kmatrix/custom/check", Mode: 0o755}}}
	for i, f := range p.files {
		plan.Commands = append(plan.Commands, vmtest.Command{Name: p.Name() + "/" + p.Checks()[i].Name, Path: "/kmatrix/custom/check", Args: []string{f}})
	}
	plan.Collect = func(g GuestRun) []report.Cell {
		var cells []report.Cell
		for _, c := range p.Checks() {
			r, ok := g.Result(p.Name() + "/" + c.Name)
			cell := report.Cell{Kernel: k.Name, Payload: p.Name(), Check: c.Name, Stage: c.Stage, Outcome: outcome.Pass}
			if !ok || r.ExitCode != 0 {
				cell.Outcome = outcome.Fail
				cell.Evidence.Message = "the file is not there"
			}
			cells = append(cells, cell)
		}
		return cells
	}
	return plan, nil
}

// TestPayloadKinds runs, on the newest kernel, a payload kind defined in
// this test file and a user's Go tests (package internal/lbtest), and
// checks their cells in every report format: a failing test named
// TestLoadBalancer lands in the stage its check declares (a fail, not a
// load-error), with testify's message and file:line; subtests are cells.
func TestPayloadKinds(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a kernel in QEMU; run without -short")
	}
	ks := kernelstest.Default(t)
	newest := ks[len(ks)-1]
	bin, err := vmtest.BuildTestBinary(context.Background(), "./internal/lbtest")
	require.NoError(t, err)
	out := t.TempDir()
	rep, err := Run(context.Background(), Options{Kernels: []string{newest.Name}, OutDir: out, Extra: []Payload{
		&fileCheckPayload{bin: buildCheck(t), files: []string{"/proc/self/stat", "/no/such/file"}},
		&goTestPayload{name: "gotest:lbtest", binaryFor: func(context.Context, string) (string, error) { return bin, nil }, subtests: true, env: []string{"KMATRIX_LBTEST=1"},
			checks: []Check{{Name: "TestLoadBalancer", Stage: outcome.StageBehave}}},
	}})
	require.NoError(t, err)
	assert.Empty(t, cellsOf(rep, newest.Name, PayloadBPF, ""), "no built-in payload when others are given")

	get := func(payload, check string) report.Cell {
		cs := cellsOf(rep, newest.Name, payload, check)
		require.Len(t, cs, 1, "%s %s", payload, check)
		return cs[0]
	}
	boot := get(PayloadKernel, "boot")
	assert.True(t, boot.Evidence.Facts["restored_from"] != "" || boot.Evidence.Facts["cold_boot"] != "",
		"the report says whether the guest was restored or booted cold: %v", boot.Evidence.Facts)
	assert.Equal(t, outcome.Pass, get("custom", "exists/proc/self/stat").Outcome)
	assert.Equal(t, outcome.Fail, get("custom", "exists/no/such/file").Outcome)

	lb := get("gotest:lbtest", "TestLoadBalancer")
	assert.Equal(t, outcome.Fail, lb.Outcome, "its stage is behave: a fail, whatever its name says")
	assert.Equal(t, outcome.StageBehave, lb.Stage)
	assert.Regexp(t, `^lb_test\.go:\d+: Not equal: expected: 3 actual : 2 \(the balancer spread the connections\)$`, lb.Evidence.Message)
	assert.Equal(t, "3", lb.Evidence.Facts["backends"])
	assert.Equal(t, outcome.Pass, get("gotest:lbtest", "TestSpreads/tcp").Outcome)
	udp := get("gotest:lbtest", "TestSpreads/udp")
	assert.Equal(t, outcome.Skip, udp.Outcome)
	assert.Contains(t, udp.Evidence.Message, "udp spreading needs Linux 99.0")

	for _, f := range []string{"report.md", "report.html", "junit.xml", "report.json"} {
		b, err := os.ReadFile(filepath.Join(out, f))
		require.NoError(t, err)
		for _, want := range []string{"custom", "exists/no/such/file", "TestLoadBalancer", "TestSpreads/udp"} {
			assert.Contains(t, string(b), want, "%s shows %s", f, want)
		}
	}
}

func TestUniqueNames(t *testing.T) {
	n, err := uniqueNames("bpf", []string{"a/probe.o", "b/probe.o", "c/other.o"})
	require.NoError(t, err)
	assert.Equal(t, []string{"bpf:a/probe", "bpf:b/probe", "bpf:other"}, n)
	n, err = uniqueNames("kmod", []string{"x/v1/drv", "y/v1/drv/"})
	require.NoError(t, err)
	assert.Equal(t, []string{"kmod:x/v1/drv", "kmod:y/v1/drv"}, n)
	_, err = uniqueNames("bpf", []string{"p.o", "./p.o"})
	assert.ErrorContains(t, err, "the same input is given more than once (bpf:")
}

// failureMessage on the output of real tests is covered by
// TestPayloadKinds; these are the shapes it must not mangle.
func TestFailureMessage(t *testing.T) {
	assert.Equal(t, "x_test.go:9: want 2, got 3", failureMessage("    x_test.go:9: want 2, got 3\n    more\n"))
	assert.Equal(t, "", failureMessage("\n\n"))
}

// --cold boots cold, and the report says so.
func TestRunCold(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a kernel in QEMU; run without -short")
	}
	ks := kernelstest.Default(t)
	newest := ks[len(ks)-1]
	rep, err := Run(context.Background(), Options{Kernels: []string{newest.Name}, Cold: true,
		Extra: []Payload{&fileCheckPayload{bin: buildCheck(t), files: []string{"/proc/self/stat"}}}})
	require.NoError(t, err)
	boot := cellsOf(rep, newest.Name, PayloadKernel, "boot")
	require.Len(t, boot, 1)
	assert.Equal(t, "Spec.Cold", boot[0].Evidence.Facts["cold_boot"])
	assert.Empty(t, boot[0].Evidence.Facts["restored_from"])
}

// A user's package that needs cgo cannot run in a guest (no libc): that is
// a usage error naming it and its cgo files, before any kernel boots. With
// cgo off, go list would leave its cgo files out silently.
func TestUserGoTestsRefuseCgo(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command")
	}
	inModule(t, map[string]string{
		"cg/cg.go":      "package cg\n\n// int f() { return 1; }\nimport \"C\"\n\nfunc F() int { return int(C.f()) }\n",
		"cg/cg_test.go": "package cg\n\nimport \"testing\"\n\nfunc TestF(t *testing.T) {}\n",
	})
	_, err := userGoTests(context.Background(), []string{"./cg"}, nil, &Env{})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrUsage)
	assert.Contains(t, err.Error(), "package example.org/u/cg uses cgo (cg.go)")
	_, err = userGoTests(context.Background(), []string{"./nothing"}, nil, &Env{})
	assert.ErrorIs(t, err, ErrUsage)
}

// A package whose tests compile for amd64 but not for arm64 (a file of its
// own for arm64 with an error) is a build-error on arm64 kernels, with the
// compiler's message, and runs on amd64 ones: the package's fault on one
// arch, not kmatrix's infra-error.
func TestUserGoTestsBuildErrorPerArch(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command")
	}
	inModule(t, map[string]string{
		"p/p.go":       "package p\n\nfunc F() int { return 1 }\n",
		"p/p_arm64.go": "package p\n\nfunc G() int { return undefinedOnArm64 }\n",
		"p/p_test.go":  "package p\n\nimport \"testing\"\n\nfunc TestF(t *testing.T) {}\n",
	})
	ps, err := userGoTests(context.Background(), []string{"./p"}, nil, &Env{})
	require.NoError(t, err)
	require.Len(t, ps, 1)

	plan, err := ps[0].Prepare(context.Background(), &kernels.Kernel{Name: "sid-arm64", Arch: "arm64"}, &Env{})
	require.NoError(t, err, "a compile error is a cell, not a failure to prepare")
	require.Len(t, plan.Cells, 1)
	c := plan.Cells[0]
	assert.Equal(t, "build", c.Check)
	assert.Equal(t, outcome.BuildError, c.Outcome)
	assert.Contains(t, c.Evidence.Message, "p_arm64.go:3:")
	assert.Contains(t, c.Evidence.Message, "undefinedOnArm64")
	assert.Empty(t, plan.Commands)

	plan, err = ps[0].Prepare(context.Background(), &kernels.Kernel{Name: "sid", Arch: "amd64"}, &Env{})
	require.NoError(t, err)
	assert.Len(t, plan.Commands, 1, "amd64 builds and runs")
}

// inModule makes a Go module example.org/u of files (path → contents) in a
// temporary directory and makes it the working directory for the test.
func inModule(t *testing.T, files map[string]string) {
	dir := t.TempDir()
	files["go.mod"] = "module example.org/u\n\ngo 1.26\n"
	for name, body := range files {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	t.Chdir(dir)
}
