package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/kmatrix/kmatrix/matrix"
)

func init() {
	commands["version"] = command{summary: "print kmatrix's version, VCS revision and Go version", run: versionCmd}
}

func versionCmd(ctx context.Context, args []string) int {
	return versionMain(args, os.Stdout, os.Stderr)
}

// versionMain prints the build information that reports record (see
// matrix.BuildInfo): the one-line version first, then its parts.
func versionMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kmatrix version", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: kmatrix version

Prints the kmatrix version (the module version, and the VCS revision it
was built from when known), as every report records it in host.kmatrix.`)
	}
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kmatrix version: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	b := matrix.Build()
	fmt.Fprintf(stdout, "kmatrix %s\n", b)
	if b.Module != "" {
		fmt.Fprintf(stdout, "module:   %s %s\n", b.Module, b.Version)
	}
	if b.Revision != "" {
		mod := ""
		if b.Modified {
			mod = " (modified: uncommitted changes)"
		}
		fmt.Fprintf(stdout, "revision: %s%s\n", b.Revision, mod)
	}
	if b.Time != "" {
		fmt.Fprintf(stdout, "commit:   %s\n", b.Time)
	}
	fmt.Fprintf(stdout, "go:       %s %s/%s\n", b.Go, runtime.GOOS, runtime.GOARCH)
	return 0
}
