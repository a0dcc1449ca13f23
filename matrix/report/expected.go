package report

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kmatrix/kmatrix/matrix/outcome"
)

// Expected marks a cell that a declared expectation covers (kmatrix run
// --expect FILE, or the expectations of a project file; see package
// matrix/expect). The cell keeps its real outcome: Expected only says
// whether that outcome was the one declared, and why it was declared.
type Expected struct {
	// Reason is the expectation's reason, e.g. "tcx needs Linux 6.6".
	Reason string `json:"reason"`
	// Outcomes are the outcomes the expectation allows; empty means any
	// failing outcome (anything but pass, skip and infra-error).
	Outcomes []outcome.Outcome `json:"outcomes,omitempty"`
	// Source is where the expectation was declared, "FILE:LINE".
	Source string `json:"source,omitempty"`
	// Met is true when the cell's outcome is one the expectation allows.
	// Finalize recomputes it from Outcomes and the cell's outcome.
	Met bool `json:"met"`
}

// Allows reports whether the expectation allows outcome o: one of its
// Outcomes, or, when it lists none, any failure that is the payload's.
func (e *Expected) Allows(o outcome.Outcome) bool {
	if len(e.Outcomes) == 0 {
		return o.Failed() && o != outcome.InfraError
	}
	return slices.Contains(e.Outcomes, o)
}

// What says what was expected in a few words: "attach-error: tcx needs
// Linux 6.6", "a failure: known bug".
func (e *Expected) What() string {
	what := "a failure"
	if len(e.Outcomes) > 0 {
		s := make([]string, len(e.Outcomes))
		for i, o := range e.Outcomes {
			s[i] = string(o)
		}
		what = strings.Join(s, " or ")
	}
	if e.Reason == "" {
		return what
	}
	return what + ": " + e.Reason
}

// ExpectedFailure reports whether the cell failed as an expectation says
// it would: it does not count against the run.
func (c Cell) ExpectedFailure() bool {
	return c.Expected != nil && c.Expected.Allows(c.Outcome) && c.Outcome.Failed()
}

// UnexpectedPass reports whether an expectation says the cell fails but it
// passed (or skipped): the expectation is stale, and the cell counts
// against the run until the expectation is narrowed or removed, so
// expectations cannot outlive the failures they describe.
func (c Cell) UnexpectedPass() bool {
	return c.Expected != nil && !c.Expected.Allows(c.Outcome) && !c.Outcome.Failed()
}

// Failing reports whether the cell counts against the run: a failure no
// expectation allows, or an unexpected pass.
func (c Cell) Failing() bool {
	if c.UnexpectedPass() {
		return true
	}
	return c.Outcome.Failed() && !c.ExpectedFailure()
}

// ExpectCounts counts the cells expectations cover.
type ExpectCounts struct {
	// Expected: cells that failed as declared.
	Expected int
	// UnexpectedPasses: cells declared failing that passed.
	UnexpectedPasses []Cell
	// Unmet: cells declared failing that failed another way.
	Unmet []Cell
}

// Expectations counts r's cells by what their expectations say.
func (r *Report) Expectations() ExpectCounts {
	var n ExpectCounts
	for _, c := range r.Cells {
		switch {
		case c.Expected == nil:
		case c.ExpectedFailure():
			n.Expected++
		case c.UnexpectedPass():
			n.UnexpectedPasses = append(n.UnexpectedPasses, c)
		case c.Outcome.Failed():
			n.Unmet = append(n.Unmet, c)
		}
	}
	return n
}

// expectNote is the line a renderer prints for a cell an expectation
// covers: "expected (tcx needs Linux 6.6)", "unexpected pass: expected
// attach-error (tcx needs Linux 6.6)".
func expectNote(c Cell) string {
	switch {
	case c.Expected == nil:
		return ""
	case c.ExpectedFailure():
		return fmt.Sprintf("expected: %s", c.Expected.Reason)
	case c.UnexpectedPass():
		return fmt.Sprintf("unexpected pass: expected %s; narrow or remove the expectation (%s)", c.Expected.What(), orDash(c.Expected.Source))
	case c.Outcome.Failed():
		return fmt.Sprintf("not the expected outcome: expected %s", c.Expected.What())
	}
	return ""
}

// finalizeExpected recomputes each cell's Expected.Met.
func (r *Report) finalizeExpected() {
	for i := range r.Cells {
		if e := r.Cells[i].Expected; e != nil {
			e.Met = e.Allows(r.Cells[i].Outcome)
		}
	}
}
