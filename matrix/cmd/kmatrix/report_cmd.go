package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kmatrix/kmatrix/matrix/expect"
	"github.com/kmatrix/kmatrix/matrix/report"
)

func init() {
	commands["report"] = command{summary: "merge shard reports (report merge) or compare two (report diff; exit 3 on regressions)", run: reportCmd}
}

const reportUsage = `usage: kmatrix report merge [--out DIR] [--expect FILE] SHARD/report.json...
       kmatrix report diff [--out FILE.md] [--expect FILE] OLD/report.json NEW/report.json

Run 'kmatrix report merge -h' or 'kmatrix report diff -h' for their flags,
'kmatrix help exit-codes' for what the exit codes mean.`

// reportCmd is `kmatrix report SUBCOMMAND`: what is done with reports
// after a run.
func reportCmd(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, reportUsage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(os.Stderr, reportUsage)
		return exitOK
	case "merge":
		return mergeCmd(ctx, args[1:])
	case "diff":
		return diffCmd(ctx, args[1:])
	}
	fmt.Fprintf(os.Stderr, "kmatrix report: unknown subcommand %q: want merge or diff\n%s\n", args[0], reportUsage)
	return exitUsage
}

func mergeCmd(_ context.Context, args []string) int {
	fs := flag.NewFlagSet("kmatrix report merge", flag.ContinueOnError)
	out := fs.String("out", "report", "output `dir` for the merged report.json, report.md, report.html, junit.xml")
	expectFile := fs.String("expect", "", "expectations `file` to apply to the merged report (replacing the shards' marks)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: kmatrix report merge [--out DIR] [--expect FILE] SHARD/report.json...\n\nJoins the reports of sharded runs (kmatrix run --shard i/n). A missing shard is named in the\nmerged report, which is still written, and the exit code is 4: the matrix is incomplete.\nFailing cells do not change the exit code: report diff (or the report itself) judges them.")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, os.Stdout, os.Stderr); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "kmatrix report merge: no reports given: pass the report.json of every shard")
		return exitUsage
	}
	set, err := loadExpect(*expectFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kmatrix report merge: %v\n", err)
		return exitUsage
	}
	var reps []*report.Report
	for _, p := range fs.Args() {
		r, err := report.Read(p)
		if err != nil {
			fmt.Fprintf(os.Stderr, "kmatrix report merge: %v\n", err)
			return exitUsage
		}
		reps = append(reps, r)
	}
	merged, err := report.Merge(reps...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kmatrix report merge: %v\n", err)
		return exitUsage
	}
	if set != nil {
		set.Apply(merged)
	}
	if err := merged.Write(*out); err != nil {
		fmt.Fprintf(os.Stderr, "kmatrix report merge: %v\n", err)
		return exitFailed
	}
	merged.WriteText(os.Stdout, false)
	if len(merged.MissingShards) > 0 {
		fmt.Fprintf(os.Stderr, "kmatrix report merge: exit %d: incomplete matrix: shards %v missing (their job produced no report); the merge in %s lists them\n",
			exitInfra, merged.MissingShards, *out)
		return exitInfra
	}
	return exitOK
}

// loadExpect loads an expectations file; none when path is empty.
func loadExpect(path string) (expect.Set, error) {
	if path == "" {
		return nil, nil
	}
	return expect.Load(path)
}

func diffCmd(_ context.Context, args []string) int {
	fs := flag.NewFlagSet("kmatrix report diff", flag.ContinueOnError)
	baseline := fs.String("baseline", "", "baseline report.json `file`; without one, every cell is new and nothing regresses")
	out := fs.String("out", "", "also write the diff as Markdown to this `file` (for an issue or PR comment)")
	allowMissing := fs.Bool("allow-missing-baseline", false, "treat a missing OLD report as a first run (every cell new) instead of an error")
	expectFile := fs.String("expect", "", "expectations `file` to apply to both reports before comparing (replacing their marks)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: kmatrix report diff [--out FILE.md] OLD/report.json NEW/report.json\n       kmatrix report diff [--out FILE.md] --baseline OLD/report.json NEW/report.json\n\nSays what changed from OLD to NEW; exits 3 when a cell regressed, 1 when a cell fails that did\nnot fail the same way in OLD (or passes against an expectation), 4 when only infra-errors fail\n(kmatrix help exit-codes). A missing or unreadable OLD is\nan error (exit 2), so a mistyped path never passes the gate; with --allow-missing-baseline a\nmissing OLD is a first run: every cell is new. In GitHub Actions it also sets the step output regressions=N.")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, os.Stdout, os.Stderr); !ok {
		return code
	}
	set, err := loadExpect(*expectFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kmatrix report diff: %v\n", err)
		return exitUsage
	}
	current := fs.Arg(0)
	switch {
	case fs.NArg() == 2 && *baseline == "":
		*baseline, current = fs.Arg(0), fs.Arg(1)
	case fs.NArg() != 1:
		fmt.Fprintf(os.Stderr, "kmatrix report diff: got %d reports: want OLD/report.json NEW/report.json (or --baseline OLD NEW)\n", fs.NArg())
		return exitUsage
	}
	cur, err := report.Read(current)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kmatrix report diff: %v\n", err)
		return exitUsage
	}
	base := &report.Report{Schema: report.Schema}
	first := true // no baseline: every cell is judged on its own
	if *baseline != "" {
		_, statErr := os.Stat(*baseline)
		switch {
		case errors.Is(statErr, os.ErrNotExist) && *allowMissing:
			// The first scheduled run has no previous report; the caller said so.
			fmt.Fprintf(os.Stderr, "kmatrix report diff: no baseline at %s (--allow-missing-baseline): comparing against nothing\n", *baseline)
		case statErr != nil:
			// A regression gate must not pass because its baseline path is wrong.
			fmt.Fprintf(os.Stderr, "kmatrix report diff: baseline %s: %v; check the path, or pass --allow-missing-baseline on a first run\n", *baseline, statErr)
			return 2
		default:
			if base, err = report.Read(*baseline); err != nil {
				fmt.Fprintf(os.Stderr, "kmatrix report diff: baseline unreadable: %v; it must be a kmatrix report.json\n", err)
				return 2
			}
			first = false
		}
	}
	if set != nil {
		set.Apply(base)
		set.Apply(cur)
	}
	d := report.Diff(base, cur)
	d.WriteText(os.Stdout)
	if *out != "" {
		err := os.MkdirAll(filepath.Dir(*out), 0o755)
		if err == nil {
			err = os.WriteFile(*out, []byte(d.Markdown()), 0o644)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "kmatrix report diff: writing %s: %v\n", *out, err)
			return 1
		}
	}
	if gh := os.Getenv("GITHUB_OUTPUT"); gh != "" {
		if f, err := os.OpenFile(gh, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644); err == nil {
			fmt.Fprintf(f, "regressions=%d\n", len(d.Regressions))
			f.Close()
		}
	}
	if d.Regressed() {
		fmt.Fprintf(os.Stderr, "kmatrix report diff: %v\n", d.Err())
	}
	var b *report.Report
	if !first {
		b = base
	}
	code := verdict(cur, b, &d)
	explainVerdict(os.Stderr, "kmatrix report diff", code, cur)
	return code
}
