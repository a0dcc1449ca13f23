package matrix

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/kmod"
	"github.com/kmatrix/kmatrix/kmod/build"
	"github.com/kmatrix/kmatrix/matrix/report"
	"github.com/kmatrix/kmatrix/vmtest"
)

// Built-in payloads: the CO-RE program of package bpf and the module of
// package kmod, each with the guest tests of its package.
const (
	PayloadBPF  = "bpf"
	PayloadKmod = "kmod"
	// PayloadKernel holds the per-kernel cells that belong to no payload:
	// the boot itself and the console scan for panics, oopses and splats.
	PayloadKernel = "kernel"
)

// Guest paths. Everything kmatrix puts in a guest lives under /kmatrix.
const (
	guestDir    = "/kmatrix"
	guestModule = guestDir + "/kmatrix.ko"
)

// Runner runs the matrix for one kernel at a time. What is the same for
// every kernel (guest test binaries, the user-payload loader) is built once
// by NewRunner; Kernel then builds what is per kernel (modules), boots one VM
// and turns everything that happened into cells.
type Runner struct {
	opts       Options
	progress   *Progress
	tests      map[string]guestTests // payload → its guest test binary
	tool       string                // host path of kmatrix-guest, for user BPF objects and modules
	tmp        string                // the module source and per-kernel builds; removed by Close
	releaseTmp func() error          // removes tmp and drops its owner lock
	kmodSrc    string                // source directory of the built-in module
}

type guestTests struct {
	binary   string
	expected []string // the checks: guest tests, in column order
}

// guestChecks are the tests of each built-in payload's package that are
// matrix checks, in column order: what a user's program or module must do
// on every kernel. The packages also hold host-only unit tests (decoders,
// parsers) and tests of kmatrix's own failure reporting (a deliberately
// broken CO-RE object, a module loaded into the wrong kernel); those run in
// the packages' own VM tests, not as matrix columns. NewRunner
// verifies that every name here exists in the compiled test binary, so a
// renamed test fails loudly instead of silently dropping a column.
var guestChecks = map[string][]string{
	PayloadBPF: {"TestLoad", "TestAttach", "TestExecEvents", "TestTaskState", "TestVariant",
		"TestFallbackVariant", "TestDetach"},
	PayloadKmod: {"TestLoad", "TestExecRecords", "TestWritePath", "TestTaskState", "TestUnload",
		"TestTaint", "TestKernelLog"},
}

// NewRunner builds the guest binaries. Its error is an infra error: without
// them no kernel can be tested.
func NewRunner(ctx context.Context, opts Options) (*Runner, error) {
	opts = opts.withDefaults()
	r := &Runner{opts: opts, progress: opts.progress, tests: map[string]guestTests{}}
	pkgs := map[string]string{PayloadBPF: "github.com/kmatrix/kmatrix/bpf", PayloadKmod: "github.com/kmatrix/kmatrix/kmod"}
	for _, p := range opts.Payloads {
		bin, err := vmtest.BuildTestBinary(ctx, pkgs[p])
		if err != nil {
			return nil, fmt.Errorf("building the %s guest tests: %w", p, err)
		}
		list, err := listTests(ctx, bin)
		if err != nil {
			return nil, err
		}
		for _, c := range guestChecks[p] {
			if !contains(list, c) {
				return nil, fmt.Errorf("the %s payload's check %s is not a test in package %s (its tests: %v)", p, c, pkgs[p], list)
			}
		}
		r.tests[p] = guestTests{binary: bin, expected: guestChecks[p]}
	}
	// Owned (flock) so that a later run removes it if this one is killed.
	tmp, release, err := kernels.OwnedTempDir(kernels.RunDirPrefix)
	if err != nil {
		return nil, err
	}
	r.tmp, r.releaseTmp = tmp, release
	if contains(opts.Payloads, PayloadKmod) {
		// The module source is embedded in package kmod, so an installed
		// kmatrix needs no checkout: write it out once per run.
		r.kmodSrc = filepath.Join(tmp, "kmatrix-src")
		if err := kmod.WriteSource(r.kmodSrc); err != nil {
			r.Close()
			return nil, err
		}
	}
	if len(opts.BPFObjects)+len(opts.KmodDirs) > 0 {
		tool, err := vmtest.BuildBinary(ctx, "github.com/kmatrix/kmatrix/matrix/cmd/kmatrix-guest")
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("building kmatrix-guest: %w", err)
		}
		r.tool = tool
	}
	return r, nil
}

// Close removes what NewRunner wrote to temporary storage.
func (r *Runner) Close() error {
	if r.releaseTmp != nil {
		return r.releaseTmp()
	}
	return nil
}

// listTests asks a test binary for its top-level tests: they are the
// checks a payload must report, whatever happens in the guest.
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

