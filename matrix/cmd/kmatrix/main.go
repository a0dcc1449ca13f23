// Command kmatrix runs the kernel matrix and its parts from the shell:
//
//	kmatrix kernels [--json]        list the resolved catalog
//	kmatrix fetch [NAME...]         fetch kernels into the cache
//	kmatrix exec --kernel NAME -- CMD [ARG...]
//	                                run a command inside a kernel (also a `go test -exec` adapter)
//	kmatrix run [flags]             run the matrix and write the report
//	kmatrix bisect --check P/C --good K1 --bad K2
//	                                find the first package version where a cell's outcome changes
//	kmatrix version                 print the version reports record
//	kmatrix report merge|diff       join shard reports, compare two reports
//	kmatrix help exit-codes         what each exit code means (exitcodes.go)
//
// Each subcommand lives in its own file and registers itself in commands.
package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"syscall"
)

// command is one subcommand: run gets the arguments after its name and
// returns the process exit code.
type command struct {
	summary string
	run     func(ctx context.Context, args []string) int
}

var commands = map[string]command{}

func main() {
	// The first SIGINT or SIGTERM cancels the context (the run stops and
	// writes what it has); a second one kills, as by default.
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		signal.Stop(sigs)
		cancel(interruptedError{s})
	}()
	code := dispatch(ctx, os.Args[1:])
	os.Exit(signalCode(ctx, code))
}

func dispatch(ctx context.Context, args []string) int {
	return dispatchTo(ctx, args, os.Stdout, os.Stderr)
}

// dispatchTo runs the subcommand args name. Asking for help (-h, --help,
// help) is not an error: the usage goes to stdout and the exit status is 0;
// no command or an unknown one is a usage error (2), with the usage on stderr.
func dispatchTo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout)
		return 0
	case "help":
		if len(args) == 1 {
			usage(stdout)
			return 0
		}
		if args[1] == "exit-codes" {
			fmt.Fprint(stdout, exitCodesHelp)
			return exitOK
		}
		// kmatrix help COMMAND is kmatrix COMMAND -h.
		if cmd, ok := commands[args[1]]; ok {
			return cmd.run(ctx, []string{"-h"})
		}
		fmt.Fprintf(stderr, "kmatrix help: unknown command %q%s\n\n", args[1], didYouMean(args[1]))
		usage(stderr)
		return exitUsage
	case "-version", "--version":
		return versionMain(nil, stdout, stderr)
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "kmatrix: unknown command %q%s\n\n", args[0], didYouMean(args[0]))
		usage(stderr)
		return exitUsage
	}
	return cmd.run(ctx, args[1:])
}

// didYouMean names the command nearest to a misspelt one, if any is near.
func didYouMean(name string) string {
	if near := nearest(name, slices.Sorted(maps.Keys(commands))); near != "" {
		return fmt.Sprintf(": did you mean %q?", near)
	}
	return ""
}

func usage(w io.Writer) {
	fmt.Fprint(w, `kmatrix boots real Linux kernels in QEMU, runs your eBPF programs, kernel
modules and checks on each, and writes a kernel × check report.

usage: kmatrix COMMAND [flags]

commands:
`)
	for _, n := range slices.Sorted(maps.Keys(commands)) {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprint(w, `
examples:
  kmatrix run                                   the built-in payloads on the default kernels
  kmatrix run --bpf probe.o --kernels debian-sid
  kmatrix exec --kernel debian-bullseye -- uname -r
  go test -exec 'kmatrix exec --kernel debian-sid --' ./pkg
  kmatrix kernels --series --arch arm64         the newest arm64 kernel of every upstream series
  kmatrix run --catalog series-arm64            the matrix on them (qemu-system-aarch64)

Run 'kmatrix COMMAND -h' (or 'kmatrix help COMMAND') for a command's flags,
'kmatrix help exit-codes' for what the exit codes mean.
`)
}
