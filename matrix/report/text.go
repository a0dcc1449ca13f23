package report

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// short codes for the terminal table: plain ASCII, so columns line up in
// any terminal and CI log (emoji widths vary between terminals).
var textCode = map[outcome.Outcome]string{
	outcome.Pass: "ok", outcome.Fail: "FAIL", outcome.Skip: "skip",
	outcome.BuildError: "BUILD", outcome.LoadError: "LOAD", outcome.AttachError: "ATTACH",
	outcome.NotAttached: "NOATT", outcome.NeverRan: "NORUN", outcome.KernelPanic: "PANIC", outcome.Oops: "OOPS",
	outcome.Splat: "SPLAT", outcome.Timeout: "TIME", outcome.InfraError: "INFRA",
}

// ANSI colours by outcome: green pass, dim skip, red payload failures,
// yellow warnings, magenta crashes, blue ours.
var textColor = map[outcome.Outcome]string{
	outcome.Pass: "32", outcome.Skip: "2", outcome.Fail: "31", outcome.BuildError: "31",
	outcome.LoadError: "31", outcome.AttachError: "31", outcome.NotAttached: "33", outcome.NeverRan: "33",
	outcome.Timeout: "33", outcome.Splat: "33", outcome.Oops: "1;35", outcome.KernelPanic: "1;35",
	outcome.InfraError: "34",
}

// textWidth is the terminal width the table aims for: with a row per
// check, long check names are shortened (in the middle) to keep the table
// within it; the lines under the table name every cell in full.
const textWidth = 120

