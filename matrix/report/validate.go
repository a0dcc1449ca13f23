package report

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/go-multierror"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// ErrInvalid is wrapped by every error about a report that breaks the
// schema: a missing field, an unknown outcome, a cell of an unknown kernel.
var ErrInvalid = errors.New("invalid report")

// ErrSchemaVersion is wrapped by the error about a report whose "schema" is
// missing or is not the version this kmatrix reads.
var ErrSchemaVersion = errors.New("unsupported report schema")

// FieldError is one problem with one field of a report. Field is the JSON
// path of the field ("cells[3].outcome"); Cell names the cell it belongs
// to ("debian-sid/bpf/load"), when it belongs to one.
type FieldError struct {
	Field   string
	Cell    string
	Problem string // what is wrong and what to do about it
	Err     error  // ErrInvalid or ErrSchemaVersion
}

func (e *FieldError) Error() string {
	if e.Cell != "" {
		return fmt.Sprintf("%s (cell %s): %s", e.Field, e.Cell, e.Problem)
	}
	return fmt.Sprintf("%s: %s", e.Field, e.Problem)
}

// Unwrap lets errors.Is find ErrInvalid (always) and ErrSchemaVersion.
func (e *FieldError) Unwrap() []error {
	if e.Err == nil || e.Err == ErrInvalid {
		return []error{ErrInvalid}
	}
	return []error{e.Err, ErrInvalid}
}

// maxProblems bounds how many problems Validate lists: a report broken in
// a thousand cells is usually broken in one way, and the first few say how.
const maxProblems = 10

// Validate checks r against the schema and returns every problem found (up
// to ten, then a count), each a *FieldError, gathered in one error; nil
// when r is a valid report.
func (r *Report) Validate() error {
	var errs *multierror.Error
	n := 0
	add := func(e *FieldError) {
		n++
		if n <= maxProblems {
			errs = multierror.Append(errs, e)
		}
	}
	if e := checkSchema(r.Schema, r.Schema != ""); e != nil {
		add(e)
	}
	if r.GeneratedAt.IsZero() {
		add(&FieldError{Field: "generated_at", Problem: "missing; want the time the run finished, e.g. \"2026-05-01T12:00:00Z\""})
	}
	if r.Shard != "" {
		if _, _, err := ParseShard(r.Shard); err != nil {
			add(&FieldError{Field: "shard", Problem: err.Error()})
		}
	}
	kernels := make(map[string]int, len(r.Kernels))
	for i, k := range r.Kernels {
		f := fmt.Sprintf("kernels[%d]", i)
		if k.Name == "" {
			add(&FieldError{Field: f + ".name", Problem: "empty; every kernel needs the name its cells refer to"})
			continue
		}
		if j, dup := kernels[k.Name]; dup {
			add(&FieldError{Field: f + ".name", Problem: fmt.Sprintf("kernel %q is listed twice (also kernels[%d]); list each kernel once", k.Name, j)})
			continue
		}
		kernels[k.Name] = i
	}
	seen := make(map[cellKey]int, len(r.Cells))
	for i, c := range r.Cells {
		f := fmt.Sprintf("cells[%d]", i)
		id := c.ID()
		for _, p := range []struct{ name, val string }{{"kernel", c.Kernel}, {"payload", c.Payload}, {"check", c.Check}} {
			if p.val == "" {
				add(&FieldError{Field: f + "." + p.name, Cell: id, Problem: "empty; every cell names its kernel, payload and check"})
			}
		}
		if _, ok := kernels[c.Kernel]; c.Kernel != "" && !ok {
			add(&FieldError{Field: f + ".kernel", Cell: id, Problem: fmt.Sprintf("kernel %q is not in kernels[]; add it there or fix the name", c.Kernel)})
		}
		if !c.Outcome.Valid() {
			add(&FieldError{Field: f + ".outcome", Cell: id, Problem: fmt.Sprintf("%q is not an outcome; want one of %s", c.Outcome, outcomeList())})
		}
		if c.DurationMS < 0 {
			add(&FieldError{Field: f + ".duration_ms", Cell: id, Problem: fmt.Sprintf("%d is negative", c.DurationMS)})
		}
		if j, dup := seen[c.key()]; dup {
			add(&FieldError{Field: f, Cell: id, Problem: fmt.Sprintf("the same cell as cells[%d]; a kernel × payload × check has one outcome", j)})
		} else {
			seen[c.key()] = i
		}
	}
	if n > maxProblems {
		errs = multierror.Append(errs, fmt.Errorf("%w: and %d more problems", ErrInvalid, n-maxProblems))
	}
	if errs == nil {
		return nil
	}
	errs.ErrorFormat = listFormat
	return errs
}

// checkSchema says what is wrong with a schema value; present is false when
// the field is missing.
func checkSchema(s string, present bool) *FieldError {
	switch {
	case s == Schema:
		return nil
	case !present || s == "":
		return &FieldError{Field: "schema", Err: ErrSchemaVersion,
			Problem: fmt.Sprintf("missing; a kmatrix report has \"schema\": %q (is this a kmatrix report.json?)", Schema)}
	case strings.HasPrefix(s, "kmatrix.report/"):
		return &FieldError{Field: "schema", Err: ErrSchemaVersion,
			Problem: fmt.Sprintf("%q is a report version this kmatrix does not read (it reads %q); use the kmatrix that wrote it, or a newer one", s, Schema)}
	default:
		return &FieldError{Field: "schema", Err: ErrSchemaVersion,
			Problem: fmt.Sprintf("%q is not a kmatrix report schema; want %q", s, Schema)}
	}
}

func outcomeList() string {
	s := make([]string, len(outcome.All))
	for i, o := range outcome.All {
		s[i] = string(o)
	}
	return strings.Join(s, ", ")
}

// listFormat prints gathered problems one per line, the first on the
// line of the error's prefix when there is only one.
func listFormat(es []error) string {
	if len(es) == 1 {
		return es[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems:", len(es))
	for _, e := range es {
		b.WriteString("\n\t")
		b.WriteString(e.Error())
	}
	return b.String()
}

// ParseShard parses "i/n" (1 ≤ i ≤ n).
func ParseShard(s string) (i, n int, err error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 1 || i > n {
		return 0, 0, fmt.Errorf("shard %q: want \"i/n\" with 1 ≤ i ≤ n, e.g. \"2/4\"", s)
	}
	return i, n, nil
}

// ID names a cell in messages: "debian-sid/bpf/load".
func (c Cell) ID() string {
	return orDash(c.Kernel) + "/" + orDash(c.Payload) + "/" + orDash(c.Check)
}

func orDash(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// cellKey identifies a cell; check names may contain "/" (Go subtests), so
// the key is a struct, not a joined string.
type cellKey struct{ kernel, payload, check string }

func (c Cell) key() cellKey { return cellKey{c.Kernel, c.Payload, c.Check} }
