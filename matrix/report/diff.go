package report

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// ErrRegression is wrapped by Delta.Err when a cell regressed, so CI can
// exit non-zero on `errors.Is(err, report.ErrRegression)`.
var ErrRegression = errors.New("regression against the baseline")

// Delta is what changed between a baseline report and a current one.
type Delta struct {
	BaselineAt, CurrentAt time.Time
	// Regressions: cells that passed (or were skipped) in the baseline and
	// now fail in a way that is the payload's (any failing outcome but
	// infra-error) and that no expectation allows (an expected failure is
	// an other change).
	Regressions []Change
	// Fixes: cells that failed in the baseline (not with infra-error) and
	// now pass.
	Fixes []Change
	// Changed: other outcome changes, e.g. fail → load-error, pass → skip.
	Changed []Change
	// Infra: changes to or from infra-error. They say nothing about the
	// payload, so they are never counted as a regression or a fix.
	Infra []Change
	// Added and Removed: cells only in the current or only in the baseline.
	Added, Removed []Cell
	// AddedKernels and RemovedKernels: kernels only in one of the reports.
	AddedKernels, RemovedKernels []Kernel
	// KernelChanges: kernels in both whose identity changed (a new
	// package version, another compiler): often the reason a cell changed.
	KernelChanges []KernelChange
	// Verifier: programs whose processed instructions grew by more than
	// 20 % or came within 10 % of the verifier's limit (see verifierFlags).
	// Flagged, not counted as regressions: they still load.
	Verifier []VerifierFlag
	// Unchanged counts cells with the same outcome in both.
	Unchanged int
}

// Change is one cell whose outcome differs between the reports.
type Change struct {
	Kernel, Payload, Check string
	Was, Now               outcome.Outcome
	// Evidence is the current cell's evidence (the baseline's for a fix
	// would explain the old failure, not the change).
	Evidence Evidence
	// KernelChange says how the cell's kernel changed, e.g.
	// "version 6.1.176 → 6.1.192"; empty when it did not.
	KernelChange string
}

// KernelChange is one kernel whose identity changed between the reports.
type KernelChange struct {
	Name     string
	Was, Now Kernel
	// Fields lists each changed field: "version 6.1.176 → 6.1.192".
	Fields []string
}

// Diff compares current with baseline cell by cell (a cell is a kernel
// name × payload × check) and kernel by kernel.
func Diff(baseline, current *Report) Delta {
	d := Delta{BaselineAt: baseline.GeneratedAt, CurrentAt: current.GeneratedAt}
	oldK := make(map[string]Kernel)
	for _, k := range baseline.Kernels {
		oldK[k.Name] = k
	}
	newK := make(map[string]bool)
	kchange := make(map[string]string)
	for _, k := range current.Kernels {
		newK[k.Name] = true
		was, ok := oldK[k.Name]
		if !ok {
			d.AddedKernels = append(d.AddedKernels, k)
			continue
		}
		if f := kernelFieldChanges(was, k); len(f) > 0 {
			d.KernelChanges = append(d.KernelChanges, KernelChange{Name: k.Name, Was: was, Now: k, Fields: f})
			kchange[k.Name] = strings.Join(f, ", ")
		}
	}
	for _, k := range baseline.Kernels {
		if !newK[k.Name] {
			d.RemovedKernels = append(d.RemovedKernels, k)
		}
	}

	old := baseline.cellIndex()
	seen := make(map[cellKey]bool)
	for _, c := range current.Cells {
		seen[c.key()] = true
		b, ok := old[c.key()]
		if !ok {
			d.Added = append(d.Added, c)
			continue
		}
		if b.Outcome == c.Outcome {
			d.Unchanged++
			continue
		}
		ch := Change{Kernel: c.Kernel, Payload: c.Payload, Check: c.Check, Was: b.Outcome, Now: c.Outcome,
			Evidence: c.Evidence, KernelChange: kchange[c.Kernel]}
		switch {
		case b.Outcome == outcome.InfraError || c.Outcome == outcome.InfraError:
			d.Infra = append(d.Infra, ch)
		case !b.Outcome.Failed() && c.Outcome.Failed() && !c.ExpectedFailure():
			d.Regressions = append(d.Regressions, ch)
		case b.Outcome.Failed() && c.Outcome == outcome.Pass:
			d.Fixes = append(d.Fixes, ch)
		default:
			d.Changed = append(d.Changed, ch)
		}
	}
	for _, c := range baseline.Cells {
		if !seen[c.key()] {
			d.Removed = append(d.Removed, c)
		}
	}
	d.Verifier = verifierFlags(old, current.Cells)
	return d
}

