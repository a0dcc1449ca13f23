package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/kmatrix/kmatrix/matrix"
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
	fs := flag.NewFlagSet("kmatrix run", flag.ContinueOnError)
	var (
		opts              matrix.Options
		kernels, payloads listFlag
		bpfObjs, kmodDirs listFlag
		shard, check      string
	)
	fs.StringVar(&opts.Catalog, "catalog", "", "catalog `file` (default: the built-in catalog)")
	fs.Var(&kernels, "kernels", "kernel `names` to run, comma-separated (default: all in the catalog)")
	fs.Var(&payloads, "payloads", "built-in `payloads` to run: bpf,kmod (default: both, or none when --bpf/--kmod are given)")
	fs.Var(&bpfObjs, "bpf", "your BPF ELF `object`: load and attach every program on every kernel (repeatable)")
	fs.Var(&kmodDirs, "kmod", "your out-of-tree module source `dir`: build, load and unload it on every kernel (repeatable)")
	fs.StringVar(&check, "check", "", "`command` to run in each guest after your payloads are loaded (space-separated argv, no shell)")
	fs.StringVar(&opts.OutDir, "out", "report", "output `dir` for report.json, report.md, report.html, junit.xml")
	fs.IntVar(&opts.Parallel, "parallel", 0, "kernels to run at once (default: one per CPU)")
	fs.StringVar(&shard, "shard", "", "run shard `i/n` of the selected kernels")
	fs.BoolVar(&opts.Float, "float", false, "resolve the newest kernels in the archive instead of catalog.lock")
	fs.BoolVar(&opts.AllowExpired, "allow-expired", false, "accept archive indexes past their Valid-Until (signatures are still checked)")
	fs.StringVar(&opts.Baseline, "baseline", "", "previous report.json `file` to diff against; exit 3 on regressions")
	fs.BoolVar(&opts.MeasureFloor, "floor", false, "also time a bare boot of each kernel and report the checks' cost against it")
	fs.DurationVar(&opts.Timeout, "timeout", 10*time.Minute, "deadline for each kernel's VM")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "kmatrix run: unexpected argument %q (flags only; see kmatrix run -h)\n", fs.Arg(0))
		return 2
	}
	var err error
	if opts.Shard, err = matrix.ParseShard(shard); err != nil {
		fmt.Fprintf(os.Stderr, "kmatrix run: --shard: %v\n", err)
		return 2
	}
	opts.Kernels, opts.BPFObjects, opts.KmodDirs = kernels, bpfObjs, kmodDirs
	if len(payloads) > 0 {
		opts.Payloads = payloads
	}
	if check != "" {
		opts.CheckCmd = strings.Fields(check)
	}
	opts.Progress = os.Stderr

	rep, err := matrix.Run(ctx, opts)
	if rep != nil {
		rep.WriteText(os.Stdout, term.IsTerminal(int(os.Stdout.Fd())))
		if opts.OutDir != "" {
			fmt.Printf("report: %s/report.html (also report.json, report.md, junit.xml)\n", opts.OutDir)
		}
	}
	switch {
	case errors.Is(err, matrix.ErrRegression):
		fmt.Fprintf(os.Stderr, "kmatrix run: %v\n", err)
		return 3
	case err != nil:
		fmt.Fprintf(os.Stderr, "kmatrix run: %v\n", err)
		return 1
	case rep != nil && matrix.Failed(rep):
		return 1
	}
	return 0
}
