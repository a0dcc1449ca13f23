package matrix

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/matrix/guest"
	"github.com/kmatrix/kmatrix/matrix/report"
	"github.com/kmatrix/kmatrix/vmtest"
)

// Users' BPF objects and module directories are loaded in the guest by
// kmatrix-guest (package matrix/guest), which reports one JSON result per
// program (or module) and stage. The objects of a run share one
// kmatrix-guest -batch command per kernel: one worker process loads them
// all, so the kernel's BTF is decoded once, and the batch keeps each
// object's isolation (a worker that dies costs only the object it was on;
// the rest run again one process each, guest.RunBatch). A module is a
// command of its own.

// objectPayload is a user's BPF ELF object: every program in it is loaded
// and attached where its section says, on every kernel.
type objectPayload struct {
	name, path string
	check      []string // the user's check command, run while everything is attached
	flags      []string // kmatrix-guest flags: attach targets, programs not expected to fire
	// batch is the run's objects, which share one guest command.
	batch *objectBatch
}

// objectBatch is the objects of a run; the first one's plan carries the
// guest command that runs them all.
type objectBatch struct{ members []*objectPayload }

func (b *objectBatch) command() string {
	if len(b.members) == 1 {
		return b.members[0].name
	}
	return b.members[0].name + "/batch"
}

func (p *objectPayload) Name() string { return p.name }

// Checks: an object's programs are known only once it is opened in the
// guest, so its checks ("<program>/load", "<program>/attach") are too.
func (p *objectPayload) Checks() []Check { return nil }

// guestPath is where the object is in the guest.
func (p *objectPayload) guestPath() string {
	return fmt.Sprintf("%s/user/%s/%s", guestDir, safeName(p.name), filepath.Base(p.path))
}

// guestModuleDir is where the kernel's modules that programs may need
// (kernels.GuestModules, and the providers of the kfuncs they call) are
// in the guest.
const guestModuleDir = guestDir + "/modules"

func (p *objectPayload) Prepare(ctx context.Context, k *kernels.Kernel, env *Env) (*Plan, error) {
	tool, err := env.GuestToolFor(ctx, k.Arch)
	if err != nil {
		return nil, err
	}
	plan := &Plan{Files: []vmtest.File{{Host: tool, Guest: guestTool, Shared: true}, {Host: p.path, Guest: p.guestPath()}}}
	plan.Files = append(plan.Files, uprobeFiles(p.path, k.Arch, append(plan.Files, userFiles(env.opts)...))...)
	for _, m := range k.Modules {
		plan.Files = append(plan.Files, vmtest.File{Host: m, Guest: guestModuleDir + "/" + filepath.Base(m)})
	}
	kf, err := kfuncFiles(p.path, k)
	if err != nil {
		return nil, err
	}
	plan.Files = append(plan.Files, kf...)
	b := p.batch
	if b == nil {
		b = &objectBatch{members: []*objectPayload{p}}
	}
	if b.members[0] == p {
		flags := []string{"-batch", "-object-timeout", env.opts.CommandTimeout.String()}
		if len(k.Modules) > 0 || k.KfuncIndex != "" {
			flags = append(flags, "-modules", guestModuleDir)
		}
		for _, m := range b.members {
			flags = append(flags, m.guestPath())
		}
		args, files := checkArgs(append(append([]string{}, p.flags...), flags...), p.check)
		plan.Files = append(plan.Files, files...)
		// Each object has the command limit; the culprit of a shared
		// worker's death runs twice.
		// Prestarted: the snapshot holds kmatrix-guest started, with a
		// spare worker that has decoded the kernel's BTF.
		plan.Commands = []vmtest.Command{{Name: b.command(), Path: guestTool, Args: args,
			Timeout: time.Duration(len(b.members)+1) * env.opts.CommandTimeout, Prestart: true}}
	}
	plan.Collect = func(g GuestRun) []report.Cell { return objectCells(g, p.name, b.command(), p.guestPath()) }
	return plan, nil
}

