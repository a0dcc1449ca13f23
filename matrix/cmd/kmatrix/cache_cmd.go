package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/kmatrix/kmatrix/kernels"
)

func init() {
	commands["cache"] = command{summary: "check the kernel cache (cache verify: re-hash every file; exit 4 when an entry was damaged)", run: cacheCmd}
}

const cacheUsage = `usage: kmatrix cache verify

Re-hashes every file of every cached kernel and headers tree against the
manifest it was unpacked with. A damaged entry is removed, so the next run
or fetch downloads it again. Every run already checks the entries it uses
cheaply (every file there, of its size, and the vmlinuz hashed); this
finds the damage that check cannot (a file changed in place).`

// cacheCmd is `kmatrix cache verify`.
func cacheCmd(_ context.Context, args []string) int {
	fs := flag.NewFlagSet("kmatrix cache", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprintln(fs.Output(), cacheUsage) }
	if code, ok := parseFlags(fs, args, os.Stdout, os.Stderr); !ok {
		return code
	}
	if fs.NArg() != 1 || fs.Arg(0) != "verify" {
		fmt.Fprintf(os.Stderr, "kmatrix cache: want the subcommand verify\n%s\n", cacheUsage)
		return exitUsage
	}
	dir, err := kernels.CacheDir()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kmatrix cache verify: %v\n", err)
		return exitInfra
	}
	checked, problems := kernels.VerifyCache(dir)
	for _, p := range problems {
		fmt.Fprintf(os.Stderr, "kmatrix cache verify: %v\n", p)
	}
	fmt.Printf("%d cache entries in %s: %d sound, %d with problems\n", len(checked), dir, len(checked)-len(problems), len(problems))
	if len(problems) > 0 {
		return exitInfra
	}
	return exitOK
}
