package report

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// MaxMarkdown is the most bytes report.md and a diff's Markdown may take:
// GitHub rejects a PR or issue comment over 65536 characters. Logs are cut
// first, then messages, then whole footnotes, each with a note saying so.
const MaxMarkdown = 64 << 10

// WriteMarkdown renders the matrix as GitHub-flavoured Markdown for a step
// summary or PR comment: a kernel × check table of outcome symbols, a
// summary line, a legend, and a footnote per cell that did not pass with its
// message and the first lines of its log.
func (r *Report) WriteMarkdown(w io.Writer) error {
	_, err := io.WriteString(w, r.Markdown())
	return err
}

// Markdown is WriteMarkdown to a string, never over MaxMarkdown bytes.
func (r *Report) Markdown() string {
	// Each level says less per failure; the first that fits wins.
	for _, lv := range []mdLevel{{logLines: 8, msg: 300}, {logLines: 3, msg: 300}, {logLines: 0, msg: 200}, {logLines: 0, msg: 120, notes: 200}, {logLines: 0, msg: 80, notes: 50}, {notes: -1}} {
		if s := r.markdown(lv); len(s) <= MaxMarkdown {
			return s
		}
	}
	s := r.markdown(mdLevel{notes: -1})
	// A table too big even alone: print what fits and say so.
	return truncateUTF8(s, MaxMarkdown-200) + "\n\n_The table was cut to fit GitHub's comment limit: see report.html for the whole matrix._\n"
}

type mdLevel struct {
	logLines int // log lines per footnote
	msg      int // message length in runes
	notes    int // footnotes at most (0: all; -1: none)
}

func (r *Report) markdown(lv mdLevel) string {
	var b strings.Builder
	cols := r.Columns()
	at := r.cellIndex()

	fmt.Fprintf(&b, "## kmatrix: %s\n\n", headline(r))
	if len(r.MissingShards) > 0 {
		fmt.Fprintf(&b, "> [!WARNING]\n> Incomplete matrix: shard%s %s missing from this merge.\n\n", plural(len(r.MissingShards)), strings.Join(r.MissingShards, ", "))
	}

	for _, k := range r.Kernels {
		if k.NewerAvailable != "" {
			fmt.Fprintf(&b, "> Newer kernel available: %s %s tested, the archive has %s (`kmatrix kernels --float` updates the lock).\n\n",
				mdText(k.Name), mdText(k.PackageVersion), mdText(k.NewerAvailable))
		}
	}

	// The table, laid out as grid.go says; the cells that did not pass and
	// have evidence get a footnote, numbered in table order.
	var notes []*Cell
	sym := func(c *Cell) string {
		switch {
		case c == nil:
			return " " + notRun + " |"
		case hasNote(*c) && lv.notes >= 0 && (lv.notes == 0 || len(notes) < lv.notes):
			notes = append(notes, c)
			return fmt.Sprintf(" %s[^%d] |", mdSymbol(*c), len(notes))
		}
		return " " + mdSymbol(*c) + " |"
	}
	if r.checksAsRows() {
		r.mdByCheck(&b, at, sym)
	} else {
		r.mdByKernel(&b, at, cols, sym)
	}

	fmt.Fprintf(&b, "\n%s\n\n", summaryLine(r.Summary, " · "))
	fmt.Fprintf(&b, "<sub>%s</sub>\n\n", legend(" · "))
	if ex := r.Expectations(); ex.Expected+len(ex.UnexpectedPasses) > 0 {
		fmt.Fprintf(&b, "<sub>(…) failed as an expectation declares: not counted · ❗✅ unexpected pass: an expectation says it fails, counted as failing</sub>\n\n")
		for _, c := range ex.UnexpectedPasses {
			fmt.Fprintf(&b, "- ❗ unexpected pass: **%s** — %s\n", mdText(c.ID()), mdText(expectNote(c)))
		}
		if len(ex.UnexpectedPasses) > 0 {
			b.WriteString("\n")
		}
	}
	fmt.Fprintf(&b, "<sub>%s</sub>\n", mdText(provenance(r)))

	left := 0
	for _, c := range r.Cells {
		if hasNote(c) {
			left++
		}
	}
	left -= len(notes)
	if left > 0 {
		fmt.Fprintf(&b, "\n_%d more cell%s with evidence are not footnoted here, to fit GitHub's comment limit: see report.html or report.json._\n", left, plural(left))
	}
	if len(notes) > 0 {
		b.WriteString("\n")
	}
	for n, c := range notes {
		fmt.Fprintf(&b, "\n[^%d]: **%s · %s · %s** %s %s", n+1, mdText(c.Kernel), mdText(c.Payload), mdText(c.Check), Emoji(c.Outcome), c.Outcome)
		if c.Stage != "" {
			fmt.Fprintf(&b, " at %s", mdText(string(c.Stage)))
		}
		if m := oneLine(c.Evidence.Message, lv.msg); m != "" {
			fmt.Fprintf(&b, ": %s", mdText(m))
		}
		if n := expectNote(*c); n != "" {
			fmt.Fprintf(&b, " _(%s)_", mdText(n))
		}
		b.WriteString("\n")
		lines, cut, tail := logExcerpt(c.Evidence.Log, c.Outcome, lv.logLines)
		if len(lines) > 0 {
			fence := codeFence(lines)
			// A footnote continues over lines indented by four spaces (GitHub).
			fmt.Fprintf(&b, "\n    %stext\n", fence)
			for _, l := range lines {
				b.WriteString("    " + l + "\n")
			}
			fmt.Fprintf(&b, "    %s\n", fence)
		}
		if cut > 0 {
			what := "more log lines"
			switch {
			case len(lines) == 0:
				what = "log lines"
			case tail:
				what = "earlier log lines"
			}
			if cut == 1 {
				what = strings.TrimSuffix(what, "s")
			}
			fmt.Fprintf(&b, "\n    <sub>%d %s in report.html and report.json</sub>\n", cut, what)
		}
	}
	return b.String()
}

