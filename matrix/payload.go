package matrix

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/matrix/report"
	"github.com/kmatrix/kmatrix/vmtest"
)

// Payload is one unit of work of the matrix: the built-in CO-RE program, the
// built-in module, a user's BPF object, a user's module directory, a user's
// Go test packages. Every kind implements it, and the runner knows nothing
// else about them: for each kernel it asks each payload to Prepare (build
// what it needs on the host, say what goes into the guest), boots one VM
// with every payload's files and commands, and hands each payload's Collect
// what its commands did.
type Payload interface {
	// Name is the payload's name in reports ("bpf", "kmod", "bpf:probe"),
	// unique in a run. Its guest commands are named after it, so that "the
	// kernel oopsed during command kmod:mydriver" names the culprit.
	Name() string
	// Checks declares the checks the payload reports on every kernel, in
	// column order, each with its stage. A payload that learns its checks
	// in the guest (a user's Go tests) declares none; it still reports a
	// cell for everything it ran.
	Checks() []Check
	// Prepare does the host-side work for kernel k and says what goes into
	// the guest. An error is kmatrix's own failure: every declared check of
	// the payload becomes an infra-error cell with it, never the payload's.
	Prepare(ctx context.Context, k *kernels.Kernel, env *Env) (*Plan, error)
}

// Check is one check a payload declares: a column of the matrix.
type Check struct {
	// Name follows one rule everywhere (reports, JUnit, go test subtests):
	// a Go test's checks are the test's name as `go test -run` takes it
	// ("TestExecEvents", "TestLoad/kprobe"); a stage kmatrix performs
	// itself is that stage's name ("build", "load", "unload"), after the
	// item it is about when a payload has several ("count_ingress/attach").
	Name string
	// Stage decides what a failure of the check is (outcome.Stage.Failure).
	Stage outcome.Stage
	// Doc says in a sentence what the check proves.
	Doc string
}

// Plan is what a payload does on one kernel.
type Plan struct {
	// Cells are decided on the host before the guest boots (a module's
	// build cell; the skips of a kernel that lacks what the payload needs).
	Cells []report.Cell
	// Files and Commands go into the kernel's guest. A command's Name must
	// be the payload's Name or start with it and a slash.
	Files    []vmtest.File
	Commands []vmtest.Command
	// Collect turns what the commands did into cells; nil when no command
	// runs.
	Collect func(GuestRun) []report.Cell
}

// GuestRun is what one kernel's guest did, as a payload's Collect sees it.
type GuestRun struct {
	Kernel *kernels.Kernel
	// Results are the guest commands' results by command name.
	Results map[string]vmtest.CommandResult
	// Missing is the outcome of a check its command never reported (it
	// crashed, the kernel panicked, the VM timed out), and Why says why in
	// words. KernelLog is the kernel's own report (an oops) when there is one.
	Missing   outcome.Outcome
	Why       string
	KernelLog string
}

// Result returns command name's result, and whether it ran at all.
func (g GuestRun) Result(name string) (vmtest.CommandResult, bool) {
	r, ok := g.Results[name]
	return r, ok
}

// notReported is the cell of a declared check that a guest never reported.
func (g GuestRun) notReported(payload string, c Check, why string) report.Cell {
	if why == "" {
		why = g.Why
	}
	return report.Cell{Kernel: g.Kernel.Name, Payload: payload, Check: c.Name, Stage: c.Stage, Outcome: g.Missing,
		Evidence: report.Evidence{Message: fmt.Sprintf("%s did not report a result: %s", c.Name, why), Log: g.KernelLog}}
}

// cellsFor makes one cell per declared check with the same outcome and
// message: how a payload reports checks that could not run (its module did
// not build, its host-side preparation failed).
func cellsFor(kernel, payload string, checks []Check, o outcome.Outcome, msg string) []report.Cell {
	cells := make([]report.Cell, 0, len(checks))
	for _, c := range checks {
		cells = append(cells, report.Cell{Kernel: kernel, Payload: payload, Check: c.Name, Stage: c.Stage, Outcome: o,
			Evidence: report.Evidence{Message: msg}})
	}
	return cells
}

// checkNames lists the names of checks.
func checkNames(checks []Check) []string {
	names := make([]string, len(checks))
	for i, c := range checks {
		names[i] = c.Name
	}
	return names
}

// uniqueNames names user payloads of one kind ("bpf", "kmod") after their
// files: "bpf:probe" for probe.o. Inputs with the same base name get as many
// of their parent directories as tell them apart ("bpf:v1/probe",
// "bpf:v2/probe"), so the report never has two payloads of one name.
func uniqueNames(kind string, paths []string) ([]string, error) {
	parts := make([][]string, len(paths))
	for i, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		abs = strings.TrimSuffix(abs, filepath.Ext(abs))
		parts[i] = strings.Split(strings.Trim(filepath.ToSlash(abs), "/"), "/")
	}
	depth := make([]int, len(paths))
	names := make([]string, len(paths))
	for {
		groups := map[string][]int{}
		for i, ps := range parts {
			depth[i] = max(depth[i], 1)
			names[i] = kind + ":" + strings.Join(ps[max(0, len(ps)-depth[i]):], "/")
			groups[names[i]] = append(groups[names[i]], i)
		}
		var dups []string
		for n, members := range groups {
			if len(members) < 2 {
				continue
			}
			grew := false
			for _, i := range members {
				if depth[i] < len(parts[i]) {
					depth[i]++
					grew = true
				}
			}
			if !grew {
				dups = append(dups, n)
			}
		}
		if len(dups) > 0 {
			sort.Strings(dups)
			return nil, fmt.Errorf("--%s: the same input is given more than once (%s): give each once", kind, strings.Join(dups, ", "))
		}
		if len(groups) == len(paths) {
			return names, nil
		}
	}
}