// WriteText prints the compact table shown at the end of a run: a short
// code per cell, laid out as grid.go says (a row per kernel, or a row per
// check grouped by payload with a column per kernel, whichever is
// narrower), each check's "works since", then one line per cell that did
// not pass. color adds ANSI colours (for a terminal; leave it off for logs
// and files).
func (r *Report) WriteText(w io.Writer, color bool) error {
	paint := func(o outcome.Outcome, s string) string {
		if !color || textColor[o] == "" {
			return s
		}
		return "\x1b[" + textColor[o] + "m" + s + "\x1b[0m"
	}
	var t textTable
	if r.checksAsRows() {
		t = r.textByCheck()
	} else {
		t = r.textByKernel()
	}
	var b strings.Builder
	t.write(&b, paint)
	fmt.Fprintf(&b, "%s: %s\n", headline(r), textSummary(r.Summary))
	if len(r.MissingShards) > 0 {
		fmt.Fprintf(&b, "incomplete: shard%s %s missing\n", plural(len(r.MissingShards)), strings.Join(r.MissingShards, ", "))
	}
	for _, c := range r.Cells {
		if c.Outcome == outcome.Pass && !c.UnexpectedPass() {
			continue
		}
		fmt.Fprintf(&b, "  %s %s", paint(c.Outcome, fmt.Sprintf("%-12s", c.Outcome)), c.ID())
		if m := oneLine(c.Evidence.Message, 160); m != "" && !c.UnexpectedPass() {
			fmt.Fprintf(&b, ": %s", m)
		}
		if n := expectNote(c); n != "" {
			fmt.Fprintf(&b, " [%s]", oneLine(n, 200))
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// textTable is a table of plain strings; a cell with an outcome is
// painted, the others (headers, names, versions) are not. A row with one
// field is a heading (a payload's name) and does not widen the columns.
type textTable struct {
	rows [][]textField
}

type textField struct {
	s string
	o outcome.Outcome // "" for text that is not a cell
}

func textCell(c *Cell) textField {
	if c == nil {
		return textField{s: "-"}
	}
	code := textCode[c.Outcome]
	if code == "" {
		code = string(c.Outcome)
	}
	switch {
	case c.ExpectedFailure():
		// In parentheses: failed, as declared; painted dim, like a skip.
		return textField{s: "(" + code + ")", o: outcome.Skip}
	case c.UnexpectedPass():
		return textField{s: "XPASS", o: outcome.Fail}
	}
	return textField{s: code, o: c.Outcome}
}

// textSince is worksSince in the table's plain ASCII.
func textSince(s string) textField {
	if s == notRun {
		s = "-"
	}
	return textField{s: s}
}

func fields(ss ...string) []textField {
	f := make([]textField, len(ss))
	for i, s := range ss {
		f[i] = textField{s: s}
	}
	return f
}

// textByKernel is a row per kernel and a column per check, with a last row
// saying since which kernel each check works.
func (r *Report) textByKernel() textTable {
	cols := r.Columns()
	at := r.cellIndex()
	head := fields("KERNEL", "VERSION", "COMPILER")
	for _, c := range cols {
		head = append(head, textField{s: c.Payload + "/" + c.Check})
	}
	t := textTable{rows: [][]textField{head}}
	for _, k := range r.Kernels {
		row := fields(k.Name, k.Version, textCompiler(k))
		for _, col := range cols {
			row = append(row, textCell(at[cellKey{k.Name, col.Payload, col.Check}]))
		}
		t.rows = append(t.rows, row)
	}
	since := fields("WORKS SINCE", "", "")
	for _, col := range cols {
		since = append(since, textSince(r.worksSince(at, col)))
	}
	t.rows = append(t.rows, since)
	return t
}

// textCompiler is the compiler column of a kernel, with its arch when it
// is not amd64 ("gcc-12 arm64").
func textCompiler(k Kernel) string {
	if a := k.ArchTag(); a != "" {
		return strings.TrimSpace(k.Compiler + " " + a)
	}
	return k.Compiler
}

// textByCheck is a column per kernel (its name, version and compiler on
// three header lines) and a row per check under a heading per payload,
// with each check's "works since" last.
func (r *Report) textByCheck() textTable {
	at := r.cellIndex()
	heads := [3][]textField{fields(""), fields(""), fields("CHECK")}
	for _, k := range r.Kernels {
		heads[0] = append(heads[0], textField{s: k.Name})
		heads[1] = append(heads[1], textField{s: k.Version})
		heads[2] = append(heads[2], textField{s: textCompiler(k)})
	}
	heads[2] = append(heads[2], textField{s: "WORKS SINCE"})
	t := textTable{rows: heads[:]}

	// The check column gets what the kernel columns leave of textWidth,
	// but never less than a readable 24 runes.
	width := map[string]int{}
	for _, k := range r.Kernels {
		for _, s := range []string{k.Name, k.Version, textCompiler(k)} {
			width[k.Name] = max(width[k.Name], utf8.RuneCountInString(s))
		}
	}
	for i := range r.Cells {
		width[r.Cells[i].Kernel] = max(width[r.Cells[i].Kernel], utf8.RuneCountInString(textCell(&r.Cells[i]).s))
	}
	rest := utf8.RuneCountInString("WORKS SINCE")
	for _, k := range r.Kernels {
		rest += width[k.Name] + 2
	}
	nameMax := max(24, textWidth-2-rest) - 2 // 2 for the indent under the payload
	for _, g := range groupByPayload(r.Columns()) {
		t.rows = append(t.rows, fields(g.Payload))
		for _, col := range g.Cols {
			row := fields("  " + shorten(col.Check, nameMax))
			for _, k := range r.Kernels {
				row = append(row, textCell(at[cellKey{k.Name, col.Payload, col.Check}]))
			}
			t.rows = append(t.rows, append(row, textSince(r.worksSince(at, col))))
		}
	}
	return t
}

// shorten cuts s to at most n runes by replacing its middle with "…":
// both a subtest's parent and its own name stay readable.
func shorten(s string, n int) string {
	rs := []rune(s)
	if len(rs) <= n || n < 3 {
		return s
	}
	head := (n - 1) / 2
	tail := n - 1 - head
	return string(rs[:head]) + "…" + string(rs[len(rs)-tail:])
}

func (t textTable) write(b *strings.Builder, paint func(outcome.Outcome, string) string) {
	var width []int
	for _, row := range t.rows {
		if len(row) == 1 {
			continue
		}
		for i, f := range row {
			if i == len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(f.s))
		}
	}
	for _, row := range t.rows {
		var line strings.Builder
		for i, f := range row {
			s := f.s
			if f.o != "" {
				s = paint(f.o, s)
			}
			line.WriteString(s)
			if i < len(row)-1 {
				line.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(f.s)+2))
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
}

func textSummary(s map[outcome.Outcome]int) string {
	var parts []string
	for _, o := range outcome.All {
		if n := s[o]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, o))
		}
	}
	if len(parts) == 0 {
		return "no cells"
	}
	return strings.Join(parts, ", ")
}