// mdByKernel writes the table with a row per kernel and a column per
// check, and a last row with each check's "works since".
func (r *Report) mdByKernel(b *strings.Builder, at map[cellKey]*Cell, cols []Column, sym func(*Cell) string) {
	b.WriteString("| kernel | version | compiler |")
	for _, c := range cols {
		fmt.Fprintf(b, " %s<br>%s |", mdText(c.Payload), mdText(c.Check))
	}
	b.WriteString("\n|:--|:--|:--|")
	for range cols {
		b.WriteString(":-:|")
	}
	b.WriteString("\n")
	for _, k := range r.Kernels {
		fmt.Fprintf(b, "| **%s**<br><sub>%s</sub> | %s", mdText(k.Name), mdText(k.Release), mdText(k.Version))
		if k.PackageVersion != "" {
			fmt.Fprintf(b, "<br><sub>%s</sub>", mdText(k.PackageVersion))
		}
		fmt.Fprintf(b, " | %s", mdText(k.Compiler))
		if a := k.ArchTag(); a != "" {
			fmt.Fprintf(b, "<br><sub>%s</sub>", mdText(a))
		}
		b.WriteString(" |")
		for _, col := range cols {
			b.WriteString(sym(at[cellKey{k.Name, col.Payload, col.Check}]))
		}
		b.WriteString("\n")
	}
	b.WriteString("| _works since_ | | |")
	for _, col := range cols {
		fmt.Fprintf(b, " %s |", mdText(r.worksSince(at, col)))
	}
	b.WriteString("\n")
}

// mdByCheck writes the table with a column per kernel (name, release,
// package version and compiler in its header) and a row per check, under
// a bold row per payload, each check's "works since" last.
func (r *Report) mdByCheck(b *strings.Builder, at map[cellKey]*Cell, sym func(*Cell) string) {
	b.WriteString("| check |")
	for _, k := range r.Kernels {
		fmt.Fprintf(b, " **%s**", mdText(k.Name))
		if k.Release != "" {
			fmt.Fprintf(b, "<br><sub>%s</sub>", mdText(k.Release))
		}
		var facts []string
		for _, f := range []string{cmp.Or(k.PackageVersion, k.Version), k.Compiler, k.ArchTag()} {
			if f != "" {
				facts = append(facts, mdText(f))
			}
		}
		if len(facts) > 0 {
			fmt.Fprintf(b, "<br><sub>%s</sub>", strings.Join(facts, " · "))
		}
		b.WriteString(" |")
	}
	b.WriteString(" works since |\n|:--|")
	for range r.Kernels {
		b.WriteString(":-:|")
	}
	b.WriteString(":-:|\n")
	empty := strings.Repeat(" |", len(r.Kernels)+1)
	for _, g := range groupByPayload(r.Columns()) {
		fmt.Fprintf(b, "| **%s** |%s\n", mdText(g.Payload), empty)
		for _, col := range g.Cols {
			fmt.Fprintf(b, "| %s |", mdText(col.Check))
			for _, k := range r.Kernels {
				b.WriteString(sym(at[cellKey{k.Name, col.Payload, col.Check}]))
			}
			fmt.Fprintf(b, " %s |\n", mdText(r.worksSince(at, col)))
		}
	}
}

