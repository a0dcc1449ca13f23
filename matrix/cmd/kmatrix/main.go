// Command kmatrix runs the kernel matrix and its parts from the shell:
//
//	kmatrix kernels [--json]        list the resolved catalog
//	kmatrix fetch [NAME...]         fetch kernels into the cache
//	kmatrix exec --kernel NAME -- CMD [ARG...]
//	                                run a command inside a kernel (also a `go test -exec` adapter)
//	kmatrix run [flags]             run the matrix and write the report
//	kmatrix version                 print the version reports record
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(dispatch(ctx, os.Args[1:]))
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

Run 'kmatrix COMMAND -h' (or 'kmatrix help COMMAND') for a command's flags.
`)
}
