package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// report.html.tmpl is the whole page: markup, CSS and a little JS, so the
// written report.html needs no network, fonts or files beside it.
//
//go:embed report.html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("report.html").Funcs(template.FuncMap{"wbr": wbr}).Parse(htmlSource))

// wbr escapes a check name and lets the browser break it after a "/" or
// "_" (Go subtests: "TestCounts/exec_events_are_counted_per_pid") rather
// than anywhere.
func wbr(s string) template.HTML {
	s = template.HTMLEscapeString(s)
	return template.HTML(strings.NewReplacer("/", "/<wbr>", "_", "_<wbr>").Replace(s))
}

// WriteHTML renders r as one self-contained HTML page: a colour grid of
// kernels × checks whose cells open their evidence (message, log, facts),
// the kernels' facts, the summary and the provenance. It works offline, in
// light and dark mode, and without JavaScript (cells are then links to
// their evidence).
func (r *Report) WriteHTML(w io.Writer) error {
	return htmlTemplate.Execute(w, r.htmlPage())
}

type htmlPage struct {
	Title, Headline, Provenance string
	Good                        bool
	Missing                     string
	Summary                     []htmlCount
	Legend                      []htmlCount
	// ByCheck is the layout of grid.go: a row per check under a row per
	// payload (Checks), a column per kernel (Kernels); otherwise a row per
	// kernel (Rows) and a column per check (Groups, Cols, Since).
	ByCheck bool
	// KernelWidth is each kernel column's share of the table's width when
	// checks are rows: all kernel columns are alike.
	KernelWidth string
	Checks      []htmlCheckGroup
	Groups      []htmlGroup
	Cols        []Column
	Since       []htmlSince
	Rows        []htmlRow
	Evidence    []*htmlCell
	Problems    int
	Kernels     []htmlKernel
	Schema      string
}

type htmlCount struct {
	Outcome outcome.Outcome
	N       int
}

type htmlGroup struct {
	Payload string
	Span    int
}

type htmlRow struct {
	Kernel Kernel
	Cells  []htmlSlot
}

// htmlCheckGroup is a payload's rows when checks are rows.
type htmlCheckGroup struct {
	Payload string
	Span    int // columns of the whole table
	Rows    []htmlCheckRow
}

type htmlCheckRow struct {
	Col   Column
	Cells []*htmlCell // one per kernel; nil where the check did not run
	Since htmlSince
}

// htmlSince is a check's "works since" (see worksSince), with a class
// for its colour: all, none or a kernel version.
type htmlSince struct {
	Text, Class string
}

func newHTMLSince(s string) htmlSince {
	switch s {
	case worksSinceAll:
		return htmlSince{s, "since-all"}
	case notRun:
		return htmlSince{s, "since-none"}
	}
	return htmlSince{s, "since-from"}
}

type htmlSlot struct {
	Cell  *htmlCell // nil where the check did not run
	First bool      // first column of a payload after another payload's
}

type htmlCell struct {
	*Cell
	ID       string
	Problem  bool
	Duration string
	Message  string
	Log      string
	Facts    []htmlFact
	Tooltip  string
	// XFail: failed as an expectation declares; XPass: passed where one
	// says it fails. Expect is the note saying which and why.
	XFail, XPass bool
	Expect       string
}

type htmlFact struct{ Name, Value string }

type htmlKernel struct {
	Kernel
	Boot string
}