// Kernel runs every payload on k in one VM and returns its cells and the
// report row. The error is an infra error (also present as a cell).
func (r *Runner) Kernel(ctx context.Context, k *kernels.Kernel) ([]report.Cell, report.Kernel, error) {
	row := reportKernel(k)
	var cells []report.Cell
	spec := vmtest.Spec{
		Kernel:   k.Vmlinuz,
		Timeout:  r.opts.Timeout,
		MemoryMB: 512,
		CPUs:     1,
		Append:   lsmArgs(k), // BPF LSM on, where the kernel has it
	}

	// Build: the built-in module and the user's modules, per kernel.
	r.progress.Stage(k.Name, StageBuild, k.Compiler.String())
	modules := map[string]string{} // payload → guest path of its .ko
	builds := []struct{ payload, src string }{}
	if r.kmodSrc != "" {
		builds = append(builds, struct{ payload, src string }{PayloadKmod, r.kmodSrc})
	}
	for _, d := range r.opts.KmodDirs {
		builds = append(builds, struct{ payload, src string }{userPayloadName("kmod", d), d})
	}
	buildFailed := map[string]report.Cell{}
	for _, b := range builds {
		c, ko := r.build(ctx, k, b.payload, b.src)
		cells = append(cells, c)
		if c.Outcome != outcome.Pass {
			buildFailed[b.payload] = c
			continue
		}
		gp := guestModule
		if b.payload != PayloadKmod {
			gp = fmt.Sprintf("%s/user/%s.ko", guestDir, b.payload[len("kmod:"):])
		}
		spec.Files = append(spec.Files, vmtest.File{Host: ko, Guest: gp})
		modules[b.payload] = gp
	}

	// Commands: one per payload, in one VM.
	for _, p := range r.opts.Payloads {
		t := r.tests[p]
		if p == PayloadKmod && modules[PayloadKmod] == "" {
			continue // its checks become build-error cells below
		}
		gbin := fmt.Sprintf("%s/%s.test", guestDir, p)
		spec.Files = append(spec.Files, vmtest.File{Host: t.binary, Guest: gbin})
		cmd := vmtest.Command{Name: p, Path: gbin, Args: []string{"-test.v", "-test.timeout", "5m",
			"-test.run", "^(" + strings.Join(t.expected, "|") + ")$"}}
		if p == PayloadKmod {
			cmd.Env = []string{"KMATRIX_KO=" + guestModule}
		}
		cmd.Stdout = &checkCounter{p: r.progress, kernel: k.Name, payload: p}
		spec.Commands = append(spec.Commands, cmd)
	}
	userCmds := r.userCommands(&spec, modules)

	var floorErr error
	if r.opts.MeasureFloor {
		// Before the run, not beside it: a floor measured while this
		// kernel's own VM competes for the CPU would be no floor.
		var floor time.Duration
		if floor, floorErr = vmtest.BootFloor(ctx, k.Vmlinuz); floorErr == nil {
			row.FloorMS = ms(floor)
		}
	}

	r.progress.Stage(k.Name, StageBoot, "")
	res, err := vmtest.Run(ctx, spec)
	if res == nil {
		res = &vmtest.Result{Outcome: outcome.InfraError}
	}
	row.Accel = res.Accel
	row.BootMS = ms(res.Timings.Total)

	bootCell := report.Cell{Kernel: k.Name, Payload: PayloadKernel, Check: "boot", Stage: "load", Outcome: outcome.Pass, DurationMS: row.BootMS,
		Evidence: report.Evidence{Facts: map[string]string{"accel": res.Accel, "release": k.Release}}}
	if floorErr != nil {
		bootCell.Evidence.Facts["floor_error"] = floorErr.Error()
	}
	// What stopped the guest decides the cells of checks that never reported.
	missing, why := outcome.InfraError, "the guest stopped before running it"
	switch res.Outcome {
	case outcome.Pass, outcome.Fail:
		missing, why = outcome.Fail, "the guest test binary exited without reporting it (crashed?)"
	default:
		bootCell.Outcome = res.Outcome
		missing = res.Outcome
		why = guestVerdict(res)
		bootCell.Evidence.Message = why
		switch {
		case err != nil:
			bootCell.Evidence.Message += ": " + err.Error()
		case strings.HasPrefix(res.Err, why):
			bootCell.Evidence.Message = res.Err // says it all, and more
		case res.Err != "":
			bootCell.Evidence.Message += ": " + res.Err
		}
		bootCell.Evidence.Log = res.Excerpt
	}
	cells = append(cells, bootCell)

	byName := map[string]vmtest.CommandResult{}
	for _, c := range res.Commands {
		byName[c.Name] = c
	}
	for _, p := range r.opts.Payloads {
		t := r.tests[p]
		if bc, failed := buildFailed[p]; failed {
			for _, name := range t.expected {
				cells = append(cells, report.Cell{Kernel: k.Name, Payload: p, Check: checkName(name), Stage: "build",
					Outcome: bc.Outcome, Evidence: report.Evidence{Message: notBuilt(bc)}})
			}
			continue
		}
		cr := byName[p]
		cw := why
		if cr.Err != "" {
			cw = cr.Err
		}
		cells = append(cells, testCells(k.Name, p, t.expected, vmtest.ParseGoTest(append(cr.Stdout, cr.Stderr...)), missing, cw)...)
	}
	cells = append(cells, r.userCells(k, userCmds, byName, buildFailed, missing, why, res.Excerpt)...)

	// Panics, oopses and splats count even when every test passed: a
	// kernel that WARNs under the payload is a finding of its own.
	if res.Outcome == outcome.Splat || res.Outcome == outcome.Oops {
		bootCell.Outcome = res.Outcome
	}
	r.progress.SetCells(k.Name, len(cells))
	r.progress.Stage(k.Name, StageDone, summarize(cells))
	if res.Outcome == outcome.InfraError {
		if err == nil {
			err = fmt.Errorf("%s: guest infra error: %s", k.Name, bootCell.Evidence.Message)
		}
		return cells, row, fmt.Errorf("%s: %w", k.Name, err)
	}
	return cells, row, nil
}