// hasNote reports whether a cell gets a footnote: it did not pass and has
// evidence, or it passed where an expectation says it fails.
func hasNote(c Cell) bool {
	return c.Outcome != outcome.Pass && (c.Evidence.Message != "" || c.Evidence.Log != "") || c.UnexpectedPass()
}

// mdSymbol is a cell's symbol in the table: its outcome's emoji, in
// parentheses when it failed as expected, flagged when it passed against
// an expectation.
func mdSymbol(c Cell) string {
	switch {
	case c.ExpectedFailure():
		return "(" + Emoji(c.Outcome) + ")"
	case c.UnexpectedPass():
		return "❗" + Emoji(c.Outcome)
	}
	return Emoji(c.Outcome)
}

// cellIndex maps each cell's key to the cell.
func (r *Report) cellIndex() map[cellKey]*Cell {
	at := make(map[cellKey]*Cell, len(r.Cells))
	for i := range r.Cells {
		at[r.Cells[i].key()] = &r.Cells[i]
	}
	return at
}

// headline says in a few words how the run went. Cells that failed as an
// expectation declares count as fine, and are counted apart; an unexpected
// pass counts as failing.
func headline(r *Report) string {
	total := len(r.Cells)
	bad := 0
	for _, c := range r.Cells {
		if c.Failing() {
			bad++
		}
	}
	ex := r.Expectations()
	ks := fmt.Sprintf("%d kernel%s", len(r.Kernels), plural(len(r.Kernels)))
	var notes []string
	if ex.Expected > 0 {
		notes = append(notes, fmt.Sprintf("%d as expected", ex.Expected))
	}
	if n := len(ex.UnexpectedPasses); n > 0 {
		notes = append(notes, fmt.Sprintf("%d unexpected pass%s", n, map[bool]string{true: "", false: "es"}[n == 1]))
	}
	note := ""
	if len(notes) > 0 {
		note = " (" + strings.Join(notes, ", ") + ")"
	}
	switch {
	case total == 0:
		return "no cells ran on " + ks
	case bad == 0 && ex.Expected > 0:
		return fmt.Sprintf("all %d cells pass or fail as expected on %s%s", total, ks, note)
	case bad == 0:
		return fmt.Sprintf("all %d cells pass on %s", total, ks)
	}
	return fmt.Sprintf("%d of %d cells failing on %s%s", bad, total, ks, note)
}

// summaryLine counts outcomes that occurred, in the taxonomy's order.
func summaryLine(s map[outcome.Outcome]int, sep string) string {
	var parts []string
	for _, o := range outcome.All {
		if n := s[o]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d %s", Emoji(o), n, o))
		}
	}
	// Outcomes outside the taxonomy cannot pass Validate, but a summary of an
	// unvalidated report should not hide them.
	for _, o := range slices.Sorted(maps.Keys(s)) {
		if !o.Valid() && s[o] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d %s", Emoji(o), s[o], o))
		}
	}
	if len(parts) == 0 {
		return "no cells"
	}
	return strings.Join(parts, sep)
}

// provenance says when, where and with what the report was made.
func provenance(r *Report) string {
	parts := []string{"Generated " + r.GeneratedAt.UTC().Format("2006-01-02 15:04 MST")}
	h := r.Host
	if h.Accel != "" {
		parts = append(parts, "accel "+h.Accel)
	}
	if h.QEMU != "" {
		parts = append(parts, "QEMU "+h.QEMU)
	}
	if h.Go != "" {
		parts = append(parts, h.Go)
	}
	if h.CPUs > 0 {
		parts = append(parts, fmt.Sprintf("%d CPU%s", h.CPUs, plural(h.CPUs)))
	}
	if h.Kmatrix != "" {
		parts = append(parts, "kmatrix "+h.Kmatrix)
	}
	if r.Shard != "" {
		parts = append(parts, "shard "+r.Shard)
	}
	parts = append(parts, "schema "+r.Schema)
	return strings.Join(parts, " · ")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// mdText escapes s for inline Markdown, inside a table cell too: one line,
// and the characters that would start markup ("|" would end the cell)
// backslash-escaped.
func mdText(s string) string {
	s = oneLine(s, 0)
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*_[]<>|~&#!", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// codeFence returns a backtick fence longer than any backtick run in lines,
// so a log holding ``` cannot close the block early.
func codeFence(lines []string) string {
	longest := 0
	for _, l := range lines {
		run := 0
		for _, r := range l {
			if r == '`' {
				run++
				longest = max(longest, run)
			} else {
				run = 0
			}
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
