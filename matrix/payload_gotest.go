package matrix

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/kmod"
	"github.com/kmatrix/kmatrix/matrix/guestagent"
	"github.com/kmatrix/kmatrix/matrix/report"
	"github.com/kmatrix/kmatrix/vmtest"
	"github.com/kmatrix/kmatrix/vmtest/evidence"
)

// goTestPayload runs a Go test binary in each guest and makes its tests
// cells. The built-in payloads are two of them: package bpf's tests of the
// CO-RE tracer, and package kmod's tests of the module (built per kernel
// first).
type goTestPayload struct {
	name string
	// binaryFor returns the host path of the static test binary for
	// guests of an arch ("amd64", "arm64"), making it on first use.
	binaryFor func(ctx context.Context, arch string) (string, error)
	// checks are the top-level tests that are matrix columns, with their
	// stages. A test the guest runs that is not declared still gets a cell
	// (stage behave), so nothing it reports is dropped.
	checks []Check
	// only runs the declared checks and no other test of the binary.
	only bool
	// subtests makes every subtest a cell of its own; otherwise a test's
	// subtests fold into its cell (their facts, the first failure's message).
	subtests bool
	// module, when set, is a module source built per kernel first; the test
	// binary finds the .ko through $KMATRIX_KO.
	module string
	args   []string // extra test binary flags
	env    []string // extra environment, KEY=VALUE
	// dir is the guest working directory the binary runs in, and files go
	// there with it (a user package's files and testdata/, as go test
	// leaves them beside the binary); empty dir: "/".
	dir   string
	files []vmtest.File
	// shared: the binary is one of kmatrix's own, the same in every run
	// of this kmatrix, so a snapshot may hold it (vmtest.File.Shared),
	// started (vmtest.Command.Prestart: its TestMain calls prestart.Await).
	shared bool
}

// The built-in payloads' names.
const (
	PayloadBPF  = "bpf"
	PayloadKmod = "kmod"
	// PayloadKernel holds the per-kernel cells that belong to no payload:
	// the boot itself and the console scan for panics, oopses and splats.
	PayloadKernel = "kernel"
)

// builtinChecks are the tests of each built-in payload's package that are
// matrix checks, in column order, with their stages: what a user's program
// or module must do on every kernel. The packages also hold host-only unit
// tests and tests of kmatrix's own failure reporting (a deliberately broken
// CO-RE object, a module loaded into the wrong kernel); those run in the
// packages' own VM tests, not as matrix columns. newBuiltin checks that
// every name here is a test of the compiled binary, so a renamed test fails
// loudly instead of silently dropping a column.
var builtinChecks = map[string][]Check{
	PayloadBPF: {
		{"TestLoad", outcome.StageLoad, "the CO-RE tracer loads: every relocation resolves against the kernel's BTF, the verifier accepts it"},
		{"TestAttach", outcome.StageAttach, "its programs attach to their tracepoints"},
		{"TestExecEvents", outcome.StageBehave, "execs in the guest arrive as exactly the expected ring-buffer events (pid, parent, comm, filename)"},
		{"TestTaskState", outcome.StageBehave, "task states read through the task iterator match /proc across the 5.14 state → __state rename"},
		{"TestVariant", outcome.StageBehave, "the program variant the kernel gets (bpf_loop on 5.17+) is the one it should"},
		{"TestFallbackVariant", outcome.StageBehave, "the bounded-loop fallback works on every kernel too"},
		{"TestDetach", outcome.StageUnload, "closing the links removes every program and map"},
	},
	PayloadKmod: {
		{"build", outcome.StageBuild, "the module compiles against the kernel's headers with the kernel's gcc major"},
		{"TestLoad", outcome.StageLoad, "it loads (vermagic, symbols) and says hello"},
		{"TestExecRecords", outcome.StageBehave, "the module records the guest's execs"},
		{"TestWritePath", outcome.StageBehave, "commands written to its device (filter, reset) take effect"},
		{"TestTaskState", outcome.StageBehave, "the task states it reads agree with /proc"},
		{"TestUnload", outcome.StageUnload, "it unloads cleanly"},
		{"TestTaint", outcome.StageBehave, "it taints the kernel only as out-of-tree and unsigned (4096|8192)"},
		{"TestKernelLog", outcome.StageBehave, "the kernel logged no splat while it was loaded"},
	},
}

