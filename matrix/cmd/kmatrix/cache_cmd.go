package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/vmtest"
)

func init() {
	commands["cache"] = command{summary: "look after the cache: verify it (exit 4 when an entry was damaged), list or prune guest snapshots", run: cacheCmd}
}

// cacheCommands are the subcommands of `kmatrix cache`.
var cacheCommands = map[string]func(args []string, stdout, stderr io.Writer) int{
	"verify":    cacheVerifyMain,
	"snapshots": cacheSnapshotsMain,
	"prune":     cachePruneMain,
}

const cacheUsage = `usage: kmatrix cache verify|snapshots|prune [flags]

  verify     re-hash every cached kernel, headers tree and guest snapshot
  snapshots  list the snapshots of booted guests that runs restore
  prune      remove snapshots not used for --days days or of kernels gone

Run 'kmatrix cache SUBCOMMAND -h' for its flags.`

func cacheCmd(_ context.Context, args []string) int {
	return cacheMain(args, os.Stdout, os.Stderr)
}

func cacheMain(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(stdout, cacheUsage)
		return exitOK
	}
	var sub func([]string, io.Writer, io.Writer) int
	if len(args) > 0 {
		sub = cacheCommands[args[0]]
	}
	if sub == nil {
		var names []string
		for n := range cacheCommands {
			names = append(names, n)
		}
		sort.Strings(names)
		got := "no subcommand"
		if len(args) > 0 {
			got = fmt.Sprintf("unknown subcommand %q", args[0])
		}
		fmt.Fprintf(stderr, "kmatrix cache: %s: want one of %s\n%s\n", got, strings.Join(names, ", "), cacheUsage)
		return exitUsage
	}
	return sub(args[1:], stdout, stderr)
}

const cacheVerifyUsage = `usage: kmatrix cache verify

Re-hashes every file of every cached kernel and headers tree against the
manifest it was unpacked with, and every guest snapshot's device state
against the digest recorded when it was made. A damaged entry is removed,
so the next run or fetch makes it again. Every run already checks the
entries it uses cheaply (every file there, of its size, and the vmlinuz
hashed); this finds the damage that check cannot (a file changed in place).`

func cacheVerifyMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kmatrix cache verify", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprintln(fs.Output(), cacheVerifyUsage) }
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kmatrix cache verify: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	dir, err := kernels.CacheDir()
	if err != nil {
		fmt.Fprintf(stderr, "kmatrix cache verify: %v\n", err)
		return exitInfra
	}
	checked, problems := kernels.VerifyCache(dir)
	snaps, snapProblems, err := vmtest.VerifySnapshots()
	if err != nil {
		snapProblems = append(snapProblems, err)
	}
	problems = append(problems, snapProblems...)
	for _, p := range problems {
		fmt.Fprintf(stderr, "kmatrix cache verify: %v\n", p)
	}
	n := len(checked) + snaps
	fmt.Fprintf(stdout, "%d cache entries in %s: %d sound, %d with problems\n", n, dir, n-len(problems), len(problems))
	if len(problems) > 0 {
		return exitInfra
	}
	return exitOK
}

// cacheSnapshotsMain lists the snapshots of booted guests (vmtest).
func cacheSnapshotsMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kmatrix cache snapshots", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: kmatrix cache snapshots

Lists the snapshots of booted guests that runs restore instead of booting:
key, kernel, accelerator, size on disk, last use, and why a machine is
not snapshotted when it is not.`)
	}
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	all, err := vmtest.Snapshots()
	if err != nil {
		fmt.Fprintf(stderr, "kmatrix cache snapshots: %v\n", err)
		return exitInfra
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tKERNEL\tACCEL\tMIB\tLAST USED\tNOTE")
	var total int64
	for _, s := range all {
		total += s.Bytes()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\t%s\t%s\n", s.Key, s.Kernel, s.Accel, float64(s.Bytes())/(1<<20),
			s.LastUsed.Format(time.DateTime), s.Refused)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "%d snapshots, %.1f MiB\n", len(all), float64(total)/(1<<20))
	return exitOK
}

// cachePruneMain removes the snapshots not used for --days days, those of
// kernels no longer in the cache (or changed), and damaged or refused ones.
func cachePruneMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kmatrix cache prune", flag.ContinueOnError)
	days := fs.Int("days", 30, "remove snapshots not used for this many `days`")
	maxMiB := fs.Int64("max-mib", 0, "then remove the least recently used snapshots until the rest take at most this many `MiB` (0: no budget)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: kmatrix cache prune [--days N] [--max-mib M]

Removes the snapshots of booted guests not used for N days (default 30),
those of kernels no longer in the cache or changed since, and damaged or
refused entries; with --max-mib, then the least recently used until the
rest fit in M MiB. A run that needs a removed snapshot makes it again.
(A new snapshot already replaces those it supersedes: the same machine's
made by another build of kmatrix.)`)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if *days < 0 {
		fmt.Fprintf(stderr, "kmatrix cache prune: --days %d is negative: want 0 or more\n", *days)
		return exitUsage
	}
	if *maxMiB < 0 {
		fmt.Fprintf(stderr, "kmatrix cache prune: --max-mib %d is negative: want 0 (no budget) or more\n", *maxMiB)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kmatrix cache prune: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	removed, err := vmtest.PruneSnapshots(time.Duration(*days)*24*time.Hour, time.Now())
	if err == nil && *maxMiB > 0 {
		var over []*vmtest.SnapshotInfo
		over, err = vmtest.TrimSnapshots(*maxMiB << 20)
		removed = append(removed, over...)
	}
	var freed int64
	for _, s := range removed {
		freed += s.Bytes()
		fmt.Fprintf(stdout, "removed snapshot %s (%s): %s\n", s.Key, s.Kernel, s.Refused)
	}
	if err != nil {
		fmt.Fprintf(stderr, "kmatrix cache prune: %v\n", err)
		return exitInfra
	}
	fmt.Fprintf(stdout, "removed %d snapshots, %.1f MiB\n", len(removed), float64(freed)/(1<<20))
	return exitOK
}
