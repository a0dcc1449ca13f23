package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/kmatrix/kmatrix/kernels"
)

// seriesFlags are the flags of `kmatrix kernels --series` and --outdated.
type seriesFlags struct {
	series, outdated bool
	suites, write    string
}

func (s *seriesFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&s.series, "series", false, "list the newest signed kernel of every upstream series in the suites (see --suites)")
	fs.StringVar(&s.suites, "suites", strings.Join(kernels.SeriesSuites, ","), "with --series: the suites to search, comma-separated")
	fs.StringVar(&s.write, "write", "", "with --series: write that list as a catalog `file` (e.g. kernels/series.yaml) and pin it in its lock")
	fs.BoolVar(&s.outdated, "outdated", false, "list the catalog kernels for which the archive holds a newer kernel of the same series")
}

func seriesCmd(ctx context.Context, sf seriesFlags, kf kernelFlags, asJSON bool) int {
	opts := kernels.Options{AllowExpired: kf.expired, Progress: os.Stderr}
	all, err := kernels.List(ctx, strings.Split(sf.suites, ","), "", opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kmatrix kernels --series: %v\n", err)
		if len(all) == 0 {
			return 1
		}
	}
	newest := kernels.NewestPerSeries(all)
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(newest)
	} else {
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SERIES\tSUITE\tPOCKET\tPACKAGE\tVERSION\tHEADERS")
		for _, a := range newest {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Series, a.Suite, a.Pocket, a.Package, a.Version, yesNo(a.Headers))
		}
		tw.Flush()
	}
	if sf.write == "" {
		if err != nil {
			return 1
		}
		return 0
	}
	if werr := kernels.WriteFileAtomic(sf.write, []byte(kernels.RenderSeriesCatalog(newest)), 0o644); werr != nil {
		fmt.Fprintf(os.Stderr, "kmatrix kernels --series: %v\n", werr)
		return 1
	}
	cat, lerr := kernels.LoadCatalog(sf.write)
	if lerr == nil {
		opts.Float = true
		_, lerr = kernels.Resolve(ctx, cat, opts)
	}
	if lerr != nil {
		fmt.Fprintf(os.Stderr, "kmatrix kernels --series: %s: %v\n", sf.write, lerr)
		return 1
	}
	if err != nil {
		return 1
	}
	return 0
}

func outdatedCmd(ctx context.Context, rs []kernels.Resolved, rerr error, opts kernels.Options, asJSON bool) int {
	old, err := kernels.FindOutdated(ctx, rs, opts)
	if asJSON {
		if old == nil {
			old = []kernels.Outdated{}
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(old)
	} else {
		for _, o := range old {
			fmt.Println(o)
		}
		if len(old) == 0 && err == nil && rerr == nil {
			fmt.Fprintln(os.Stderr, "kmatrix kernels: every kernel is the newest of its series")
		}
	}
	for _, e := range []error{rerr, err} {
		if e != nil {
			fmt.Fprintf(os.Stderr, "kmatrix kernels --outdated: %v\n", e)
		}
	}
	if rerr != nil || err != nil {
		return 1
	}
	return 0
}
