package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/kmatrix/kmatrix/kernels"
)

func init() {
	commands["mirrors"] = command{summary: "print the Debian mirrors kmatrix downloads from; exit 2 when none is configured", run: mirrorsCmd}
}

// mirrorsCmd is `kmatrix mirrors`: the check a CI job runs first, so that
// a runner that is not Debian, with KMATRIX_DEBIAN_MIRROR unset, fails in
// its first seconds with the variable to set, not after setting up.
func mirrorsCmd(_ context.Context, args []string) int {
	return mirrorsMain(args, os.Stdout, os.Stderr)
}

func mirrorsMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kmatrix mirrors", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: kmatrix mirrors\n\nPrints the Debian archive and security mirrors kmatrix downloads kernels from: %s and\n%s when set, else the host's apt sources. Exits 2 when there is none.\n", kernels.EnvMirror, kernels.EnvSecurityMirror)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kmatrix mirrors: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	m, err := kernels.DiscoverMirrors()
	if err != nil {
		fmt.Fprintf(stderr, "kmatrix mirrors: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "archive\t%s\nsecurity\t%s\n", m.Archive, m.Security)
	return exitOK
}

// checkMirrorFor stops a command before it downloads anything when some
// of the kernels it needs are not cached and no Debian mirror is
// configured. Resolving with a lock file needs no network.
func checkMirrorFor(ctx context.Context, cat *kernels.Catalog, names []string, opts kernels.Options) error {
	if _, err := kernels.DiscoverMirrors(); err == nil {
		return nil
	}
	sel, err := cat.Select(names)
	if err != nil {
		return nil // the command itself says what is wrong with the names
	}
	rs, err := kernels.Resolve(ctx, sel, opts)
	if err != nil {
		return err // unresolved kernels need the mirror: err says so
	}
	for _, r := range rs {
		if !kernels.Cached(r, opts) {
			_, err := kernels.DiscoverMirrors()
			return fmt.Errorf("kernel %s is not cached and must be downloaded: %w", r.Name, err)
		}
	}
	return nil
}

// usageExit is the exit code for an error found before anything ran: 2
// for input the user can fix (a catalog, no mirror configured), else 1.
func usageExit(err error) int {
	var ce *kernels.CatalogError
	if errors.Is(err, kernels.ErrNoMirror) || errors.As(err, &ce) {
		return exitUsage
	}
	return exitFailed
}
