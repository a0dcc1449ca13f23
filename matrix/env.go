package matrix

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/kmod/build"
	"github.com/kmatrix/kmatrix/matrix/guestagent"
	"github.com/kmatrix/kmatrix/matrix/report"
	"github.com/kmatrix/kmatrix/vmtest"
)

// Env is what the runner lends every payload: the run's options and
// scratch space, progress reporting, and the host-side services more than
// one kind of payload uses (building a module, the guest tool).
type Env struct {
	opts     Options
	progress *Progress
	tmp      string // the run's scratch directory, removed by Runner.Close

	toolMu sync.Mutex
	tools  map[string]string // kmatrix-guest by guest arch
}

// Tmp is the run's scratch directory; it is removed when the run ends.
func (e *Env) Tmp() string { return e.tmp }

// AllowExpired reports whether archive indexes past their Valid-Until are
// accepted (for build roots).
func (e *Env) AllowExpired() bool { return e.opts.AllowExpired }

// Live returns a writer for a guest command's stdout that counts, on the
// progress line, one cell per finished Go test (top-level only, unless
// subtests are cells too). Its first output moves the kernel to the checks
// phase.
func (e *Env) Live(kernel, payload string, subtests bool) io.Writer {
	started := false
	return &vmtest.TestStream{Event: func(ev vmtest.TestEvent) {
		if !started {
			started = true
			e.progress.Phase(kernel, PhaseChecks, payload)
		}
		switch ev.Action {
		case "pass", "fail", "skip":
			if subtests || !strings.Contains(ev.Test, "/") {
				e.progress.Cells(kernel, 1)
			}
		}
	}}
}

// GuestTool is the host path of kmatrix-guest, the loader of users' BPF
// objects and modules, for amd64 guests: the binary embedded in this one
// (package guestagent), written into the run's scratch directory on first
// use, so that it needs neither a Go toolchain nor kmatrix's source.
func (e *Env) GuestTool(ctx context.Context) (string, error) {
	return e.GuestToolFor(ctx, "amd64")
}

// GuestToolFor is GuestTool for guests of arch (kernels.Kernel.Arch).
func (e *Env) GuestToolFor(_ context.Context, arch string) (string, error) {
	arch = kernelArch(arch)
	e.toolMu.Lock()
	defer e.toolMu.Unlock()
	if p := e.tools[arch]; p != "" {
		return p, nil
	}
	p, err := guestagent.WriteFor(filepath.Join(e.tmp, "agent"), guestagent.Agent, arch)
	if err != nil {
		return "", err
	}
	if e.tools == nil {
		e.tools = map[string]string{}
	}
	e.tools[arch] = p
	return p, nil
}

// kernelArch is a kernel's arch, amd64 when it does not say (a Kernel made
// by hand, or by a kmatrix from before arches).
func kernelArch(arch string) string {
	if arch == "" {
		return "amd64"
	}
	return arch
}

// BuildModule compiles the module source src for k and returns its build
// cell (check "build") and the .ko's host path, empty unless the build
// passed. A kernel whose headers the archive does not list skips it; a
// failure of kmatrix's own machinery (a build root it could not make) is
// an infra-error, a compiler error in the module a build-error.
func (e *Env) BuildModule(ctx context.Context, k *kernels.Kernel, payload, src string) (report.Cell, string) {
	c := report.Cell{Kernel: k.Name, Payload: payload, Check: "build", Stage: outcome.StageBuild}
	if k.Headers == "" && k.HeadersMissing != "" {
		c.Outcome = outcome.Skip
		c.Evidence.Message = k.HeadersMissing + ": a module builds only against its kernel's headers"
		return c, ""
	}
	start := time.Now()
	// Each kernel × module builds in its own directory under the run's
	// temp dir: builds of different kernels run in parallel.
	out := filepath.Join(e.tmp, "build", strings.NewReplacer(":", "_", "/", "_").Replace(payload))
	res, err := build.Cached(ctx, k, src, build.Options{OutDir: out, AllowExpired: e.opts.AllowExpired})
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
		return c, ""
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