// newBuiltin writes out the guest test binary of a built-in payload: the
// tests of package bpf or kmod, compiled ahead and embedded in this binary
// (package guestagent), so that a kmatrix far from a checkout, without a
// Go toolchain, runs them.
func newBuiltin(ctx context.Context, name string, env *Env) (*goTestPayload, error) {
	pkgs := map[string]string{PayloadBPF: "github.com/kmatrix/kmatrix/bpf", PayloadKmod: "github.com/kmatrix/kmatrix/kmod"}
	bins := map[string]string{PayloadBPF: guestagent.BPFTests, PayloadKmod: guestagent.KmodTests}
	write := func(_ context.Context, arch string) (string, error) {
		bin, err := guestagent.WriteFor(filepath.Join(env.tmp, "agent"), bins[name], arch)
		if err != nil {
			return "", fmt.Errorf("the %s guest tests: %w", name, err)
		}
		return bin, nil
	}
	// The host runs the amd64 build to list the tests: every arch's build
	// has the same ones.
	bin, err := write(ctx, "amd64")
	if err != nil {
		return nil, err
	}
	list, err := listTests(ctx, bin)
	if err != nil {
		return nil, err
	}
	p := &goTestPayload{name: name, binaryFor: perArch(write), checks: builtinChecks[name], only: true, shared: true}
	for _, c := range p.checks {
		if c.Stage != outcome.StageBuild && !contains(list, c.Name) {
			return nil, fmt.Errorf("the %s payload's check %s is not a test in package %s (its tests: %v)", name, c.Name, pkgs[name], list)
		}
	}
	if name == PayloadKmod {
		// The module source is embedded in package kmod, so an installed
		// kmatrix needs no checkout: write it out once per run.
		p.module = env.tmp + "/kmatrix-src"
		if err := kmod.WriteSource(p.module); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// perArch memoizes make per arch: each arch's binary is made once per run.
func perArch(make func(ctx context.Context, arch string) (string, error)) func(ctx context.Context, arch string) (string, error) {
	var mu sync.Mutex
	made := map[string]string{}
	return func(ctx context.Context, arch string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if p, ok := made[arch]; ok {
			return p, nil
		}
		p, err := make(ctx, arch)
		if err != nil {
			return "", err
		}
		made[arch] = p
		return p, nil
	}
}

// listTests asks a test binary for its top-level tests.
func listTests(ctx context.Context, bin string) ([]string, error) {
	out, err := exec.CommandContext(ctx, bin, "-test.list", ".*").Output()
	if err != nil {
		return nil, fmt.Errorf("listing the tests of %s: %w", bin, err)
	}
	var tests []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "Test") {
			tests = append(tests, strings.TrimSpace(l))
		}
	}
	return tests, nil
}

func (p *goTestPayload) Name() string    { return p.name }
func (p *goTestPayload) Checks() []Check { return p.checks }

// guestChecks are the declared checks that run in the guest (not the build).
func (p *goTestPayload) guestChecks() []Check {
	var cs []Check
	for _, c := range p.checks {
		if c.Stage != outcome.StageBuild {
			cs = append(cs, c)
		}
	}
	return cs
}

func (p *goTestPayload) Prepare(ctx context.Context, k *kernels.Kernel, env *Env) (*Plan, error) {
	plan := &Plan{}
	gbin := fmt.Sprintf("%s/%s.test", guestDir, strings.NewReplacer(":", "_", "/", "_").Replace(p.name))
	// The test binary's own timeout fires first, so its panic names the
	// test that hung; the guest's bound on the command is the backstop.
	limit := env.opts.CommandTimeout
	cmd := vmtest.Command{Name: p.name, Path: gbin, Timeout: limit + 30*time.Second,
		Args: append(append([]string{}, vmtest.TestFlags...), "-test.timeout", limit.String())}
	if cs := p.guestChecks(); p.only && len(cs) > 0 {
		cmd.Args = append(cmd.Args, "-test.run", "^("+strings.Join(checkNames(cs), "|")+")$")
	}
	cmd.Args = append(cmd.Args, p.args...)
	cmd.Env = append(cmd.Env, p.env...)
	cmd.Dir = p.dir
	plan.Files = append(plan.Files, p.files...)
	if p.module != "" {
		env.progress.Phase(k.Name, PhaseBuild, k.Compiler.String())
		bc, ko := env.BuildModule(ctx, k, p.name, p.module)
		plan.Cells = append(plan.Cells, bc)
		if ko == "" {
			plan.Cells = append(plan.Cells, cellsFor(k.Name, p.name, p.guestChecks(), bc.Outcome, notBuilt(bc))...)
			return plan, nil
		}
		gko := fmt.Sprintf("%s/%s.ko", guestDir, strings.NewReplacer(":", "_", "/", "_").Replace(p.name))
		// kmatrix's own module, built for k: the same in every run of k.
		plan.Files = append(plan.Files, vmtest.File{Host: ko, Guest: gko, Shared: p.shared})
		cmd.Env = append(cmd.Env, "KMATRIX_KO="+gko)
	}
	bin, err := p.binaryFor(ctx, kernelArch(k.Arch))
	if be := (*testBuildError)(nil); errors.As(err, &be) {
		return (&brokenGoTest{name: p.name, err: be.err}).Prepare(ctx, k, env)
	}
	if err != nil {
		return nil, err
	}
	plan.Files = append(plan.Files, vmtest.File{Host: bin, Guest: gbin, Shared: p.shared})
	// kmatrix's own test binaries wait in the snapshot, started and with
	// the kernel's BTF decoded (their TestMain, package vmtest/prestart).
	cmd.Prestart = p.shared
	cmd.Stdout = env.Live(k.Name, p.name, p.subtests)
	plan.Commands = []vmtest.Command{cmd}
	plan.Collect = func(g GuestRun) []report.Cell {
		cr := g.Results[p.name]
		why := g.Why
		if cr.Err != "" {
			why = cr.Err
		}
		return testCells(g, p.name, p.guestChecks(), p.subtests, vmtest.ParseGoTest(cr.Stdout, cr.Stderr), why)
	}
	return plan, nil
}