// modulePayload is a user's out-of-tree module source directory: built per
// kernel, loaded, checked, unloaded.
type modulePayload struct {
	name, dir string
	check     []string
}

func (p *modulePayload) Name() string { return p.name }

func (p *modulePayload) Checks() []Check {
	return []Check{
		{Name: "build", Stage: outcome.StageBuild, Doc: "the module compiles against the kernel's headers with the kernel's gcc major"},
		{Name: "load", Stage: outcome.StageLoad, Doc: "it loads: vermagic, symbols and its init function"},
	}
}

func (p *modulePayload) Prepare(ctx context.Context, k *kernels.Kernel, env *Env) (*Plan, error) {
	env.progress.Phase(k.Name, PhaseBuild, k.Compiler.String())
	bc, ko := env.BuildModule(ctx, k, p.name, p.dir)
	plan := &Plan{Cells: []report.Cell{bc}}
	if ko == "" {
		plan.Cells = append(plan.Cells, cellsFor(k.Name, p.name, p.Checks()[1:], bc.Outcome, notBuilt(bc))...)
		return plan, nil
	}
	tool, err := env.GuestToolFor(ctx, k.Arch)
	if err != nil {
		return nil, err
	}
	gko := fmt.Sprintf("%s/user/%s.ko", guestDir, safeName(p.name))
	plan.Files = []vmtest.File{{Host: tool, Guest: guestTool, Shared: true}, {Host: ko, Guest: gko}}
	args, files := checkArgs([]string{"-kmod", gko}, p.check)
	plan.Files = append(plan.Files, files...)
	plan.Commands = []vmtest.Command{{Name: p.name, Path: guestTool, Args: args}}
	plan.Collect = func(g GuestRun) []report.Cell { return guestToolCells(g, p.name) }
	return plan, nil
}

// guestTool is where kmatrix-guest lives in a guest.
const guestTool = guestDir + "/kmatrix-guest"

// safeName turns a payload name into one path component.
func safeName(name string) string {
	return strings.NewReplacer(":", "_", "/", "_").Replace(name)
}

// checkArgs appends the user's check command to kmatrix-guest's arguments.
// A check that is a file on the host is copied in: the guest has nothing of
// the host's but what kmatrix puts there.
func checkArgs(args, check []string) ([]string, []vmtest.File) {
	if len(check) == 0 {
		return args, nil
	}
	check = append([]string(nil), check...)
	var files []vmtest.File
	if fi, err := os.Stat(check[0]); err == nil && fi.Mode().IsRegular() {
		gp := guestDir + "/check/" + filepath.Base(check[0])
		if filepath.IsAbs(check[0]) && !strings.HasPrefix(check[0], guestDir+"/") && check[0] != "/init" {
			// At its own path: a uprobe on /bin/bash fires when the
			// check runs /bin/bash, not a copy of it elsewhere.
			gp = check[0]
		}
		// With its interpreter and libraries when it is dynamic.
		fs, err := vmtest.ExecutableFiles(check[0], gp)
		if err != nil {
			fs = []vmtest.File{{Host: check[0], Guest: gp, Mode: 0o755}}
		}
		files = append(files, fs...)
		check[0] = gp
	}
	return append(append(args, "--"), check...), files
}