func kernelFieldChanges(a, b Kernel) []string {
	var f []string
	for _, x := range []struct{ name, was, now string }{
		{"arch", a.GetArch(), b.GetArch()}, {"version", a.Version, b.Version}, {"release", a.Release, b.Release},
		{"package", a.Package, b.Package}, {"package version", a.PackageVersion, b.PackageVersion},
		{"compiler", a.Compiler, b.Compiler}, {"suite", a.Suite, b.Suite},
		{"btf", fmt.Sprint(a.BTF), fmt.Sprint(b.BTF)},
	} {
		if x.was != x.now {
			f = append(f, fmt.Sprintf("%s %s → %s", x.name, orDash(x.was), orDash(x.now)))
		}
	}
	// The digest changes with every package version; worth a line only when
	// nothing else explains it (a rebuilt package, or a local kernel).
	if len(f) == 0 && a.SHA256 != b.SHA256 {
		f = append(f, fmt.Sprintf("sha256 %s → %s", short(a.SHA256), short(b.SHA256)))
	}
	return f
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return orDash(h)
}

// Regressed reports whether any cell regressed.
func (d Delta) Regressed() bool { return len(d.Regressions) > 0 }

// Empty reports whether nothing changed at all.
func (d Delta) Empty() bool {
	return len(d.Regressions)+len(d.Fixes)+len(d.Changed)+len(d.Infra)+len(d.Added)+len(d.Removed)+
		len(d.AddedKernels)+len(d.RemovedKernels)+len(d.KernelChanges)+len(d.Verifier) == 0
}

// Err is nil unless a cell regressed; then it wraps ErrRegression and
// names every regressed cell. `kmatrix run --baseline` exits non-zero on it.
func (d Delta) Err() error {
	if !d.Regressed() {
		return nil
	}
	ids := make([]string, len(d.Regressions))
	for i, c := range d.Regressions {
		ids[i] = fmt.Sprintf("%s/%s/%s (%s → %s)", c.Kernel, c.Payload, c.Check, c.Was, c.Now)
	}
	return fmt.Errorf("%w: %d cell%s: %s", ErrRegression, len(ids), plural(len(ids)), strings.Join(ids, ", "))
}

// Headline says in a few words what changed: "1 regression, 2 fixes".
func (d Delta) Headline() string {
	var parts []string
	add := func(n int, one, many string) {
		if n == 1 {
			parts = append(parts, "1 "+one)
		} else if n > 1 {
			parts = append(parts, fmt.Sprintf("%d %s", n, many))
		}
	}
	add(len(d.Regressions), "regression", "regressions")
	add(len(d.Fixes), "fix", "fixes")
	add(len(d.Changed), "other change", "other changes")
	add(len(d.Infra), "infrastructure change", "infrastructure changes")
	add(len(d.AddedKernels), "new kernel", "new kernels")
	add(len(d.RemovedKernels), "removed kernel", "removed kernels")
	add(len(d.KernelChanges), "updated kernel", "updated kernels")
	add(len(d.Added), "new cell", "new cells")
	add(len(d.Removed), "removed cell", "removed cells")
	add(len(d.Verifier), "verifier flag", "verifier flags")
	if len(parts) == 0 {
		return fmt.Sprintf("no changes (%d cells alike)", d.Unchanged)
	}
	return strings.Join(parts, ", ")
}

