package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/kmatrix/kmatrix/matrix/report"
)

// rangeCheck is one numeric or duration flag's range: ok is whether its
// parsed value is in range, want what it must be.
type rangeCheck struct {
	flag string
	ok   bool
	want string
}

// checkRanges returns an error naming the first flag out of range, its
// value and what it wants.
func checkRanges(fs *flag.FlagSet, checks ...rangeCheck) error {
	for _, c := range checks {
		if !c.ok {
			return fmt.Errorf("--%s %s: %s", c.flag, fs.Lookup(c.flag).Value, c.want)
		}
	}
	return nil
}

// isSet reports whether the flag was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// readBaseline reads a baseline report. A missing file is an error, so a
// mistyped path cannot turn a regression gate into one that always
// passes, unless allowMissing (the first run of a scheduled job): then it
// says so and returns nil.
func readBaseline(path string, allowMissing bool) (*report.Report, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if allowMissing {
			fmt.Fprintf(os.Stderr, "kmatrix: no baseline at %s (allowed by --allow-missing-baseline): comparing against nothing\n", path)
			return nil, nil
		}
		return nil, fmt.Errorf("baseline %s: no such file; pass --allow-missing-baseline when a first run has no baseline yet", path)
	}
	return report.Read(path)
}
