// Package outcome is kmatrix's result vocabulary for programs that use
// kmatrix as a library: every cell of a report has one Outcome and one
// Stage. The definitions live in a leaf package inside this module
// (internal/outcome) so that vmtest and kmod, which matrix builds on, can
// use them without importing matrix; these are the same types.
package outcome

import "github.com/kmatrix/kmatrix/internal/outcome"

// Outcome is the result class of one cell; Stage the step of a payload's
// life it belongs to.
type (
	Outcome = outcome.Outcome
	Stage   = outcome.Stage
)

// The outcomes; see internal/outcome for what each means.
const (
	Pass        = outcome.Pass
	Fail        = outcome.Fail
	Skip        = outcome.Skip
	BuildError  = outcome.BuildError
	LoadError   = outcome.LoadError
	AttachError = outcome.AttachError
	NotAttached = outcome.NotAttached
	NeverRan    = outcome.NeverRan
	KernelPanic = outcome.KernelPanic
	Oops        = outcome.Oops
	Splat       = outcome.Splat
	Timeout     = outcome.Timeout
	InfraError  = outcome.InfraError
)

// The stages, in the order a payload goes through them.
const (
	StageFetch  = outcome.StageFetch
	StageBuild  = outcome.StageBuild
	StageLoad   = outcome.StageLoad
	StageAttach = outcome.StageAttach
	StageBehave = outcome.StageBehave
	StageUnload = outcome.StageUnload
)

var (
	// All lists every outcome, best first.
	All = outcome.All
	// Stages lists every stage in order.
	Stages = outcome.Stages
)

// Worst returns the most severe of the given outcomes (Pass when none).
func Worst(os ...Outcome) Outcome { return outcome.Worst(os...) }

// Parse turns a report string back into an Outcome.
func Parse(s string) (Outcome, error) { return outcome.Parse(s) }

// ParseStage turns a report string back into a Stage.
func ParseStage(s string) (Stage, error) { return outcome.ParseStage(s) }