// guestVerdict says in words what happened to a guest that did not simply
// pass or fail, and in which phase ("command kmod", "command kmod:mydriver").
func guestVerdict(res *vmtest.Result) string {
	var s string
	switch res.Outcome {
	case outcome.KernelPanic:
		s = "the kernel panicked"
	case outcome.Oops:
		s = "the kernel oopsed"
	case outcome.Splat:
		s = "the kernel reported a splat (a WARNING, BUG or stall)"
	case outcome.Timeout:
		s = "the guest timed out"
	default:
		s = "the guest ended in " + string(res.Outcome)
	}
	if res.Phase != "" {
		s += " during " + res.Phase
	}
	return s
}

// build compiles a module for k and returns its build cell and .ko path.
// A kernel whose headers the archive does not list skips it.
func (r *Runner) build(ctx context.Context, k *kernels.Kernel, payload, src string) (report.Cell, string) {
	c := report.Cell{Kernel: k.Name, Payload: payload, Check: "Build", Stage: "build"}
	if k.Headers == "" && k.HeadersMissing != "" {
		c.Outcome = outcome.Skip
		c.Evidence.Message = k.HeadersMissing + ": a module builds only against its kernel's headers"
		return c, ""
	}
	start := time.Now()
	// Each kernel × module builds in its own directory under the run's
	// temp dir: builds of different kernels run in parallel.
	out := filepath.Join(r.tmp, "build", strings.ReplaceAll(payload, ":", "_"))
	res, err := build.Cached(ctx, k, src, build.Options{OutDir: out, AllowExpired: r.opts.AllowExpired})
	c.DurationMS = ms(time.Since(start))
	if err != nil {
		c.Outcome = outcome.InfraError
		c.Evidence.Message = err.Error()
		return c, ""
	}
	c.Outcome = res.Outcome
	c.Evidence.Facts = map[string]string{"compiler": res.Compiler, "kernel_compiler": k.Compiler.String(),
		"build_ms": fmt.Sprint(res.Duration.Milliseconds())}
	if res.Cached {
		c.Evidence.Facts["cached"] = "yes: same source, kernel and compiler as a previous build"
	}
	if res.Outcome != outcome.Pass {
		if res.FirstError != nil {
			c.Evidence.Message = res.FirstError.String()
		} else {
			c.Evidence.Message = "the build failed; see the log"
		}
		c.Evidence.Log = tail(res.Log, 60)
	}
	return c, res.Ko
}

// notBuilt is the message of a module check that did not run because the
// build cell bc did not pass.
func notBuilt(bc report.Cell) string {
	if bc.Outcome == outcome.Skip {
		return "not run: " + bc.Evidence.Message
	}
	return "not run: the module did not build: " + bc.Evidence.Message
}

func reportKernel(k *kernels.Kernel) report.Kernel {
	return report.Kernel{
		Name: k.Name, Release: k.Release, Version: k.Version.String(), Suite: k.Suite,
		Package: k.Package, PackageVersion: k.PackageVersion, SHA256: k.SHA256,
		Compiler: k.Compiler.String(), BTF: k.BTF,
	}
}

func summarize(cells []report.Cell) string {
	n := map[outcome.Outcome]int{}
	for _, c := range cells {
		n[c.Outcome]++
	}
	var parts []string
	for _, o := range outcome.All {
		if n[o] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[o], o))
		}
	}
	return strings.Join(parts, ", ")
}

func tail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > lines {
		ls = append([]string{fmt.Sprintf("[… %d earlier lines]", len(ls)-lines)}, ls[len(ls)-lines:]...)
	}
	return strings.Join(ls, "\n")
}

// userPayloadName names a user payload after its file or directory: "bpf:probe" for probe.o.
func userPayloadName(kind, path string) string {
	base := strings.TrimSuffix(filepath.Base(filepath.Clean(path)), filepath.Ext(path))
	return kind + ":" + base
}
