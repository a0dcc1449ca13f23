package report

import (
	"cmp"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// Finalize puts r in its canonical form: the schema set, kernels ordered by
// version (then name), cells ordered by kernel, payload and check column
// (see Columns), and Summary recomputed from the cells. A report that went
// through Finalize renders and compares deterministically, whatever order
// its cells were produced or merged in. GeneratedAt is set to now only
// when it is missing.
func (r *Report) Finalize() {
	if r.Schema == "" {
		r.Schema = Schema
	}
	if r.GeneratedAt.IsZero() {
		r.GeneratedAt = time.Now().UTC().Truncate(time.Second)
	}
	if r.Kernels == nil {
		r.Kernels = []Kernel{}
	}
	if r.Cells == nil {
		r.Cells = []Cell{}
	}
	slices.SortStableFunc(r.Kernels, func(a, b Kernel) int {
		return cmp.Or(compareVersions(a.Version, b.Version), cmp.Compare(a.Name, b.Name))
	})
	row := make(map[string]int, len(r.Kernels))
	for i, k := range r.Kernels {
		row[k.Name] = i
	}
	rowOf := func(name string) int {
		if i, ok := row[name]; ok {
			return i
		}
		return len(r.Kernels) // cells of unknown kernels last; Validate reports them
	}
	col := make(map[colKey]int)
	for i, c := range r.Columns() {
		col[colKey{c.Payload, c.Check}] = i
	}
	slices.SortStableFunc(r.Cells, func(a, b Cell) int {
		return cmp.Or(
			cmp.Compare(rowOf(a.Kernel), rowOf(b.Kernel)),
			cmp.Compare(a.Kernel, b.Kernel),
			cmp.Compare(col[colKey{a.Payload, a.Check}], col[colKey{b.Payload, b.Check}]),
		)
	})
	r.finalizeExpected()
	r.Summary = summarize(r.Cells)
}

func summarize(cells []Cell) map[outcome.Outcome]int {
	s := make(map[outcome.Outcome]int, len(outcome.All))
	for _, o := range outcome.All {
		s[o] = 0
	}
	for _, c := range cells {
		s[c.Outcome]++
	}
	return s
}

// Column is one column of the matrix: a payload's check.
type Column struct {
	Payload, Check string
	// Stage is the stage most of the column's cells ended in.
	Stage outcome.Stage
}

type colKey struct{ payload, check string }

// Columns returns the matrix's columns in display order: by payload name,
// then by the stage the check belongs to (build before load before attach
// before behaviour checks before unload), then by check name. A check's
// stage is the one most of its cells report, so one kernel failing a
// behaviour check at load time does not move the column.
func (r *Report) Columns() []Column {
	type tally struct {
		n map[outcome.Stage]int
	}
	t := make(map[colKey]*tally)
	for _, c := range r.Cells {
		k := colKey{c.Payload, c.Check}
		if t[k] == nil {
			t[k] = &tally{n: make(map[outcome.Stage]int)}
		}
		t[k].n[c.Stage]++
	}
	cols := make([]Column, 0, len(t))
	for k, v := range t {
		best, bestN := outcome.Stage(""), -1
		for s, n := range v.n {
			// Most common stage; ties go to the earlier stage, then the name, so
			// the choice never depends on map order.
			if n > bestN || n == bestN && (s.Rank() < best.Rank() || s.Rank() == best.Rank() && s < best) {
				best, bestN = s, n
			}
		}
		cols = append(cols, Column{Payload: k.payload, Check: k.check, Stage: best})
	}
	slices.SortFunc(cols, func(a, b Column) int {
		return cmp.Or(
			cmp.Compare(a.Payload, b.Payload),
			cmp.Compare(a.Stage.Rank(), b.Stage.Rank()),
			cmp.Compare(a.Check, b.Check),
		)
	})
	return cols
}

var versionRE = regexp.MustCompile(`^(\d+)\.(\d+)(?:\.(\d+))?`)

// parseVersion reads the leading "X.Y[.Z]" of a kernel version; ok is
// false for anything else.
func parseVersion(s string) (v [3]int, ok bool) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return v, false
	}
	for i := range 3 {
		v[i], _ = strconv.Atoi(m[i+1])
	}
	return v, true
}

// compareVersions orders kernel versions numerically (5.10 before 6.1
// before 6.12); versions that do not parse go last, in string order.
func compareVersions(a, b string) int {
	va, oka := parseVersion(a)
	vb, okb := parseVersion(b)
	switch {
	case oka && okb:
		return slices.Compare(va[:], vb[:])
	case oka:
		return -1
	case okb:
		return 1
	}
	return cmp.Compare(a, b)
}
