package report

import "github.com/kmatrix/kmatrix/matrix/outcome"

// The matrix's layout, shared by the terminal table, report.md and
// report.html so the three always agree.
//
// Orientation: whichever of kernels and checks there are more of runs down
// the page, so the table has as few columns as it can. A run of a few
// checks on many kernels (a series lane) keeps one row per kernel; a run of
// many checks on a few kernels (the default matrix, or a Go test package
// with 30 tests) gets one row per check, grouped under its payload, and one
// column per kernel. A 30-check run on 4 kernels is then 6 columns wide
// instead of 33, and reads in a 120-column terminal and on GitHub.

// checksAsRows reports whether the matrix is drawn with a row per check
// (and a column per kernel): when the checks outnumber the kernels.
func (r *Report) checksAsRows() bool {
	return len(r.Columns()) > len(r.Kernels)
}

// worksSinceAll is what "works since" says of a check that passes on every
// kernel of the run: the run found no kernel it fails on, so naming the
// oldest kernel would read as a limit the check does not have.
const worksSinceAll = "all"

// worksSince says from which kernel on a check works: the oldest kernel
// of the run (kernels are ordered by version, see Finalize) from which it
// passes on that kernel and every newer one. It is worksSinceAll when the
// check passes on every kernel, notRun ("—") when it does not pass on the
// newest one (fails, is skipped or did not run there), and otherwise that
// kernel's version ("6.6.9"; its name when it has no version).
func (r *Report) worksSince(at map[cellKey]*Cell, col Column) string {
	oldest := -1
	for i := len(r.Kernels) - 1; i >= 0; i-- {
		c := at[cellKey{r.Kernels[i].Name, col.Payload, col.Check}]
		if c == nil || c.Outcome != outcome.Pass {
			break
		}
		oldest = i
	}
	switch {
	case oldest < 0:
		return notRun
	case oldest == 0:
		return worksSinceAll
	}
	if k := r.Kernels[oldest]; k.Version != "" {
		return k.Version
	}
	return r.Kernels[oldest].Name
}

// payloadGroup is one payload's run of consecutive columns.
type payloadGroup struct {
	Payload string
	Cols    []Column
}

// groupByPayload splits the columns (ordered by payload, see Columns)
// into one group per payload.
func groupByPayload(cols []Column) []payloadGroup {
	var gs []payloadGroup
	for _, c := range cols {
		if n := len(gs); n > 0 && gs[n-1].Payload == c.Payload {
			gs[n-1].Cols = append(gs[n-1].Cols, c)
		} else {
			gs = append(gs, payloadGroup{c.Payload, []Column{c}})
		}
	}
	return gs
}
