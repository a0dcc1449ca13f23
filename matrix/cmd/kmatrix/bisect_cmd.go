package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/matrix"
	"github.com/kmatrix/kmatrix/matrix/outcome"
	"github.com/kmatrix/kmatrix/matrix/report"
)

func init() {
	commands["bisect"] = command{summary: "find the first kernel version where a cell's outcome changes", run: bisectCmd}
}

// bisectStep is one boot of a bisection: a package version and what the
// cell was there.
type bisectStep struct {
	Version string          `json:"version"`
	Package string          `json:"package"`
	Outcome outcome.Outcome `json:"outcome"`
	Message string          `json:"message,omitempty"`
	Seconds float64         `json:"seconds"`
}

// bisectResult is what `kmatrix bisect` finds (also bisect.json in --out).
type bisectResult struct {
	Check string `json:"check"`
	Suite string `json:"suite"`
	// Arch is the Debian architecture of the kernels booted ("arm64").
	Arch string `json:"arch"`
	// Versions is how many package versions lie between good and bad, both included.
	Versions int `json:"versions"`
	// Good and Bad are the two adjacent versions where the outcome changes:
	// Good has the good kernel's outcome, Bad is the first that does not.
	Good bisectStep `json:"good"`
	Bad  bisectStep `json:"bad"`
	// Boots is how many kernels were booted; Steps lists them in order.
	Boots int          `json:"boots"`
	Steps []bisectStep `json:"steps"`
}

func bisectCmd(ctx context.Context, args []string) int {
	return bisectMain(ctx, args, os.Stdout, os.Stderr)
}

func bisectMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kmatrix bisect", flag.ContinueOnError)
	var (
		opts              matrix.Options
		payloads          listFlag
		bpfObjs, kmodDirs listFlag
		check, good, bad  string
		suite, run, arch  string
		verify            bool
	)
	fs.StringVar(&check, "check", "", "the cell to bisect, as `PAYLOAD/CHECK` (e.g. bpf:probe/count/load, kmod/TestLoad)")
	fs.StringVar(&good, "good", "", "a `kernel` where the cell passes: a catalog name, or a package version of --suite")
	fs.StringVar(&bad, "bad", "", "a `kernel` where it does not: a catalog name, or a package version of --suite")
	fs.StringVar(&suite, "suite", "", "the `suite` of --good and --bad when they are package versions (e.g. trixie-backports)")
	fs.StringVar(&arch, "arch", "", "the kernels' `arch`, amd64 or arm64: the package versions of --suite are its signed cloud-ARCH kernels, "+
		"and catalog names come from the arm64 catalogs (default: the arch of the catalog kernel named, else amd64)")
	fs.StringVar(&opts.Catalog, "catalog", "", "catalog `file`, or a built-in one by name, that names --good and --bad (default: the built-in default and arm64 catalogs)")
	fs.Var(&payloads, "payloads", "built-in `payloads` to run: bpf,kmod (default: both, or none when --bpf/--kmod are given)")
	fs.Var(&bpfObjs, "bpf", "your BPF ELF `object` (repeatable), as for kmatrix run")
	fs.Var(&kmodDirs, "kmod", "your out-of-tree module source `dir` (repeatable), as for kmatrix run")
	fs.StringVar(&run, "run", "", "`command` to run in each guest after your payloads are loaded, as kmatrix run --check")
	fs.BoolVar(&verify, "verify", false, "also boot --good and --bad first, and bisect on the good kernel's real outcome rather than pass")
	fs.StringVar(&opts.OutDir, "out", "bisect", "output `dir`: one report per boot, and bisect.json")
	fs.BoolVar(&opts.AllowExpired, "allow-expired", false, "accept archive indexes past their Valid-Until (signatures are still checked)")
	fs.DurationVar(&opts.Timeout, "timeout", 10*time.Minute, "deadline for each kernel's VM")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: kmatrix bisect --check PAYLOAD/CHECK --good KERNEL --bad KERNEL [--suite SUITE] [--arch ARCH] [payload flags]

