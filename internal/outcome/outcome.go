// Package outcome is kmatrix's one vocabulary of results: every cell of the
// matrix (kernel × payload × check) ends with exactly one Outcome, in one
// Stage of a payload's life (fetch, build, load, attach, behave, unload),
// and a failure in a stage has one Outcome (Stage.Failure).
//
// It is a leaf package (it imports only fmt) so that vmtest, kmod, bpf and
// matrix can all speak it without importing each other. Programs outside
// this module use the same types through package matrix/outcome.
package outcome

import "fmt"

// Outcome is the result class of one cell. The string values are part of the
// report.json schema: never rename one.
type Outcome string

const (
	// Pass: every check held.
	Pass Outcome = "pass"
	// Fail: the payload loaded but behaved wrongly.
	Fail Outcome = "fail"
	// Skip: declared unsupported on this kernel (the reason names the version needed).
	Skip Outcome = "skip"
	// BuildError: the module did not compile.
	BuildError Outcome = "build-error"
	// LoadError: verifier rejection, CO-RE relocation failure, missing BTF,
	// unsupported program/map/helper; for modules bad vermagic, unknown
	// symbol, rejected signature.
	LoadError Outcome = "load-error"
	// AttachError: loaded but could not attach.
	AttachError Outcome = "attach-error"
	// NotAttached: loaded, but its section names no attach point kmatrix
	// knows, so nothing was attached. Never reported as a pass.
	NotAttached Outcome = "not-attached"
	// NeverRan: attached, but it ran 0 times while the trigger workload
	// ran. Never reported as a pass.
	NeverRan Outcome = "never-ran"
	// KernelPanic, Oops, Splat: the guest kernel crashed or warned.
	KernelPanic Outcome = "kernel-panic"
	Oops        Outcome = "oops"
	Splat       Outcome = "splat"
	// Timeout: a stage overran its limit.
	Timeout Outcome = "timeout"
	// InfraError: kmatrix's own failure (QEMU missing or crashed, download
	// failed). Never the payload's fault, never retried into a pass.
	InfraError Outcome = "infra-error"
)

// All lists every outcome, best first; reports use this order for summaries.
var All = []Outcome{Pass, Skip, Fail, BuildError, LoadError, AttachError, NotAttached, NeverRan, Timeout, Splat, Oops, KernelPanic, InfraError}

// Valid reports whether o is one of the defined outcomes.
func (o Outcome) Valid() bool {
	for _, v := range All {
		if o == v {
			return true
		}
	}
	return false
}

// Failed reports whether o counts against the payload (anything but pass and skip).
func (o Outcome) Failed() bool { return o != Pass && o != Skip }

// Severity orders outcomes so a cell made of several observations keeps the
// worst one: a kernel panic outranks a failed assertion, which outranks a pass.
func (o Outcome) Severity() int {
	for i, v := range All {
		if o == v {
			return i
		}
	}
	return len(All)
}

// Worst returns the most severe of the given outcomes (Pass when none).
func Worst(os ...Outcome) Outcome {
	w := Pass
	for _, o := range os {
		if o.Severity() > w.Severity() {
			w = o
		}
	}
	return w
}

// Parse turns a report string back into an Outcome.
func Parse(s string) (Outcome, error) {
	o := Outcome(s)
	if !o.Valid() {
		return "", fmt.Errorf("unknown outcome %q: want one of %v", s, All)
	}
	return o, nil
}
