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
	outcome.NotAttached: "NOATT", outcome.KernelPanic: "PANIC", outcome.Oops: "OOPS",
	outcome.Splat: "SPLAT", outcome.Timeout: "TIME", outcome.InfraError: "INFRA",
}

// ANSI colours by outcome: green pass, dim skip, red payload failures,
// yellow warnings, magenta crashes, blue ours.
var textColor = map[outcome.Outcome]string{
	outcome.Pass: "32", outcome.Skip: "2", outcome.Fail: "31", outcome.BuildError: "31",
	outcome.LoadError: "31", outcome.AttachError: "31", outcome.NotAttached: "33",
	outcome.Timeout: "33", outcome.Splat: "33", outcome.Oops: "1;35", outcome.KernelPanic: "1;35",
	outcome.InfraError: "34",
}

// WriteText prints the compact table shown at the end of a run: one row per
// kernel, one column per payload/check, a short code per cell, then one
// line per cell that did not pass. color adds ANSI colours (for a
// terminal; leave it off for logs and files).
func (r *Report) WriteText(w io.Writer, color bool) error {
	cols := r.Columns()
	at := r.cellIndex()
	paint := func(o outcome.Outcome, s string) string {
		if !color || textColor[o] == "" {
			return s
		}
		return "\x1b[" + textColor[o] + "m" + s + "\x1b[0m"
	}
	head := []string{"KERNEL", "VERSION", "COMPILER"}
	for _, c := range cols {
		head = append(head, c.Payload+"/"+c.Check)
	}
	rows := [][]string{head}
	codes := [][]outcome.Outcome{nil}
	for _, k := range r.Kernels {
		row := []string{k.Name, k.Version, k.Compiler}
		var os []outcome.Outcome
		for _, col := range cols {
			if c := at[cellKey{k.Name, col.Payload, col.Check}]; c != nil {
				code := textCode[c.Outcome]
				if code == "" {
					code = string(c.Outcome)
				}
				row = append(row, code)
				os = append(os, c.Outcome)
			} else {
				row = append(row, "-")
				os = append(os, "")
			}
		}
		rows = append(rows, row)
		codes = append(codes, os)
	}
	width := make([]int, len(head))
	for _, row := range rows {
		for i, s := range row {
			width[i] = max(width[i], utf8.RuneCountInString(s))
		}
	}
	var b strings.Builder
	for ri, row := range rows {
		for i, s := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(s))
			if i >= 3 && ri > 0 {
				s = paint(codes[ri][i-3], s)
			}
			b.WriteString(s)
			if i < len(row)-1 {
				b.WriteString(pad + "  ")
			}
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "%s: %s\n", headline(r), textSummary(r.Summary))
	if len(r.MissingShards) > 0 {
		fmt.Fprintf(&b, "incomplete: shard%s %s missing\n", plural(len(r.MissingShards)), strings.Join(r.MissingShards, ", "))
	}
	for _, c := range r.Cells {
		if c.Outcome == outcome.Pass {
			continue
		}
		fmt.Fprintf(&b, "  %s %s", paint(c.Outcome, fmt.Sprintf("%-12s", c.Outcome)), c.ID())
		if m := oneLine(c.Evidence.Message, 160); m != "" {
			fmt.Fprintf(&b, ": %s", m)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
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
