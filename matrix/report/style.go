package report

import (
	"regexp"
	"strings"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// Emoji is the symbol an outcome has in report.md, the legend and diffs.
// Kernel panic and oops share 💥: both are the guest kernel crashing, and
// the cell's footnote says which.
func Emoji(o outcome.Outcome) string {
	switch o {
	case outcome.Pass:
		return "✅"
	case outcome.Fail:
		return "❌"
	case outcome.Skip:
		return "⏭️"
	case outcome.BuildError:
		return "🔨"
	case outcome.LoadError:
		return "🚫"
	case outcome.AttachError:
		return "🔌"
	case outcome.NotAttached:
		return "⚠️"
	case outcome.NeverRan:
		return "💤"
	case outcome.KernelPanic, outcome.Oops:
		return "💥"
	case outcome.Splat:
		return "🟠"
	case outcome.Timeout:
		return "⏱️"
	case outcome.InfraError:
		return "🛠️"
	}
	return "❓"
}

// notRun marks a matrix position with no cell: the check did not run on
// that kernel (its shard is missing, or an earlier stage stopped it).
const notRun = "—"

// legend is every outcome with its symbol, in the taxonomy's order.
func legend(sep string) string {
	var b strings.Builder
	for i, o := range outcome.All {
		if o == outcome.Oops {
			continue // shares 💥 with kernel-panic, listed with it
		}
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(Emoji(o) + " " + string(o))
		if o == outcome.KernelPanic {
			b.WriteString(" / " + string(outcome.Oops))
		}
	}
	b.WriteString(sep + notRun + " not run")
	return b.String()
}

var ansiRE = regexp.MustCompile(`\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])`)

// cleanLog makes captured output displayable: valid UTF-8, no terminal
// escape sequences (kernel consoles and compilers colour their output),
// "\n" line ends, no other control characters but tabs, no trailing blank
// lines.
func cleanLog(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = ansiRE.ReplaceAllString(s, "")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r == '\r':
			return '\n'
		case r < 0x20 || r == 0x7f || r == 0xFFFE || r == 0xFFFF:
			// Not displayable, and not allowed in XML 1.0 (junit.xml).
			return -1
		}
		return r
	}, s)
	return strings.TrimRight(s, " \t\n")
}

// oneLine makes a message one line: runs of white space, newlines
// included, become one space; at most max runes, with "…" when cut.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(cleanLog(s)), " ")
	if max > 0 {
		if r := []rune(s); len(r) > max {
			s = string(r[:max-1]) + "…"
		}
	}
	return s
}

// logExcerpt returns at most n lines of log: the last n for a load error
// (a verifier log ends with its verdict), the first n otherwise (a
// compiler's first error, an oops trace's first line). cut is how many
// lines were left out.
func logExcerpt(log string, o outcome.Outcome, n int) (lines []string, cut int, tail bool) {
	log = cleanLog(log)
	if log == "" || n <= 0 {
		if log == "" {
			return nil, 0, false
		}
		return nil, strings.Count(log, "\n") + 1, false
	}
	all := strings.Split(log, "\n")
	if len(all) <= n {
		return all, 0, false
	}
	if o == outcome.LoadError {
		return all[len(all)-n:], len(all) - n, true
	}
	return all[:n], len(all) - n, false
}
