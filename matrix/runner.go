package matrix

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/matrix/report"
	"github.com/kmatrix/kmatrix/vmtest"
)

// Guest paths. Everything kmatrix puts in a guest lives under /kmatrix.
const guestDir = "/kmatrix"

// Runner runs the matrix for one kernel at a time. What is the same for
// every kernel (guest test binaries, the payloads) is set up once by
// NewRunner; Kernel then has every payload prepare for the kernel, boots
// one VM with all of them, and turns everything that happened into cells.
type Runner struct {
	opts     Options
	progress *Progress
	env      *Env
	payloads []Payload
	// releaseTmp removes the run's scratch directory and drops its owner lock.
	releaseTmp func() error
}

// NewRunner sets up the payloads of opts. Its error is an infra error:
// without them no kernel can be tested.
func NewRunner(ctx context.Context, opts Options) (*Runner, error) {
	opts = opts.withDefaults()
	// Owned (flock) so that a later run removes it if this one is killed.
	tmp, release, err := kernels.OwnedTempDir(kernels.RunDirPrefix)
	if err != nil {
		return nil, err
	}
	r := &Runner{opts: opts, progress: opts.progress, releaseTmp: release, env: &Env{opts: opts, progress: opts.progress, tmp: tmp}}
	if r.payloads, err = payloadsOf(ctx, opts, r.env); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Payloads are the run's payloads, in report order.
func (r *Runner) Payloads() []Payload { return r.payloads }

// payloadsOf makes the payloads opts name: the built-in ones, the user's
// BPF objects and module directories, then opts.Extra.
func payloadsOf(ctx context.Context, opts Options, env *Env) ([]Payload, error) {
	var ps []Payload
	for _, name := range opts.Payloads {
		p, err := newBuiltin(ctx, name, env)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	objNames, err := uniqueNames("bpf", opts.BPFObjects)
	if err != nil {
		return nil, err
	}
	batch := &objectBatch{}
	for i, obj := range opts.BPFObjects {
		p := &objectPayload{name: objNames[i], path: obj, check: opts.CheckCmd, flags: guestToolFlags(opts), batch: batch}
		batch.members = append(batch.members, p)
		ps = append(ps, p)
	}
	modNames, err := uniqueNames("kmod", opts.KmodDirs)
	if err != nil {
		return nil, err
	}
	for i, d := range opts.KmodDirs {
		ps = append(ps, &modulePayload{name: modNames[i], dir: d, check: opts.CheckCmd})
	}
	gts, err := userGoTests(ctx, opts.GoTests, opts.GoTestArgs, env)
	if err != nil {
		return nil, err
	}
	ps = append(ps, gts...)
	ps = append(ps, opts.Extra...)
	seen := map[string]bool{PayloadKernel: true}
	for _, p := range ps {
		if seen[p.Name()] {
			return nil, fmt.Errorf("two payloads are named %q: payload names must be unique in a run", p.Name())
		}
		seen[p.Name()] = true
	}
	return ps, nil
}

// guestToolFlags are kmatrix-guest's flags for the user's attach targets
// and the programs not expected to fire; they go before the object, where
// the flag package stops.
func guestToolFlags(opts Options) []string {
	var flags []string
	for _, a := range opts.Attach {
		flags = append(flags, "-attach", a)
	}
	for _, p := range opts.NoFire {
		flags = append(flags, "-no-fire", p)
	}
	return flags
}

// userFiles are the files the user ships into every guest ("HOST:GUEST").
func userFiles(opts Options) []vmtest.File {
	var fs []vmtest.File
	for _, f := range opts.Files {
		host, guest, _ := strings.Cut(f, ":")
		fs = append(fs, vmtest.File{Host: host, Guest: guest, Mode: 0o755})
	}
	return fs
}

// KernelFiles are the files a Debian system running k has, which BPF
// loaders read: /boot/config-<release>, where libbpf and cilium/ebpf find
// the kernel's configuration for `.kconfig` externs and feature probes
// (Debian kernels are built without CONFIG_IKCONFIG_PROC, so there is no
// /proc/config.gz to fall back on). Without it an object with `extern
// ... __kconfig` fails to load in the guest but not on the user's system.
func KernelFiles(k *kernels.Kernel) []vmtest.File {
	if k.Config == "" || k.Release == "" {
		return nil
	}
	// Shared: the same in every run of k, so its snapshot holds it.
	return []vmtest.File{{Host: k.Config, Guest: "/boot/config-" + k.Release, Mode: 0o644, Shared: true}}
}

// Close removes what the run wrote to temporary storage.
func (r *Runner) Close() error {
	return r.releaseTmp()
}

// Kernel runs every payload on k in one VM and returns its cells and the
// report row. The error is an infra error (also present as a cell).
func (r *Runner) Kernel(ctx context.Context, k *kernels.Kernel) ([]report.Cell, report.Kernel, error) {
	row := reportKernel(k)
	spec := vmtest.Spec{
		Kernel:   k.Vmlinuz,
		Timeout:  r.opts.Timeout,
		MemoryMB: 512,
		CPUs:     1,
		Cold:     r.opts.Cold,
		Append:   lsmArgs(k), // BPF LSM on, where the kernel has it
	}

	// Host side: each payload builds what it needs for k and says what
	// goes into the guest.
	var cells []report.Cell
	plans := make([]*Plan, len(r.payloads))
	names := map[string]string{} // guest command → payload
	for i, p := range r.payloads {
		plan, err := p.Prepare(ctx, k, r.env)
		if err != nil {
			// kmatrix could not prepare the payload: its own failure.
			cells = append(cells, prepareFailed(k.Name, p, err)...)
			continue
		}
		for _, c := range plan.Commands {
			if c.Name != p.Name() && !strings.HasPrefix(c.Name, p.Name()+"/") || names[c.Name] != "" {
				return nil, row, fmt.Errorf("payload %s: guest command %q must be named after the payload, once", p.Name(), c.Name)
			}
			names[c.Name] = p.Name()
		}
		for j := range plan.Commands {
			if plan.Commands[j].Timeout == 0 {
				plan.Commands[j].Timeout = r.opts.CommandTimeout
			}
		}
		plans[i] = plan
		cells = append(cells, plan.Cells...)
		spec.Files = append(spec.Files, plan.Files...)
		spec.Commands = append(spec.Commands, plan.Commands...)
	}
	// The user's files first: one of theirs at a path kmatrix also fills wins.
	spec.Files = dedupFiles(append(append(spec.Files, userFiles(r.opts)...), KernelFiles(k)...))

	var floorErr error
	if r.opts.MeasureFloor {
		// Before the run, not beside it: a floor measured while this
		// kernel's own VM competes for the CPU would be no floor.
		var floor time.Duration
		if floor, floorErr = vmtest.BootFloor(ctx, k.Vmlinuz); floorErr == nil {
			row.FloorMS = ms(floor)
			// The boot deadline scales with this kernel's own floor
			// rather than the default estimate.
			spec.BootFloor = floor
		}
	}

	r.progress.Phase(k.Name, PhaseBoot, "")
	res, err := vmtest.Run(ctx, spec)
	if res == nil {
		res = &vmtest.Result{Outcome: outcome.InfraError}
		if err != nil {
			res.Err = err.Error()
		}
	}
	row.Accel = res.Accel
	row.BootMS = ms(res.Timings.Total)

	bootCell := report.Cell{Kernel: k.Name, Payload: PayloadKernel, Check: "boot", Stage: outcome.StageLoad, Outcome: outcome.Pass, DurationMS: row.BootMS,
		Evidence: report.Evidence{Facts: map[string]string{"accel": res.Accel, "release": k.Release}}}
	// Whether the guest was restored from a snapshot of a booted kernel
	// (and which), or booted cold and why.
	if res.Snapshot != "" {
		bootCell.Evidence.Facts["restored_from"] = res.Snapshot
		if res.SnapshotMade {
			bootCell.Evidence.Facts["snapshot_made"] = "yes: this kernel's first run made it (a boot and a save)"
		}
	} else if res.ColdReason != "" {
		bootCell.Evidence.Facts["cold_boot"] = res.ColdReason
	}
	if floorErr != nil {
		bootCell.Evidence.Facts["floor_error"] = floorErr.Error()
	}
	// What stopped the guest decides the cells of checks that never reported.
	run := GuestRun{Kernel: k, Results: map[string]vmtest.CommandResult{}, Missing: outcome.Fail,
		Why: "the guest test binary exited without reporting it (crashed?)", KernelLog: res.Excerpt}
	switch res.Outcome {
	case outcome.Pass, outcome.Fail:
	default:
		bootCell.Outcome = res.Outcome
		run.Missing = res.Outcome
		run.Why = guestVerdict(res)
		bootCell.Evidence.Message = run.Why
		switch {
		case err != nil && !strings.Contains(res.Err, err.Error()):
			bootCell.Evidence.Message += ": " + err.Error()
		case strings.HasPrefix(res.Err, run.Why):
			bootCell.Evidence.Message = res.Err // says it all, and more
		case res.Err != "":
			bootCell.Evidence.Message += ": " + res.Err
		}
		bootCell.Evidence.Log = res.Excerpt
	}
	cells = append(cells, bootCell)
	for _, c := range res.Commands {
		run.Results[c.Name] = c
	}
	for _, plan := range plans {
		if plan != nil && plan.Collect != nil {
			cells = append(cells, plan.Collect(run)...)
		}
	}

	// Panics, oopses and splats count even when every test passed: a
	// kernel that WARNs under the payload is a finding of its own.
	if res.Outcome == outcome.Splat || res.Outcome == outcome.Oops {
		bootCell.Outcome = res.Outcome
	}
	r.progress.SetCells(k.Name, len(cells))
	r.progress.Phase(k.Name, PhaseDone, summarize(cells))
	if res.Outcome == outcome.InfraError {
		if err == nil {
			err = fmt.Errorf("guest infra error: %s", bootCell.Evidence.Message)
		}
		return cells, row, fmt.Errorf("%s: %w", k.Name, err)
	}
	return cells, row, nil
}

// prepareFailed is what a payload that kmatrix could not prepare reports:
// an infra-error for each declared check, or one "prepare" cell.
func prepareFailed(kernel string, p Payload, err error) []report.Cell {
	msg := "kmatrix could not prepare this payload: " + err.Error()
	if cs := p.Checks(); len(cs) > 0 {
		return cellsFor(kernel, p.Name(), cs, outcome.InfraError, msg)
	}
	return cellsFor(kernel, p.Name(), []Check{{Name: "prepare", Stage: outcome.StageBuild}}, outcome.InfraError, msg)
}

// dedupFiles drops repeated files (two payloads shipping kmatrix-guest).
func dedupFiles(fs []vmtest.File) []vmtest.File {
	seen := map[string]bool{}
	out := fs[:0]
	for _, f := range fs {
		if seen[f.Guest] {
			continue
		}
		seen[f.Guest] = true
		out = append(out, f)
	}
	return out
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

func reportKernel(k *kernels.Kernel) report.Kernel {
	return report.Kernel{
		Name: k.Name, Arch: kernelArch(k.Arch), Release: k.Release, Version: k.Version.String(), Suite: k.Suite,
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