// objectCells turns an object's part of a batch into cells: its last
// attempt's results, and a cell for a worker that died on it.
func objectCells(g GuestRun, payload, command, object string) []report.Cell {
	cr, ran := g.Results[command]
	runs, err := guest.DecodeBatch(bytes.NewReader(cr.Stdout))
	or := runs[object]
	if !ran || or == nil {
		msg := "kmatrix-guest reported nothing about this object: " + g.Why
		switch {
		case ran && strings.HasPrefix(cr.Err, "not run"):
			msg = cr.Err
		case ran && cr.Err != "":
			msg = "kmatrix-guest did not reach this object: " + cr.Err
		case ran && cr.ExitCode != 0:
			msg = "kmatrix-guest failed before this object: " + firstLine(string(cr.Stderr))
		}
		if err != nil {
			msg += " (" + err.Error() + ")"
		}
		return []report.Cell{{Kernel: g.Kernel.Name, Payload: payload, Check: "load", Stage: outcome.StageLoad, Outcome: g.Missing,
			Evidence: report.Evidence{Message: msg, Log: firstNonEmpty(g.KernelLog, string(cr.Stderr))}}}
	}
	cells := resultCells(g, payload, or.Results)
	var shared []string
	for _, e := range or.Earlier {
		shared = append(shared, e.Died)
	}
	if len(shared) > 0 {
		// It ran again alone after the shared worker died on it; these
		// are its own process's results.
		for i := range cells {
			if cells[i].Evidence.Facts == nil {
				cells[i].Evidence.Facts = map[string]string{}
			}
			cells[i].Evidence.Facts["shared_agent_died"] = strings.Join(shared, "; ")
		}
	}
	end := or.End
	switch {
	case end != nil && end.Unusable != "":
		// The loader refused the input (an unreadable object): the
		// user's problem, named.
		cells = append(cells, report.Cell{Kernel: g.Kernel.Name, Payload: payload, Check: "load", Stage: outcome.StageLoad, Outcome: outcome.LoadError,
			Evidence: report.Evidence{Message: end.Unusable}})
	case end != nil && end.Died == "":
	default:
		cells = append(cells, agentDied(g, payload, or, len(cells) == 0))
	}
	return cells
}

