package matrix

import (
	"bytes"
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

// userCommand is one of the user's payloads as run in the guest.
type userCommand struct {
	payload string // "bpf:probe", "kmod:mydriver"
	command string // vmtest.Command.Name
}

// userCommands adds the files and guest commands for the user's BPF objects
// and modules (modules maps a built user module's payload to its guest path).
// Each object or module is its own command, so one that crashes the loader
// cannot hide another's results.
func (r *Runner) userCommands(spec *vmtest.Spec, modules map[string]string) []userCommand {
	if r.tool == "" {
		return nil
	}
	tool := guestDir + "/kmatrix-guest"
	spec.Files = append(spec.Files, vmtest.File{Host: r.tool, Guest: tool})
	var cmds []userCommand
	checkCmd := append([]string(nil), r.opts.CheckCmd...)
	if len(checkCmd) > 0 {
		// A check that is a file on the host is copied in: the guest has
		// nothing of the host's but what kmatrix puts there.
		if fi, err := os.Stat(checkCmd[0]); err == nil && fi.Mode().IsRegular() {
			gp := guestDir + "/check/" + filepath.Base(checkCmd[0])
			spec.Files = append(spec.Files, vmtest.File{Host: checkCmd[0], Guest: gp, Mode: 0o755})
			checkCmd[0] = gp
		}
	}
	for _, f := range r.opts.Files {
		host, guest, _ := strings.Cut(f, ":")
		spec.Files = append(spec.Files, vmtest.File{Host: host, Guest: guest, Mode: 0o755})
	}
	check := func(args []string) []string {
		var flags []string // before the object: the flag package stops at it
		for _, a := range r.opts.Attach {
			flags = append(flags, "-attach", a)
		}
		for _, p := range r.opts.NoFire {
			flags = append(flags, "-no-fire", p)
		}
		args = append(flags, args...)
		if len(checkCmd) > 0 {
			args = append(append(args, "--"), checkCmd...)
		}
		return args
	}
	for i, obj := range r.opts.BPFObjects {
		payload := userPayloadName("bpf", obj)
		gp := fmt.Sprintf("%s/user/%d-%s", guestDir, i, filepath.Base(obj))
		spec.Files = append(spec.Files, vmtest.File{Host: obj, Guest: gp})
		// The command is named after the payload, so that "the kernel
		// oopsed during command kmod:mydriver" names the culprit.
		spec.Commands = append(spec.Commands, vmtest.Command{Name: payload, Path: tool, Args: check([]string{gp})})
		cmds = append(cmds, userCommand{payload: payload, command: payload})
	}
	for _, d := range r.opts.KmodDirs {
		payload := userPayloadName("kmod", d)
		gp, built := modules[payload]
		if !built {
			continue
		}
		spec.Commands = append(spec.Commands, vmtest.Command{Name: payload, Path: tool, Args: check([]string{"-kmod", gp})})
		cmds = append(cmds, userCommand{payload: payload, command: payload})
	}
	return cmds
}

// userCells turns kmatrix-guest's results into cells: one per program and
// stage ("<program>/load", "<program>/attach"), one per module stage, and
// the check command's.
// missing and why say what became of a command that reported nothing;
// kernelLog is the kernel's own report (oops, panic) when there is one.
func (r *Runner) userCells(k *kernels.Kernel, cmds []userCommand, results map[string]vmtest.CommandResult, buildFailed map[string]report.Cell, missing outcome.Outcome, why, kernelLog string) []report.Cell {
	var cells []report.Cell
	for _, d := range r.opts.KmodDirs {
		payload := userPayloadName("kmod", d)
		if bc, failed := buildFailed[payload]; failed {
			cells = append(cells, report.Cell{Kernel: k.Name, Payload: payload, Check: "load", Stage: "build", Outcome: bc.Outcome,
				Evidence: report.Evidence{Message: notBuilt(bc)}})
		}
	}
	for _, uc := range cmds {
		cr, ran := results[uc.command]
		progs, err := guest.Decode(bytes.NewReader(cr.Stdout))
		if !ran || err != nil || len(progs) == 0 {
			c := report.Cell{Kernel: k.Name, Payload: uc.payload, Check: "load", Stage: "load", Outcome: missing,
				Evidence: report.Evidence{Message: "kmatrix-guest reported nothing: " + why, Log: string(cr.Stderr)}}
			switch {
			case ran && cr.Err != "":
				// It did not finish: the kernel's doing (an oops in the
				// module's init kills the loader), with the kernel's report.
				c.Evidence.Message = "kmatrix-guest did not finish: " + cr.Err
				if strings.HasPrefix(cr.Err, "not run") {
					c.Evidence.Message = cr.Err
				}
				if kernelLog != "" {
					c.Evidence.Log = kernelLog
				}
			case ran && cr.ExitCode != 0:
				// The loader exited by itself, refusing the input
				// (an unreadable object): the user's problem, named.
				c.Outcome, c.Evidence.Message = outcome.LoadError, firstMeaningfulLine(string(cr.Stderr))
			}
			if err != nil {
				c.Evidence.Message += " (" + err.Error() + ")"
			}
			cells = append(cells, c)
			continue
		}
		for _, p := range progs {
			// A BPF object has many programs: "<program>/<stage>". A
			// module payload is one module: its stage is the check.
			check := string(p.Stage)
			if p.Program != "" && p.Type != "module" {
				check = p.Program + "/" + string(p.Stage)
			}
			stage := string(p.Stage)
			if stage == "check" {
				stage = "behave"
			}
			c := report.Cell{Kernel: k.Name, Payload: uc.payload, Check: check, Stage: stage, Outcome: p.Outcome,
				DurationMS: int64(p.DurationMS), Evidence: report.Evidence{Message: p.Message, Log: p.Log, Facts: programFacts(p)}}
			cells = append(cells, c)
		}
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
