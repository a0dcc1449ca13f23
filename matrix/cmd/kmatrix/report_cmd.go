package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kmatrix/kmatrix/matrix/report"
)

func init() {
	commands["merge"] = command{summary: "merge shard reports into one report", run: mergeCmd}
	commands["diff"] = command{summary: "compare a report with a baseline; exit 3 on regressions", run: diffCmd}
}

func mergeCmd(_ context.Context, args []string) int {
	fs := flag.NewFlagSet("kmatrix merge", flag.ContinueOnError)
	out := fs.String("out", "report", "output `dir` for the merged report.json, report.md, report.html, junit.xml")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: kmatrix merge [--out DIR] SHARD/report.json...\n\nJoins the reports of sharded runs; a missing shard is named in the merged report.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "kmatrix merge: no reports given: pass the report.json of every shard")
		return 2
	}
	var reps []*report.Report
	for _, p := range fs.Args() {
		r, err := report.Read(p)
		if err != nil {
			fmt.Fprintf(os.Stderr, "kmatrix merge: %v\n", err)
			return 1
		}
		reps = append(reps, r)
	}
	merged, err := report.Merge(reps...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kmatrix merge: %v\n", err)
		return 1
	}
	if err := merged.Write(*out); err != nil {
		fmt.Fprintf(os.Stderr, "kmatrix merge: %v\n", err)
		return 1
	}
	merged.WriteText(os.Stdout, false)
	return 0
}

func diffCmd(_ context.Context, args []string) int {
	fs := flag.NewFlagSet("kmatrix diff", flag.ContinueOnError)
	baseline := fs.String("baseline", "", "baseline report.json `file`; without one, every cell is new and nothing regresses")
	out := fs.String("out", "", "also write the diff as Markdown to this `file` (for an issue or PR comment)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: kmatrix diff [--baseline FILE] [--out FILE.md] CURRENT/report.json\n\nSays what changed since the baseline; exits 3 when a cell regressed. In GitHub Actions it also sets the step output regressions=N.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "kmatrix diff: want exactly one current report.json")
		return 2
	}
	cur, err := report.Read(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(os.Stderr, "kmatrix diff: %v\n", err)
		return 1
	}
	base := &report.Report{Schema: report.Schema}
	if *baseline != "" {
		if _, statErr := os.Stat(*baseline); statErr != nil {
			// The first scheduled run has no previous report: say so, don't fail.
			fmt.Fprintf(os.Stderr, "kmatrix diff: no baseline at %s (first run?): comparing against nothing\n", *baseline)
		} else if base, err = report.Read(*baseline); err != nil {
			fmt.Fprintf(os.Stderr, "kmatrix diff: %v\n", err)
			return 1
		}
	}
	d := report.Diff(base, cur)
	d.WriteText(os.Stdout)
	if *out != "" {
		err := os.MkdirAll(filepath.Dir(*out), 0o755)
		if err == nil {
			err = os.WriteFile(*out, []byte(d.Markdown()), 0o644)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "kmatrix diff: writing %s: %v\n", *out, err)
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
		fmt.Fprintf(os.Stderr, "kmatrix diff: %v\n", d.Err())
		return 3
	}
	return 0
}
