package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// parseFlags parses args into fs for a subcommand. It returns ok when the
// command should go on; otherwise code is the exit status: 0 after -h
// (the usage goes to stdout, as asked for), exitUsage after a bad flag,
// with the error, the nearest known flag for a misspelt one ("--kernel":
// did you mean --kernels?) and where to read more, on stderr.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	usage := fs.Usage
	// The flag package prints the error and the whole usage before it
	// returns: silence it, and say it better below.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = usage
	switch {
	case err == nil:
		fs.SetOutput(stderr)
		return 0, true
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return 0, false
	}
	fs.SetOutput(stderr)
	if name, found := strings.CutPrefix(err.Error(), "flag provided but not defined: -"); found {
		name = strings.TrimLeft(name, "-")
		var known []string
		fs.VisitAll(func(f *flag.Flag) { known = append(known, f.Name) })
		fmt.Fprintf(stderr, "%s: unknown flag --%s", fs.Name(), name)
		if near := nearest(name, known); near != "" {
			fmt.Fprintf(stderr, ": did you mean --%s?", near)
		}
		fmt.Fprintln(stderr)
	} else {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
	}
	fmt.Fprintf(stderr, "run '%s -h' for its flags\n", fs.Name())
	return exitUsage, false
}

// nearest returns the candidate closest to s in edit distance, when it is
// close enough to be what was meant: at most a third of s's length away
// (at least 1), or s is a prefix of it ("--kern" for --kernels).
func nearest(s string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		d := editDistance(s, c)
		if strings.HasPrefix(c, s) && len(s) >= 3 {
			d = min(d, 1)
		}
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD < 0 || bestD > max(1, len(s)/3) {
		return ""
	}
	return best
}

// editDistance is the optimal-string-alignment distance between a and b:
// insertions, deletions, substitutions and swaps of two neighbours ("rnu"
// for run) cost 1 each. Bytes, not runes: flag and command names are ASCII.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