Lists every package version the signed index of the kernels' suite holds
between --good and --bad (same suite, flavour and source), in Debian version
order, and boots them one at a time, halving the range each time, until it
finds the two adjacent versions where the cell's outcome changes. A version
is good when the cell passes there (with --verify: when its outcome is the
one it has on --good). Prints both versions and the number of boots.

--arch arm64 bisects the cloud-arm64 kernels (linux-signed-arm64) instead,
booted with qemu-system-aarch64; a catalog name (debian-sid-arm64, or
linux-7.2-arm64 of --catalog series-arm64) brings its arch with it.

examples:
  kmatrix bisect --check bpf:probe/prog/load --bpf probe.o --suite trixie-backports \
      --good 7.3.4-1~bpo13+1 --bad 6.16.3-1~bpo13+1
  kmatrix bisect --arch arm64 --check bpf:probe/prog/load --bpf probe.o --suite trixie-backports \
      --good 7.3.4-1~bpo13+1 --bad 6.16.3-1~bpo13+1
  kmatrix bisect --check kmod/TestLoad --catalog mine.yaml --good new-kernel --bad old-kernel

flags:
`)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	payload, checkName, ok := strings.Cut(check, "/")
	switch {
	case !ok || payload == "" || checkName == "":
		fmt.Fprintf(stderr, "kmatrix bisect: --check %q: want PAYLOAD/CHECK, e.g. bpf:probe/count/load or kmod/TestLoad (the payload and check columns of a report)\n", check)
		return exitUsage
	case good == "" || bad == "":
		fmt.Fprintln(stderr, "kmatrix bisect: --good and --bad are both needed: a kernel where the cell passes and one where it does not")
		return exitUsage
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "kmatrix bisect: unexpected argument %q (flags only; see kmatrix bisect -h)\n", fs.Arg(0))
		return exitUsage
	}
	if err := checkArch(arch); err != nil {
		fmt.Fprintf(stderr, "kmatrix bisect: %v\n", err)
		return exitUsage
	}
	opts.Payloads, opts.BPFObjects, opts.KmodDirs = payloads, bpfObjs, kmodDirs
	if run != "" {
		opts.CheckCmd = strings.Fields(run)
	}
	opts.Parallel = 1
	res, err := bisect(ctx, bisectSpec{opts: opts, payload: payload, check: checkName, good: good, bad: bad, suite: suite, arch: arch, verify: verify, log: stderr})
	if res != nil {
		if b, jerr := json.MarshalIndent(res, "", "  "); jerr == nil {
			os.WriteFile(filepath.Join(opts.OutDir, "bisect.json"), append(b, '\n'), 0o644)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "kmatrix bisect: %v\n", err)
		switch {
		case errors.Is(err, errBisectInput), errors.Is(err, matrix.ErrUsage), errors.Is(err, kernels.ErrUnknownFlavour):
			return exitUsage
		case errors.Is(err, errBisectInfra):
			return signalCode(ctx, exitInfra)
		}
		return signalCode(ctx, exitFailed)
	}
	fmt.Fprintf(stdout, "%s: the outcome changes between %s and %s\n", res.Check, res.Good.Version, res.Bad.Version)
	fmt.Fprintf(stdout, "  %-24s %s%s\n", res.Good.Version, res.Good.Outcome, suffix(res.Good.Message))
	fmt.Fprintf(stdout, "  %-24s %s%s\n", res.Bad.Version, res.Bad.Outcome, suffix(res.Bad.Message))
	fmt.Fprintf(stdout, "%d boots for %d %s versions of %s (%s)\n", res.Boots, res.Versions, res.Arch, res.Suite, filepath.Join(opts.OutDir, "bisect.json"))
	return exitOK
}

func suffix(msg string) string {
	if msg == "" {
		return ""
	}
	if len(msg) > 160 {
		msg = msg[:160] + "…"
	}
	return ": " + msg
}

var (
	errBisectInput = errors.New("bad input")
	// errBisectInfra: a version could not be judged (an infra-error, a
	// kernel that crashed before the payloads): retry, as for exit 4.
	errBisectInfra = errors.New("could not judge a version")
)

type bisectSpec struct {
	opts                      matrix.Options
	payload, check, good, bad string
	suite                     string
	// arch is --arch: empty follows the catalog kernels named, else amd64.
	arch   string
	verify bool
	log    io.Writer
}

// bisect runs the bisection: matrix.Run on a one-kernel catalog pinned to
// each version it boots.
func bisect(ctx context.Context, sp bisectSpec) (*bisectResult, error) {
	goodE, goodOK, err := bisectCatalogEnd(ctx, sp, "--good", sp.good)
	if err != nil {
		return nil, err
	}
	badE, badOK, err := bisectCatalogEnd(ctx, sp, "--bad", sp.bad)
	if err != nil {
		return nil, err
	}
	// The arch of package versions: --arch, else that of the catalog kernel named at the other end.
	arch := sp.arch
	for _, e := range []kernels.Entry{goodE, badE} {
		if arch == "" && e.Arch != "" {
			arch = e.Arch
		}
	}
	arch = cmp.Or(arch, kernels.DefaultArch)
	if !goodOK {
		goodE = bisectVersionEnd(sp, arch, sp.good)
	}
	if !badOK {
		badE = bisectVersionEnd(sp, arch, sp.bad)
	}
	if goodE.Arch != badE.Arch {
		return nil, fmt.Errorf("%w: --good %s is an %s kernel, --bad %s an %s one: bisect kernels of one arch", errBisectInput, sp.good, goodE.Arch, sp.bad, badE.Arch)
	}
	if goodE.Suite != badE.Suite || goodE.Flavour != badE.Flavour || goodE.Source != badE.Source {
		return nil, fmt.Errorf("%w: --good is %s %s from %s, --bad %s %s from %s: bisect within one suite, flavour and source",
			errBisectInput, goodE.Suite, goodE.Flavour, goodE.Source, badE.Suite, badE.Flavour, badE.Source)
	}
	if goodE.Version == badE.Version {
		return nil, fmt.Errorf("%w: --good and --bad are the same version %s", errBisectInput, goodE.Version)
	}
	kopts := kernels.Options{AllowExpired: sp.opts.AllowExpired, Log: io.Discard}
	vs, err := kernels.VersionsBetween(ctx, kernels.Entry{Suite: goodE.Suite, Flavour: goodE.Flavour, Source: goodE.Source}, goodE.Version, badE.Version, kopts)
	if err != nil {
		return nil, err
	}
	if kernels.CompareVersions(goodE.Version, badE.Version) > 0 {
		slices.Reverse(vs) // from good to bad, whichever is older
	}
	res := &bisectResult{Check: sp.payload + "/" + sp.check, Suite: goodE.Suite, Arch: goodE.Arch, Versions: len(vs)}
	if err := os.MkdirAll(sp.opts.OutDir, 0o755); err != nil {
		return nil, err
	}
	fmt.Fprintf(sp.log, "kmatrix bisect: %d %s versions of %s between %s and %s\n", len(vs), goodE.Arch, goodE.Suite, vs[0].Version, vs[len(vs)-1].Version)

	steps := map[int]bisectStep{}
	boot := func(i int) (bisectStep, error) {
		if s, ok := steps[i]; ok {
			return s, nil
		}
		s, err := bootOne(ctx, sp, vs[i], goodE)
		if err != nil {
			return s, err
		}
		res.Boots++
		res.Steps = append(res.Steps, s)
		steps[i] = s
		fmt.Fprintf(sp.log, "kmatrix bisect: boot %d: %s: %s%s (%.1fs)\n", res.Boots, s.Version, s.Outcome, suffix(s.Message), s.Seconds)
		return s, nil
	}
	want := outcome.Pass
	lo, hi := 0, len(vs)-1
	if sp.verify {
		g, err := boot(lo)
		if err != nil {
			return res, err
		}
		b, err := boot(hi)
		if err != nil {
			return res, err
		}
		if g.Outcome == b.Outcome {
			return res, fmt.Errorf("%s is %s on both %s and %s: nothing changes between them", res.Check, g.Outcome, g.Version, b.Version)
		}
		want = g.Outcome
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		s, err := boot(mid)
		if err != nil {
			return res, err
		}
		if s.Outcome == want {
			lo = mid
		} else {
			hi = mid
		}
	}
	res.Good, res.Bad = steps[lo], steps[hi]
	if _, ok := steps[lo]; !ok {
		res.Good = bisectStep{Version: vs[lo].Version, Package: vs[lo].Package, Outcome: want, Message: "assumed: given as --good"}
	}
	if _, ok := steps[hi]; !ok {
		res.Bad = bisectStep{Version: vs[hi].Version, Package: vs[hi].Package, Message: "assumed not " + string(want) + ": given as --bad"}
	}
	return res, nil
}

// bisectCatalogs are the catalogs whose kernel names --good and --bad may
// be, in the order they are searched: --catalog (with --arch, as kmatrix
// run --arch reads it: "series" means series-arm64 for arm64), else the
// shipped catalog of --arch, else the default and arm64 ones.
func bisectCatalogs(sp bisectSpec) ([]*kernels.Catalog, error) {
	var names []string
	switch {
	case sp.opts.Catalog != "":
		names = []string{sp.opts.Catalog}
	case sp.arch != "":
		names = []string{""}
	default:
		names = []string{"default", "arm64"}
	}
	var cats []*kernels.Catalog
	for _, n := range names {
		cat, err := matrix.LoadCatalog(n, sp.arch)
		if err != nil {
			return nil, err
		}
		cats = append(cats, cat)
	}
	return cats, nil
}

// bisectCatalogEnd turns --good or --bad (flag) into an exact catalog
// entry when it names a catalog kernel (as resolved, from the lock); ok
// is false when it is no catalog's kernel name, for bisectVersionEnd.
func bisectCatalogEnd(ctx context.Context, sp bisectSpec, flag, name string) (e kernels.Entry, ok bool, err error) {
	cats, err := bisectCatalogs(sp)
	if err != nil {
		return e, false, err
	}
	var sel *kernels.Catalog
	for _, cat := range cats {
		if s, err := cat.Select([]string{name}); err == nil {
			sel = s
			break
		}
	}
	if sel == nil {
		if other := otherArchKernel(sp, name); other != "" {
			return e, false, fmt.Errorf("%w: --arch %s, but %s %s is %s: give an %s kernel (%s), or leave --arch out",
				errBisectInput, sp.arch, flag, name, other, sp.arch, strings.Join(catalogNames(cats), ", "))
		}
		if sp.suite == "" {
			return e, false, fmt.Errorf("%w: %s %q is not a kernel of the catalog (%s): give a catalog name, or a package version with --suite",
				errBisectInput, flag, name, strings.Join(catalogNames(cats), ", "))
		}
		return e, false, nil
	}
	rs, err := kernels.Resolve(ctx, sel, kernels.Options{AllowExpired: sp.opts.AllowExpired, Log: io.Discard})
	if err != nil {
		return e, false, err
	}
	r := rs[0]
	if r.Local != "" {
		return e, false, fmt.Errorf("%w: %s is a local kernel: bisect needs archive kernels", errBisectInput, name)
	}
	return kernels.Entry{Suite: r.Suite, Arch: r.GetArch(), Flavour: r.Flavour, Source: r.Source, Version: r.Version}, true, nil
}

// bisectVersionEnd is --good or --bad as a package version of --suite:
// the suite's own signed cloud kernel of arch.
func bisectVersionEnd(sp bisectSpec, arch, version string) kernels.Entry {
	return kernels.Entry{Suite: sp.suite, Arch: arch, Flavour: kernels.FlavourOf(arch), Source: kernels.SourceOf(arch), Version: version}
}

// otherArchKernel says which catalog has name as a kernel of an arch other
// than --arch ("an amd64 kernel of catalog default"), or "" when none does.
func otherArchKernel(sp bisectSpec, name string) string {
	if sp.arch == "" {
		return ""
	}
	search := []string{sp.opts.Catalog}
	if sp.opts.Catalog == "" {
		search = []string{"default", "arm64"}
	}
	for _, n := range search {
		cat, err := matrix.LoadCatalog(n, "")
		if err != nil {
			continue
		}
		for _, e := range cat.Kernels {
			if e.Name == name && e.Local == "" && e.Arch != sp.arch {
				return fmt.Sprintf("an %s kernel of catalog %s", e.Arch, cmp.Or(n, "default"))
			}
		}
	}
	return ""
}

func catalogNames(cats []*kernels.Catalog) []string {
	var known []string
	for _, cat := range cats {
		for _, e := range cat.Kernels {
			known = append(known, e.Name)
		}
	}
	return known
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// bootOne runs the matrix on one exact version, through a one-kernel
// catalog written for it, and returns the cell's outcome there.
func bootOne(ctx context.Context, sp bisectSpec, v kernels.Available, base kernels.Entry) (bisectStep, error) {
	step := bisectStep{Version: v.Version, Package: v.Package}
	name := "v" + unsafeName.ReplaceAllString(v.Version, "_")
	dir := filepath.Join(sp.opts.OutDir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return step, err
	}
	cat := fmt.Sprintf("kernels:\n  - name: %s\n    suite: %s\n    arch: %s\n    flavour: %s\n    source: %s\n    version: %q\n    package: %s\n",
		name, base.Suite, base.Arch, base.Flavour, base.Source, v.Version, v.Package)
	catFile := filepath.Join(dir, "catalog.yaml")
	if err := os.WriteFile(catFile, []byte(cat), 0o644); err != nil {
		return step, err
	}
	opts := sp.opts
	opts.Catalog, opts.OutDir = catFile, dir
	start := time.Now()
	rep, err := matrix.Run(ctx, opts)
	step.Seconds = time.Since(start).Seconds()
	if rep == nil {
		return step, fmt.Errorf("%s: %w", v.Version, err)
	}
	for _, c := range rep.Cells {
		// A kernel that crashed or hung before running anything says nothing about the cell.
		if c.Payload == matrix.PayloadKernel && c.Check == "boot" && (c.Outcome == outcome.KernelPanic || c.Outcome == outcome.Timeout) &&
			strings.HasSuffix(c.Evidence.Message, "during kernel") {
			return step, fmt.Errorf("%w: %s: the kernel itself failed before running the payloads (%s: %s): retry, or bisect around it; see %s",
				errBisectInfra, v.Version, c.Outcome, c.Evidence.Message, filepath.Join(dir, "report.md"))
		}
	}
	var cells []string
	for _, c := range rep.Cells {
		if c.Payload == sp.payload && c.Check == sp.check {
			step.Outcome, step.Message = c.Outcome, c.Evidence.Message
			if c.Outcome == outcome.InfraError {
				return step, fmt.Errorf("%w: %s: %s/%s is an infra-error (%s): kmatrix could not tell whether this version is good or bad; see %s",
					errBisectInfra, v.Version, sp.payload, sp.check, c.Evidence.Message, filepath.Join(dir, "report.md"))
			}
			return step, nil
		}
		cells = append(cells, c.Payload+"/"+c.Check)
	}
	if k := kernelInfra(rep); k != "" {
		return step, fmt.Errorf("%w: %s: the kernel did not run (%s); see %s", errBisectInfra, v.Version, k, filepath.Join(dir, "report.md"))
	}
	return step, fmt.Errorf("%w: the report of %s has no cell %s/%s; its cells: %s", errBisectInput, v.Version, sp.payload, sp.check, strings.Join(cells, ", "))
}

// kernelInfra is the message of the first infra-error cell of a report, if any.
func kernelInfra(rep *report.Report) string {
	for _, c := range rep.Cells {
		if c.Outcome == outcome.InfraError {
			return c.Evidence.Message
		}
	}
	return ""
}
