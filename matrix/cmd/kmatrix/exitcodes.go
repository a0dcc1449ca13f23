package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/kmatrix/kmatrix/matrix/outcome"
	"github.com/kmatrix/kmatrix/matrix/report"
)

// Exit codes of kmatrix, the same for `run` and `report diff` (and `report
// merge`), so CI can tell a new failure from a known one and from its own
// infrastructure's trouble. exitCodesHelp is the table users read
// (`kmatrix help exit-codes`, and README's "Exit codes").
const (
	// exitOK: every cell passed, or failed as an expectation declares.
	exitOK = 0
	// exitFailed: a cell failed and no expectation allows it, or a cell
	// passed where an expectation says it fails (an unexpected pass). With
	// a baseline, only cells whose outcome changed count.
	exitFailed = 1
	// exitUsage: bad flags, arguments or input files; nothing ran.
	exitUsage = 2
	// exitRegressed: with a baseline (run --baseline, report diff), a cell
	// that passed there fails now. Checked before everything else.
	exitRegressed = 3
	// exitInfra: the only failures are kmatrix's own or the machine's
	// (infra-error cells, a shard missing from a merge): retry these.
	exitInfra = 4
	// exitInterrupted and exitTerminated: stopped by SIGINT or SIGTERM
	// (128 + the signal's number, as shells report it).
	exitInterrupted = 128 + int(syscall.SIGINT)
	exitTerminated  = 128 + int(syscall.SIGTERM)
)

// Exit codes of `kmatrix exec` besides the command's own (and exitUsage):
// it is a `go test -exec` adapter, so it follows timeout(1) and docker run.
const (
	exitExecTimeout = 124 // the VM overran --timeout
	exitExecInfra   = 125 // kmatrix could not run the VM
)

const exitCodesHelp = `kmatrix exit codes (kmatrix run, kmatrix report diff, kmatrix report merge):

  0    every cell passed, or failed as an expectation (--expect) declares
  1    a cell failed and no expectation allows it, or an unexpected pass: a
       cell an expectation says fails passed (narrow or remove the expectation);
       with a baseline, only cells whose outcome changed count: an unchanged
       failure is not a new one
  2    usage error: bad flags, arguments or input files (expectations,
       catalog, a missing baseline without --allow-missing-baseline, no
       Debian mirror configured); nothing ran
  3    regression: with --baseline (run) or OLD (report diff), a cell that
       passed or was skipped there fails now
  4    only infrastructure failures: infra-error cells (kmatrix's or the
       machine's trouble: QEMU, downloads, the cache) or a shard missing from
       a merge; safe to retry without retrying real failures
  130  interrupted (SIGINT, Ctrl-C)
  143  terminated (SIGTERM)

When several apply, the first in this order wins: 3, 1, 4, 0.

kmatrix exec exits with the command's own status; 1 when the command
succeeded but the kernel panicked, oopsed or warned; 2 on usage errors;
124 when the VM timed out; 125 when the VM could not run.
`

// verdict decides the exit code of a finished report. base is the
// baseline report and d its diff with rep; both nil without a baseline.
func verdict(rep *report.Report, base *report.Report, d *report.Delta) int {
	if d != nil && d.Regressed() {
		return exitRegressed
	}
	was := map[[3]string]outcome.Outcome{}
	if base != nil {
		for _, c := range base.Cells {
			was[[3]string{c.Kernel, c.Payload, c.Check}] = c.Outcome
		}
	}
	failed, infra := 0, 0
	for _, c := range rep.Cells {
		switch {
		case !c.Failing():
		case c.Outcome == outcome.InfraError:
			infra++
		case c.UnexpectedPass():
			failed++ // stale expectations fail every run, baseline or not
		case base != nil && was[[3]string{c.Kernel, c.Payload, c.Check}] == c.Outcome:
			// The same failure as in the baseline: known, not new.
		default:
			failed++
		}
	}
	switch {
	case failed > 0:
		return exitFailed
	case infra > 0 || len(rep.MissingShards) > 0:
		return exitInfra
	}
	return exitOK
}

// explainVerdict prints one line saying why the exit code is not 0.
func explainVerdict(w io.Writer, cmd string, code int, rep *report.Report) {
	switch code {
	case exitFailed:
		what := "cells failed unexpectedly"
		if n := len(rep.Expectations().UnexpectedPasses); n > 0 {
			what = fmt.Sprintf("%d unexpected pass(es) (an expectation to narrow or remove), or cells failed unexpectedly", n)
		}
		fmt.Fprintf(w, "%s: exit %d: %s (see kmatrix help exit-codes)\n", cmd, code, what)
	case exitInfra:
		what := "only infrastructure failures (infra-error)"
		if len(rep.MissingShards) > 0 {
			what = fmt.Sprintf("the matrix is incomplete: shards %v are missing", rep.MissingShards)
		}
		fmt.Fprintf(w, "%s: exit %d: %s: retry; not your payload's fault\n", cmd, code, what)
	}
}

// interruptedError is the cause of the context of a command stopped by a signal.
type interruptedError struct{ sig os.Signal }

func (e interruptedError) Error() string { return "interrupted by " + e.sig.String() }

// signalCode returns the exit code for a command whose context a signal
// cancelled, or code when none did.
func signalCode(ctx context.Context, code int) int {
	var ie interruptedError
	if !errors.As(context.Cause(ctx), &ie) {
		return code
	}
	if ie.sig == syscall.SIGTERM {
		return exitTerminated
	}
	return exitInterrupted
}