// agentDied is the cell of an object whose worker died on it (end set), or
// whose run never ended because the guest went down (end nil).
func agentDied(g GuestRun, payload string, or *guest.ObjectRun, first bool) report.Cell {
	c := report.Cell{Kernel: g.Kernel.Name, Payload: payload, Check: "agent", Stage: outcome.StageBehave, Outcome: g.Missing,
		Evidence: report.Evidence{Facts: map[string]string{"attempts": strconv.Itoa(or.Attempts)}}}
	if first {
		// Nothing of it reported: it died loading.
		c.Check, c.Stage = "load", outcome.StageLoad
	}
	end := or.End
	if end == nil {
		c.Evidence.Message = "kmatrix-guest did not finish this object: " + g.Why
		c.Evidence.Log = g.KernelLog
		return c
	}
	where := "in the agent process it shared with other objects"
	if or.Begin != nil && or.Begin.Alone {
		where = "in an agent process of its own"
	}
	c.Evidence.Message = fmt.Sprintf("kmatrix-guest died on this object %s: %s", where, end.Died)
	if len(or.Earlier) > 0 {
		c.Evidence.Message += fmt.Sprintf(" (and before, in the shared agent process: %s)", or.Earlier[0].Died)
	}
	c.Evidence.Facts["agent_exit"] = end.Died
	if end.TimedOut && g.Missing == outcome.Fail {
		c.Outcome = outcome.Timeout
	}
	if end.KernelDied {
		c.Evidence.Message += "; the kernel oopsed meanwhile"
	}
	c.Evidence.Log = strings.TrimSpace(end.Stderr + "\n" + g.KernelLog)
	return c
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// guestToolCells turns kmatrix-guest's results into cells: one per program
// and stage ("<program>/load", "<program>/attach"), one per module stage,
// and the check command's.
func guestToolCells(g GuestRun, payload string) []report.Cell {
	cr, ran := g.Results[payload]
	progs, err := guest.Decode(bytes.NewReader(cr.Stdout))
	if !ran || err != nil || len(progs) == 0 {
		c := report.Cell{Kernel: g.Kernel.Name, Payload: payload, Check: "load", Stage: outcome.StageLoad, Outcome: g.Missing,
			Evidence: report.Evidence{Message: "kmatrix-guest reported nothing: " + g.Why, Log: string(cr.Stderr)}}
		switch {
		case ran && cr.Err != "":
			// It did not finish: the kernel's doing (an oops in the
			// module's init kills the loader), with the kernel's report.
			c.Evidence.Message = "kmatrix-guest did not finish: " + cr.Err
			if strings.HasPrefix(cr.Err, "not run") {
				c.Evidence.Message = cr.Err
			}
			if g.KernelLog != "" {
				c.Evidence.Log = g.KernelLog
			}
		case ran && cr.ExitCode != 0:
			// The loader exited by itself, refusing the input
			// (an unreadable object): the user's problem, named.
			c.Outcome, c.Evidence.Message = outcome.LoadError, firstLine(string(cr.Stderr))
		}
		if err != nil {
			c.Evidence.Message += " (" + err.Error() + ")"
		}
		return []report.Cell{c}
	}
	return resultCells(g, payload, progs)
}

// resultCells makes one cell per result.
func resultCells(g GuestRun, payload string, progs []guest.ProgramResult) []report.Cell {
	var cells []report.Cell
	for _, p := range progs {
		// A BPF object has many programs: "<program>/<stage>". A module
		// payload is one module: its stage is the check.
		check := string(p.Stage)
		if p.Program != "" && p.Type != "module" {
			check = p.Program + "/" + string(p.Stage)
		}
		cells = append(cells, report.Cell{Kernel: g.Kernel.Name, Payload: payload, Check: check, Stage: p.Stage.Cell(), Outcome: p.Outcome,
			DurationMS: int64(p.DurationMS), Evidence: report.Evidence{Message: p.Message, Log: p.Log, Facts: programFacts(p)}})
	}
	return cells
}

func programFacts(p guest.ProgramResult) map[string]string {
	f := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			f[k] = v
		}
	}
	num := func(k string, v uint64) {
		if v != 0 {
			f[k] = strconv.FormatUint(v, 10)
		}
	}
	set("section", p.Section)
	set("type", p.Type)
	set("attach_point", p.Facts.AttachPoint)
	set("errno", p.Facts.Errno)
	set("class", string(p.Facts.Class))
	set("requires_kernel", p.Facts.RequiresKernel)
	set("core_relocation", p.Facts.CORERelocation)
	set("variant", p.Facts.Variant)
	set("trigger", p.Facts.Trigger)
	set("struct_ops_map", p.Facts.Map)
	if p.Facts.VerifiedInsns != nil {
		set("verified_insns", p.Facts.VerifiedInsns.String())
	}
	if v := p.Facts.Verifier; v != nil {
		// report diff compares insns_processed across kernels and runs.
		num("insns_processed", uint64(v.InsnsProcessed))
		num("insn_limit", uint64(v.InsnLimit))
		num("total_states", uint64(v.TotalStates))
		num("peak_states", uint64(v.PeakStates))
		num("verification_us", v.VerificationUS)
		num("jited_bytes", uint64(v.JitedBytes))
		num("xlated_bytes", uint64(v.XlatedBytes))
		set("stack_depth", v.StackDepth)
	}
	if p.Facts.RunCount != nil {
		f["run_count"] = strconv.FormatUint(*p.Facts.RunCount, 10)
		if p.Facts.RunTimeNS != nil {
			f["run_time_ns"] = strconv.FormatUint(*p.Facts.RunTimeNS, 10)
			if *p.Facts.RunCount > 0 {
				f["mean_run_ns"] = strconv.FormatUint(*p.Facts.RunTimeNS / *p.Facts.RunCount, 10)
			}
		}
	}
	if p.Facts.ExitCode != nil {
		set("exit_code", strconv.Itoa(*p.Facts.ExitCode))
	}
	if len(f) == 0 {
		return nil
	}
	return f
}
