package matrix

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/matrix/guest"
	"github.com/kmatrix/kmatrix/matrix/report"
	"github.com/kmatrix/kmatrix/vmtest"
)

// Users' BPF objects and module directories are loaded in the guest by
// kmatrix-guest (package matrix/guest), which reports one JSON result per
// program (or module) and stage. Each object or module is a command of its
// own, so one that crashes the loader cannot hide another's results.

// objectPayload is a user's BPF ELF object: every program in it is loaded
// and attached where its section says, on every kernel.
type objectPayload struct {
	name, path string
	check      []string // the user's check command, run while everything is attached
	flags      []string // kmatrix-guest flags: attach targets, programs not expected to fire
}

func (p *objectPayload) Name() string { return p.name }

// Checks: an object's programs are known only once it is opened in the
// guest, so its checks ("<program>/load", "<program>/attach") are too.
func (p *objectPayload) Checks() []Check { return nil }

func (p *objectPayload) Prepare(ctx context.Context, k *kernels.Kernel, env *Env) (*Plan, error) {
	tool, err := env.GuestTool(ctx)
	if err != nil {
		return nil, err
	}
	gp := fmt.Sprintf("%s/user/%s/%s", guestDir, safeName(p.name), filepath.Base(p.path))
	plan := &Plan{Files: []vmtest.File{{Host: tool, Guest: guestTool, Shared: true}, {Host: p.path, Guest: gp}}}
	args, files := checkArgs(append(append([]string{}, p.flags...), gp), p.check)
	plan.Files = append(plan.Files, files...)
	plan.Files = append(plan.Files, uprobeFiles(p.path, append(plan.Files, userFiles(env.opts)...))...)
	plan.Commands = []vmtest.Command{{Name: p.name, Path: guestTool, Args: args}}
	plan.Collect = func(g GuestRun) []report.Cell { return guestToolCells(g, p.name) }
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
	tool, err := env.GuestTool(ctx)
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
