// Command kmatrix runs the kernel matrix and its parts from the shell:
//
//	kmatrix kernels [--json]        list the resolved catalog
//	kmatrix fetch [NAME...]         fetch kernels into the cache
//	kmatrix exec --kernel NAME -- CMD [ARG...]
//	                                run a command inside a kernel (also a `go test -exec` adapter)
//	kmatrix run [flags]             run the matrix and write the report
//
// Each subcommand lives in its own file and registers itself in commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sort"
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
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		return 2
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "kmatrix: unknown command %q\n\n", args[0])
		usage()
		return 2
	}
	return cmd.run(ctx, args[1:])
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kmatrix COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(os.Stderr, "\nRun 'kmatrix COMMAND -h' for a command's flags.")
}
