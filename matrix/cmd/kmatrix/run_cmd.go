package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/kmatrix/kmatrix/matrix"
	"github.com/kmatrix/kmatrix/matrix/report"
)

func init() {
	commands["run"] = command{summary: "run the kernel matrix and write the report", run: runMatrix}
}

// listFlag collects a repeatable or comma-separated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func runMatrix(ctx context.Context, args []string) int {
	return runMain(ctx, args, os.Stdout, os.Stderr)
}

func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kmatrix run", flag.ContinueOnError)
	var (
		opts              matrix.Options
		kernels, payloads listFlag
		bpfObjs, kmodDirs listFlag
		attach, files     listFlag
		noFire, goTests   listFlag
		shard, check      string
		goTestArgs        string
		projectFile       string
	)
	fs.StringVar(&opts.Catalog, "catalog", "", "catalog `file`, or a built-in one: default, series, arm64, series-arm64 (default: the built-in default catalog)")
	fs.StringVar(&opts.Arch, "arch", "", "run the catalog's kernels of one `arch`: amd64 or arm64 (arm64 with no --catalog: the built-in arm64 catalog; with --catalog series: series-arm64)")
	fs.Var(&kernels, "kernels", "kernel `names` to run, comma-separated (default: all in the catalog)")
	fs.Var(&payloads, "payloads", "built-in `payloads` to run: bpf,kmod (default: both, or none when --bpf/--kmod are given)")
	fs.Var(&bpfObjs, "bpf", "your BPF ELF `object`: load and attach every program on every kernel (repeatable)")
	fs.Var(&kmodDirs, "kmod", "your out-of-tree module source `dir`: build, load and unload it on every kernel (repeatable)")
	fs.Var(&attach, "attach", "`PROGRAM=TARGET` for a program whose section names no target: PATH:SYMBOL for a uprobe, a program for freplace (repeatable)")
	fs.Var(&files, "file", "`HOST:GUEST` file to copy into every guest, e.g. the binary a uprobe attaches to (repeatable)")
	fs.Var(&noFire, "no-fire", "`programs` not expected to run under the trigger workload: 0 runs is then a pass, not never-ran")
	fs.Var(&goTests, "gotest", "your Go test `packages`, as go test takes them (./..., ./probe): every test and subtest a cell on every kernel (repeatable)")
	fs.StringVar(&goTestArgs, "gotest-args", "", "`flags` for every --gotest binary, space-separated: '-test.run=X -test.count=2'")
	fs.StringVar(&projectFile, "project", "", "project `file` (default: kmatrix.yaml in this directory or a parent, up to the repository root; \"none\" for none)")
	fs.StringVar(&check, "check", "", "`command` to run in each guest after your payloads are loaded (space-separated argv, no shell)")
	fs.StringVar(&opts.OutDir, "out", "report", "output `dir` for report.json, report.md, report.html, junit.xml")
	fs.IntVar(&opts.Parallel, "parallel", 0, "kernels to run at once (default: one per CPU)")
	fs.StringVar(&shard, "shard", "", "run shard `i/n` of the selected kernels")
	fs.BoolVar(&opts.Float, "float", false, "resolve the newest kernels in the archive instead of catalog.lock")
	fs.BoolVar(&opts.AllowExpired, "allow-expired", false, "accept archive indexes past their Valid-Until (signatures are still checked)")
	fs.StringVar(&opts.Baseline, "baseline", "", "previous report.json `file` to diff against; exit 3 on regressions")
	fs.BoolVar(&opts.Cold, "cold", false, "boot every kernel cold instead of restoring a snapshot of it booted")
	fs.BoolVar(&opts.MeasureFloor, "floor", false, "also time a bare boot of each kernel and report the checks' cost against it")
	fs.DurationVar(&opts.Timeout, "timeout", 10*time.Minute, "deadline for each kernel's VM")
	fs.DurationVar(&opts.CommandTimeout, "command-timeout", 5*time.Minute, "deadline for each payload's guest command (a test binary, a loader); its checks are timeouts past it")
	fs.StringVar(&opts.Expect, "expect", "", "expectations `file` (YAML): known failures by kernel, payload and check, each with a reason")
	allowMissing := fs.Bool("allow-missing-baseline", false, "with --baseline: a missing baseline file is a first run (nothing regresses), not an error")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: kmatrix run [flags]

Boots every selected kernel in QEMU, runs the payloads in each (the built-in
eBPF program and kernel module, or your own: --bpf, --kmod), and writes the
kernel × check report: report.json, report.md, report.html and junit.xml in
--out. Prints the matrix when done.

