package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kmatrix/kmatrix/matrix"
	"github.com/kmatrix/kmatrix/matrix/project"
)

func init() {
	commands["init"] = command{summary: "write a commented kmatrix.yaml project file here", run: initProject}
}

func initProject(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("kmatrix init", flag.ContinueOnError)
	force := fs.Bool("force", false, "overwrite an existing kmatrix.yaml")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: kmatrix init [--force] [DIR]\n\nWrites a commented %s in DIR (default: here) for `kmatrix run` to run.\n\nflags:\n", project.FileName)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, os.Stdout, os.Stderr); !ok {
		return code
	}
	dir := "."
	if fs.NArg() > 1 {
		fmt.Fprintln(os.Stderr, "kmatrix init: at most one directory")
		return exitUsage
	} else if fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	path := filepath.Join(dir, project.FileName)
	if _, err := os.Stat(path); err == nil && !*force {
		fmt.Fprintf(os.Stderr, "kmatrix init: %s exists; edit it, or pass --force to overwrite it\n", path)
		return exitUsage
	}
	if err := os.WriteFile(path, project.Starter, 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "kmatrix init: %v\n", err)
		return exitUsage
	}
	fmt.Printf("wrote %s: name your payloads under payloads:, then run `kmatrix run`\n", path)
	return exitOK
}

// withProject lays the flags given on the command line over the project
// file's options: the file says what the project tests, a flag changes it
// for one run. The file is path, else kmatrix.yaml found from the working
// directory up; "none" uses none.
func withProject(flags matrix.Options, path string, set *flag.FlagSet, stderr io.Writer) (matrix.Options, error) {
	if path == "none" {
		return flags, nil
	}
	if path == "" {
		if path = project.Find("."); path == "" {
			return flags, nil
		}
	} else if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return flags, fmt.Errorf("--project %s: no such file; `kmatrix init` writes one", path)
	}
	opts, err := project.Load(path)
	if err != nil {
		return flags, err
	}
	fmt.Fprintf(stderr, "kmatrix run: project file %s\n", path)
	given := map[string]bool{}
	set.Visit(func(f *flag.Flag) { given[f.Name] = true })
	take := func(name string, apply func()) {
		if given[name] {
			apply()
		}
	}
	take("catalog", func() { opts.Catalog = flags.Catalog })
	take("arch", func() { opts.Arch = flags.Arch })
	take("kernels", func() { opts.Kernels = flags.Kernels })
	take("payloads", func() { opts.Payloads = flags.Payloads })
	take("bpf", func() { opts.BPFObjects = flags.BPFObjects })
	take("kmod", func() { opts.KmodDirs = flags.KmodDirs })
	take("gotest", func() { opts.GoTests = flags.GoTests })
	take("gotest-args", func() { opts.GoTestArgs = flags.GoTestArgs })
	take("check", func() { opts.CheckCmd = flags.CheckCmd })
	take("attach", func() { opts.Attach = flags.Attach })
	take("file", func() { opts.Files = flags.Files })
	take("no-fire", func() { opts.NoFire = flags.NoFire })
	take("timeout", func() { opts.Timeout = flags.Timeout })
	take("command-timeout", func() { opts.CommandTimeout = flags.CommandTimeout })
	take("parallel", func() { opts.Parallel = flags.Parallel })
	take("expect", func() { opts.Expect = flags.Expect })
	if opts.OutDir == "" || given["out"] {
		opts.OutDir = flags.OutDir
	}
	if opts.Timeout == 0 {
		opts.Timeout = flags.Timeout
	}
	// What only flags say.
	opts.Shard, opts.Float, opts.AllowExpired, opts.Baseline = flags.Shard, flags.Float, flags.AllowExpired, flags.Baseline
	opts.MeasureFloor, opts.Progress, opts.Cold = flags.MeasureFloor, flags.Progress, flags.Cold
	return opts, nil
}