func (r *Report) htmlPage() htmlPage {
	p := htmlPage{
		Headline:   headline(r),
		Provenance: provenance(r),
		Schema:     r.Schema,
		Cols:       r.Columns(),
		ByCheck:    r.checksAsRows(),
	}
	p.Title = "kmatrix · " + p.Headline
	if len(r.MissingShards) > 0 {
		p.Missing = strings.Join(r.MissingShards, ", ")
	}
	p.Good = p.Missing == "" && len(r.Cells) > 0
	for _, o := range outcome.All {
		p.Legend = append(p.Legend, htmlCount{Outcome: o})
		if n := r.Summary[o]; n > 0 {
			p.Summary = append(p.Summary, htmlCount{o, n})
		}
	}
	for _, c := range r.Cells {
		if c.Failing() {
			p.Good = false
		}
	}
	for _, c := range p.Cols {
		if n := len(p.Groups); n > 0 && p.Groups[n-1].Payload == c.Payload {
			p.Groups[n-1].Span++
		} else {
			p.Groups = append(p.Groups, htmlGroup{c.Payload, 1})
		}
	}
	cells := make(map[cellKey]*htmlCell, len(r.Cells))
	for i := range r.Cells {
		c := &r.Cells[i]
		h := &htmlCell{
			Cell:     c,
			ID:       "cell-" + strconv.Itoa(i+1),
			Problem:  c.Outcome != outcome.Pass || c.UnexpectedPass(),
			XFail:    c.ExpectedFailure(),
			XPass:    c.UnexpectedPass(),
			Expect:   expectNote(*c),
			Duration: duration(c.DurationMS),
			Message:  cleanLog(c.Evidence.Message),
			Log:      cleanLog(c.Evidence.Log),
		}
		for _, k := range slices.Sorted(maps.Keys(c.Evidence.Facts)) {
			h.Facts = append(h.Facts, htmlFact{k, c.Evidence.Facts[k]})
		}
		h.Tooltip = fmt.Sprintf("%s · %s · %s: %s", c.Kernel, c.Payload, c.Check, c.Outcome)
		if m := oneLine(c.Evidence.Message, 200); m != "" {
			h.Tooltip += " — " + m
		}
		if h.Expect != "" {
			h.Tooltip += " [" + h.Expect + "]"
		}
		if h.Problem {
			p.Problems++
		}
		cells[c.key()] = h
		p.Evidence = append(p.Evidence, h)
	}
	for _, k := range r.Kernels {
		hk := htmlKernel{Kernel: k}
		if k.BootMS > 0 {
			hk.Boot = duration(k.BootMS)
			if k.FloorMS > 0 {
				hk.Boot += fmt.Sprintf(" (floor %s, %.2f×)", duration(k.FloorMS), float64(k.BootMS)/float64(k.FloorMS))
			}
		}
		p.Kernels = append(p.Kernels, hk)
	}
	at := r.cellIndex()
	if p.ByCheck {
		// The check names take about a quarter, "works since" a tenth.
		p.KernelWidth = fmt.Sprintf("%.1f%%", 65/float64(max(1, len(r.Kernels))))
		for _, g := range groupByPayload(p.Cols) {
			hg := htmlCheckGroup{Payload: g.Payload, Span: len(r.Kernels) + 2}
			for _, col := range g.Cols {
				row := htmlCheckRow{Col: col, Since: newHTMLSince(r.worksSince(at, col))}
				for _, k := range r.Kernels {
					row.Cells = append(row.Cells, cells[cellKey{k.Name, col.Payload, col.Check}])
				}
				hg.Rows = append(hg.Rows, row)
			}
			p.Checks = append(p.Checks, hg)
		}
		return p
	}
	for _, col := range p.Cols {
		p.Since = append(p.Since, newHTMLSince(r.worksSince(at, col)))
	}
	for _, k := range r.Kernels {
		row := htmlRow{Kernel: k}
		for i, col := range p.Cols {
			row.Cells = append(row.Cells, htmlSlot{
				Cell:  cells[cellKey{k.Name, col.Payload, col.Check}],
				First: i > 0 && p.Cols[i-1].Payload != col.Payload,
			})
		}
		p.Rows = append(p.Rows, row)
	}
	return p
}

// duration prints milliseconds the way people read them: "840 ms", "2.3 s", "1 m 05 s".
func duration(ms int64) string {
	switch {
	case ms <= 0:
		return ""
	case ms < 1000:
		return fmt.Sprintf("%d ms", ms)
	case ms < 60_000:
		return fmt.Sprintf("%.1f s", float64(ms)/1000)
	}
	return fmt.Sprintf("%d m %02d s", ms/60_000, ms%60_000/1000)
}