// testCells turns one Go test binary's results into cells: one per declared
// check, then one per test it ran that was not declared, and, with
// subtests, one per subtest. A declared test the guest never reported (the
// binary crashed, the kernel panicked, the VM timed out) still gets its
// cell, with the outcome of what stopped it, so the matrix has no holes.
func testCells(g GuestRun, payload string, declared []Check, subtests bool, results []vmtest.TestResult, why string) []report.Cell {
	byName := map[string]vmtest.TestResult{}
	children := map[string][]vmtest.TestResult{}
	for _, r := range results {
		byName[r.Name] = r
		if top, _, nested := strings.Cut(r.Name, "/"); nested {
			children[top] = append(children[top], r)
		}
	}
	checks := append([]Check(nil), declared...)
	for _, r := range results {
		_, nested := cutTop(r.Name)
		if (subtests || !nested) && !containsCheck(checks, r.Name) {
			checks = append(checks, Check{Name: r.Name, Stage: outcome.StageBehave})
		}
	}
	if len(checks) == 0 {
		// It reported no test at all (it crashed before the first, or the
		// guest died): one cell says so, so the matrix has no hole.
		checks = []Check{{Name: "test-binary", Stage: outcome.StageBehave}}
	}
	var cells []report.Cell
	for _, c := range checks {
		r, ran := byName[c.Name]
		if !ran {
			if g.Missing == outcome.Fail {
				// The binary ran to its end without it: it crashed or lost the test.
				why = "the guest test binary exited without reporting it (crashed?)"
			}
			cells = append(cells, g.notReported(payload, c, why))
			continue
		}
		var folded []vmtest.TestResult
		if !subtests {
			folded = children[c.Name]
		}
		cells = append(cells, testCell(g.Kernel.Name, payload, c, r, folded))
	}
	return cells
}

// testCell is the cell of one test (with the subtests folded into it).
func testCell(kernel, payload string, c Check, r vmtest.TestResult, folded []vmtest.TestResult) report.Cell {
	cell := report.Cell{Kernel: kernel, Payload: payload, Check: c.Name, Stage: c.Stage, DurationMS: r.Elapsed.Milliseconds()}
	facts, out := evidence.Parse(r.Output)
	failed := ""
	for _, s := range folded {
		f, sout := evidence.Parse(s.Output)
		for k, v := range f {
			facts[k] = v
		}
		if failed == "" && s.Outcome == outcome.Fail {
			failed = s.Name + ": " + failureMessage(sout)
		}
	}
	override := facts[evidence.OutcomeKey]
	delete(facts, evidence.OutcomeKey)
	if len(facts) > 0 {
		cell.Evidence.Facts = facts
	}
	switch r.Outcome {
	case outcome.Pass:
		cell.Outcome = outcome.Pass
	case outcome.Skip:
		cell.Outcome = outcome.Skip
		cell.Evidence.Message = failureMessage(out)
	default:
		cell.Outcome = c.Stage.Failure()
		if o, err := outcome.Parse(override); err == nil {
			cell.Outcome = o
		}
		cell.Evidence.Message = failed
		if failed == "" {
			cell.Evidence.Message = failureMessage(out)
		}
		cell.Evidence.Log = strings.TrimSpace(out)
	}
	return cell
}

func containsCheck(cs []Check, name string) bool {
	for _, c := range cs {
		if c.Name == name {
			return true
		}
	}
	return false
}

func cutTop(name string) (string, bool) {
	top, _, nested := strings.Cut(name, "/")
	return top, nested
}