Exit status: 0 every cell passed or failed as --expect declares; 1 a cell
failed unexpectedly (or an unexpected pass); 2 bad flags or input; 3 with
--baseline, a cell that passed there fails now; 4 only infra-errors failed
(retry); 130/143 interrupted. kmatrix help exit-codes says more.

examples:
  kmatrix run                                        built-in payloads, every default kernel
  kmatrix run --kernels debian-bullseye,debian-sid   two kernels
  kmatrix run --bpf probe.o                          your object: load, attach, detach each program
  kmatrix run --kmod ./driver                        your module: build, load, unload per kernel
  kmatrix run --gotest ./...                         your Go tests: every test and subtest a cell per kernel
  kmatrix init && kmatrix run                        write kmatrix.yaml, then run what it says
  kmatrix run --bpf probe.o --check './mycheck --expect 3'
                                                     also run a static binary with probe.o attached
  kmatrix run --shard 2/4 --out shard-2              one of four CI jobs; join with kmatrix report merge
  kmatrix run --bpf probe.o --expect expect.yml      known failures (tcx before 6.6) do not fail the run

flags:
`)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kmatrix run: unexpected argument %q (flags only; see kmatrix run -h)\n", fs.Arg(0))
		return exitUsage
	}
	if err := checkRanges(fs,
		rangeCheck{"parallel", opts.Parallel >= 0, "want the number of kernels to run at once, at least 1 (0: one per CPU)"},
		rangeCheck{"timeout", opts.Timeout > 0, "want a positive duration, e.g. 10m"},
		rangeCheck{"command-timeout", opts.CommandTimeout > 0, "want a positive duration, e.g. 5m"}); err != nil {
		fmt.Fprintf(stderr, "kmatrix run: %v\n", err)
		return exitUsage
	}
	var err error
	if opts.Shard, err = matrix.ParseShard(shard); err != nil {
		fmt.Fprintf(stderr, "kmatrix run: --shard: %v\n", err)
		return exitUsage
	}
	opts.Kernels, opts.BPFObjects, opts.KmodDirs = kernels, bpfObjs, kmodDirs
	opts.Attach, opts.Files, opts.NoFire = attach, files, noFire
	opts.GoTests, opts.GoTestArgs = goTests, strings.Fields(goTestArgs)
	if len(payloads) > 0 {
		opts.Payloads = payloads
	}
	if check != "" {
		opts.CheckCmd = strings.Fields(check)
	}
	if opts, err = withProject(opts, projectFile, fs, stderr); err != nil {
		fmt.Fprintf(stderr, "kmatrix run: %v\n", err)
		return exitUsage
	}
	if len(opts.CheckCmd) > 0 && len(opts.BPFObjects)+len(opts.KmodDirs) == 0 {
		// The check runs beside the user's payloads, loaded and attached;
		// without one it would never run, and a green matrix would say
		// nothing about it.
		fmt.Fprintf(stderr, "kmatrix run: --check %q runs in each guest while your payloads are loaded, and none is given: add --bpf FILE.o or --kmod DIR\n", strings.Join(opts.CheckCmd, " "))
		return exitUsage
	}
	opts.Progress = stderr
	var base *report.Report
	if opts.Baseline != "" {
		if base, err = readBaseline(opts.Baseline, *allowMissing); err != nil {
			fmt.Fprintf(stderr, "kmatrix run: %v\n", err)
			return exitUsage
		}
		if base == nil {
			opts.Baseline = ""
		}
	}

	rep, err := matrix.Run(ctx, opts)
	if rep != nil {
		f, isFile := stdout.(*os.File)
		rep.WriteText(stdout, isFile && term.IsTerminal(int(f.Fd())))
		if opts.OutDir != "" {
			fmt.Fprintf(stdout, "report: %s/report.html (also report.json, report.md, junit.xml)\n", opts.OutDir)
		}
	}
	if rep == nil {
		fmt.Fprintf(stderr, "kmatrix run: %v\n", err)
		if errors.Is(err, matrix.ErrUsage) {
			return exitUsage
		}
		return usageExit(err)
	}
	if err != nil {
		// Every error of a run that made a report is also in its cells.
		fmt.Fprintf(stderr, "kmatrix run: %v\n", err)
	}
	var d *report.Delta
	if base != nil {
		x := report.Diff(base, rep)
		d = &x
	}
	warnUnused(stderr, opts, rep)
	code := verdict(rep, base, d)
	explainVerdict(stderr, "kmatrix run", code, rep)
	return code
}