// WriteText writes the delta for a terminal or CI log: one line per change.
func (d Delta) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "kmatrix diff: %s\n", d.Headline())
	section := func(title string, cs []Change) {
		if len(cs) == 0 {
			return
		}
		fmt.Fprintf(&b, "%s:\n", title)
		for _, c := range cs {
			fmt.Fprintf(&b, "  %s/%s/%s: %s → %s", c.Kernel, c.Payload, c.Check, c.Was, c.Now)
			if m := oneLine(c.Evidence.Message, 160); m != "" && c.Now != outcome.Pass {
				fmt.Fprintf(&b, ": %s", m)
			}
			if c.KernelChange != "" {
				fmt.Fprintf(&b, " [kernel %s]", c.KernelChange)
			}
			b.WriteString("\n")
		}
	}
	section("regressions", d.Regressions)
	section("fixes", d.Fixes)
	section("other changes", d.Changed)
	section("infrastructure (not the payload's; not counted)", d.Infra)
	for _, k := range d.AddedKernels {
		fmt.Fprintf(&b, "new kernel: %s %s (%s)\n", k.Name, k.Version, k.Release)
	}
	for _, k := range d.RemovedKernels {
		fmt.Fprintf(&b, "removed kernel: %s %s (%s)\n", k.Name, k.Version, k.Release)
	}
	for _, k := range d.KernelChanges {
		fmt.Fprintf(&b, "updated kernel: %s: %s\n", k.Name, strings.Join(k.Fields, ", "))
	}
	for _, c := range d.Added {
		fmt.Fprintf(&b, "new cell: %s: %s\n", c.ID(), c.Outcome)
	}
	for _, c := range d.Removed {
		fmt.Fprintf(&b, "removed cell: %s (was %s)\n", c.ID(), c.Outcome)
	}
	for _, v := range d.Verifier {
		fmt.Fprintf(&b, "verifier: %s/%s/%s: %s\n", v.Kernel, v.Payload, v.Check, v.Why)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMarkdown writes Markdown for a PR or issue comment.
func (d Delta) WriteMarkdown(w io.Writer) error {
	_, err := io.WriteString(w, d.Markdown())
	return err
}

// Markdown renders the delta for a GitHub PR or issue comment: the
// regressions first, with their evidence; never over MaxMarkdown bytes.
func (d Delta) Markdown() string {
	for _, rows := range []int{0, 100, 25, 5} {
		if s := d.markdown(rows); len(s) <= MaxMarkdown {
			return s
		}
	}
	return truncateUTF8(d.markdown(1), MaxMarkdown-200) + "\n\n_Cut to fit GitHub's comment limit: run `kmatrix report diff` for the whole list._\n"
}

// markdown renders with at most rows rows per table (0: all).
func (d Delta) markdown(rows int) string {
	var b strings.Builder
	icon := "✅"
	if d.Regressed() {
		icon = "❌"
	}
	fmt.Fprintf(&b, "## %s kmatrix diff: %s\n\n", icon, mdText(d.Headline()))
	if !d.BaselineAt.IsZero() || !d.CurrentAt.IsZero() {
		fmt.Fprintf(&b, "<sub>baseline %s → current %s</sub>\n\n", d.BaselineAt.UTC().Format("2006-01-02 15:04 MST"), d.CurrentAt.UTC().Format("2006-01-02 15:04 MST"))
	}
	limit := func(n int) (int, int) {
		if rows > 0 && n > rows {
			return rows, n - rows
		}
		return n, 0
	}
	more := func(cut int) {
		if cut > 0 {
			fmt.Fprintf(&b, "\n_… and %d more, left out to fit GitHub's comment limit._\n", cut)
		}
	}
	changes := func(title string, cs []Change, why bool) {
		if len(cs) == 0 {
			return
		}
		fmt.Fprintf(&b, "### %s (%d)\n\n| kernel | payload | check | was | now |", title, len(cs))
		if why {
			b.WriteString(" why |")
		}
		b.WriteString("\n|:--|:--|:--|:--|:--|")
		if why {
			b.WriteString(":--|")
		}
		b.WriteString("\n")
		n, cut := limit(len(cs))
		for _, c := range cs[:n] {
			kernel := mdText(c.Kernel)
			if c.KernelChange != "" {
				kernel += "<br><sub>" + mdText(c.KernelChange) + "</sub>"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s %s | %s %s |", kernel, mdText(c.Payload), mdText(c.Check),
				Emoji(c.Was), c.Was, Emoji(c.Now), c.Now)
			if why {
				fmt.Fprintf(&b, " %s |", mdText(oneLine(c.Evidence.Message, 200)))
			}
			b.WriteString("\n")
		}
		more(cut)
		b.WriteString("\n")
	}
	changes("❌ Regressions", d.Regressions, true)
	changes("✅ Fixes", d.Fixes, false)
	changes("🔄 Other changes", d.Changed, true)
	changes("🛠️ Infrastructure changes (not the payload's; never counted as a regression or fix)", d.Infra, true)

	if len(d.AddedKernels)+len(d.RemovedKernels)+len(d.KernelChanges) > 0 {
		fmt.Fprintf(&b, "### 🐧 Kernels\n\n| kernel | change |\n|:--|:--|\n")
		for _, k := range d.AddedKernels {
			fmt.Fprintf(&b, "| %s | new: %s |\n", mdText(k.Name), mdText(kernelLine(k)))
		}
		for _, k := range d.RemovedKernels {
			fmt.Fprintf(&b, "| %s | removed (was %s) |\n", mdText(k.Name), mdText(kernelLine(k)))
		}
		for _, k := range d.KernelChanges {
			fmt.Fprintf(&b, "| %s | %s |\n", mdText(k.Name), mdText(strings.Join(k.Fields, ", ")))
		}
		b.WriteString("\n")
	}
	cells := func(title string, cs []Cell) {
		if len(cs) == 0 {
			return
		}
		failing := 0
		for _, c := range cs {
			if c.Outcome.Failed() {
				failing++
			}
		}
		fmt.Fprintf(&b, "<details><summary>%s (%d, %d not passing)</summary>\n\n| kernel | payload | check | outcome |\n|:--|:--|:--|:--|\n", title, len(cs), failing)
		n, cut := limit(len(cs))
		for _, c := range cs[:n] {
			fmt.Fprintf(&b, "| %s | %s | %s | %s %s |\n", mdText(c.Kernel), mdText(c.Payload), mdText(c.Check), Emoji(c.Outcome), c.Outcome)
		}
		more(cut)
		b.WriteString("\n</details>\n\n")
	}
	if len(d.Verifier) > 0 {
		fmt.Fprintf(&b, "### 🧮 Verifier (%d: still loading, but heading for the limit)\n\n| kernel | payload | check | was | now | why |\n|:--|:--|:--|--:|--:|:--|\n", len(d.Verifier))
		n, cut := limit(len(d.Verifier))
		for _, v := range d.Verifier[:n] {
			fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %s |\n", mdText(v.Kernel), mdText(v.Payload), mdText(v.Check), v.Was, v.Now, mdText(v.Why))
		}
		more(cut)
		b.WriteString("\n")
	}
	cells("New cells", d.Added)
	cells("Removed cells", d.Removed)
	if d.Empty() {
		fmt.Fprintf(&b, "Every one of the %d cells has the same outcome as in the baseline.\n", d.Unchanged)
	} else {
		fmt.Fprintf(&b, "<sub>%d cell%s unchanged.</sub>\n", d.Unchanged, plural(d.Unchanged))
	}
	return b.String()
}

func kernelLine(k Kernel) string {
	s := k.Version
	if k.Release != "" {
		s += " (" + k.Release + ")"
	}
	if k.Compiler != "" {
		s += ", " + k.Compiler
	}
	return s
}
