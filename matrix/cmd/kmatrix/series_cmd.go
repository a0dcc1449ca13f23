package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/kmatrix/kmatrix/kernels"
)

// seriesFlags are the flags of `kmatrix kernels --series` and --outdated.
type seriesFlags struct {
	series, outdated    bool
	suites, write, arch string
}

func (s *seriesFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&s.series, "series", false, "list the newest signed kernel of every upstream series in the suites (see --suites)")
	fs.StringVar(&s.suites, "suites", strings.Join(kernels.SeriesSuites, ","), "with --series: the suites to search, comma-separated")
	fs.StringVar(&s.write, "write", "", "with --series: write that list as a catalog `file` (e.g. kernels/series.yaml) and pin it in its lock")
	fs.BoolVar(&s.outdated, "outdated", false, "list the catalog kernels for which the archive holds a newer kernel of the same series")
	fs.StringVar(&s.arch, "arch", "", "the kernels' `arch`, amd64 or arm64: with --series, the signed cloud-ARCH kernels (default amd64); "+
		"otherwise the catalog's kernels of that arch, as kmatrix run --arch (arm64 with no --catalog: the built-in arm64 catalog)")
}

// checkArch says what is wrong with an --arch value: kmatrix boots the
// kernels.Arches only.
func checkArch(arch string) error {
	if arch != "" && !slices.Contains(kernels.Arches, arch) {
		return fmt.Errorf("--arch %s: kmatrix boots %s kernels: want one of them", arch, strings.Join(kernels.Arches, " and "))
	}
	return nil
}

func seriesCmd(ctx context.Context, sf seriesFlags, kf kernelFlags, asJSON bool) int {
	opts := kernels.Options{AllowExpired: kf.expired, Progress: os.Stderr}
	flavour := kernels.FlavourOf(sf.arch)
	all, err := kernels.List(ctx, strings.Split(sf.suites, ","), flavour, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kmatrix kernels --series: %v\n", err)
		if errors.Is(err, kernels.ErrUnknownFlavour) {
			fmt.Fprintf(os.Stderr, "kmatrix kernels --series: give --suites without the suites that have no %s kernels\n", flavour)
		}
		if len(all) == 0 {
			return 1
		}
	}
	newest := kernels.NewestPerSeries(all)
	if len(newest) == 0 {
		return 1 // nothing to list or write; err says why
	}
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
	if werr := kernels.WriteFileAtomic(sf.write, []byte(kernels.RenderSeriesCatalog(newest, sf.arch, sf.write)), 0o644); werr != nil {
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
