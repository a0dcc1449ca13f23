package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/matrix"
)

func init() {
	commands["kernels"] = command{summary: "list the resolved kernel catalog", run: kernelsCmd}
	commands["fetch"] = command{summary: "fetch kernels (and headers) into the cache", run: fetchCmd}
}

// kernelFlags are the flags kernels and fetch share.
type kernelFlags struct {
	catalog, lock  string
	float, expired bool
}

func (k *kernelFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.catalog, "catalog", "", "catalog `file`, or a built-in one by name: default, series, arm64, series-arm64 (default: the built-in default catalog and its lock)")
	fs.StringVar(&k.lock, "lock", "", "lock `file` (default: the catalog's, FILE.lock next to it)")
	fs.BoolVar(&k.float, "float", false, "resolve the newest kernels in the archive, report what changed, rewrite the lock")
	fs.BoolVar(&k.expired, "allow-expired", false, "accept archive indexes past their Valid-Until (signatures are still checked)")
}

func (k *kernelFlags) load() (*kernels.Catalog, kernels.Options, error) {
	opts := kernels.Options{LockFile: k.lock, Float: k.float, AllowExpired: k.expired, Progress: os.Stderr}
	if k.catalog == "" {
		cat, err := kernels.DefaultCatalog()
		return cat, opts, err
	}
	if _, err := os.Stat(k.catalog); err != nil {
		if cat, ok, err := kernels.Shipped(k.catalog); ok {
			return cat, opts, err
		}
	}
	cat, err := kernels.LoadCatalog(k.catalog)
	return cat, opts, err
}

// kernelRow is one line of `kmatrix kernels` (and one object of --json).
type kernelRow struct {
	Name           string `json:"name"`
	Arch           string `json:"arch,omitempty"`
	Release        string `json:"release,omitempty"`
	Version        string `json:"version,omitempty"`
	Package        string `json:"package,omitempty"`
	PackageVersion string `json:"package_version,omitempty"`
	Suite          string `json:"suite,omitempty"`
	SHA256         string `json:"sha256,omitempty"`
	Compiler       string `json:"compiler,omitempty"`
	CompilerMajor  int    `json:"compiler_major,omitempty"`
	BTF            *bool  `json:"btf"`
	Cached         bool   `json:"cached"`
	Local          string `json:"local,omitempty"`
	Change         string `json:"change,omitempty"`
	// HeadersMissing says why the archive has no headers for it (module payloads skip).
	HeadersMissing string `json:"headers_missing,omitempty"`
}

func kernelsCmd(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("kmatrix kernels", flag.ContinueOnError)
	var kf kernelFlags
	kf.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	names := fs.Bool("names", false, "print only the names, as one JSON list (for a CI job matrix: fromJSON)")
	var sf seriesFlags
	sf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: kmatrix kernels [--json|--names] [--catalog FILE] [--arch ARCH] [--float] [NAME...]
       kmatrix kernels --series [--arch ARCH] [--suites LIST] [--write FILE] [--json]
       kmatrix kernels --outdated [--catalog FILE] [--json]

Lists every kernel of the catalog as resolved (name, release, package version, compiler, BTF, cached);
--series lists the newest signed kernel of every upstream series in the suites instead
(--arch arm64: the cloud-arm64 ones; --write kernels/series-arm64.yaml writes them as a catalog, arch: arm64);
--outdated lists the catalog kernels for which the archive holds a newer kernel of the same series.`)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, os.Stdout, os.Stderr); !ok {
		return code
	}
	if err := checkArch(sf.arch); err != nil {
		fmt.Fprintf(os.Stderr, "kmatrix kernels: %v\n", err)
		return exitUsage
	}
	if sf.series {
		return seriesCmd(ctx, sf, kf, *asJSON)
	}
	cat, opts, err := kf.load()
	if err == nil && sf.arch != "" {
		cat, err = matrix.LoadCatalog(kf.catalog, sf.arch)
	}
	if errors.Is(err, matrix.ErrUsage) {
		fmt.Fprintf(os.Stderr, "kmatrix kernels: %v\n", err)
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kmatrix kernels: %v\n", err)
		return usageExit(err)
	}
	sel, err := cat.Select(fs.Args())
	if err != nil {
		fmt.Fprintf(os.Stderr, "kmatrix kernels: %v\n", err)
		return 2
	}
	rs, rerr := kernels.Resolve(ctx, sel, opts)
	if sf.outdated {
		return outdatedCmd(ctx, rs, rerr, opts, *asJSON)
	}
	var rows []kernelRow
	for _, r := range rs {
		row := kernelRow{Name: r.Name, Release: r.Release, PackageVersion: r.Version, Suite: r.Image().Pocket,
			Package: r.Image().Name, SHA256: r.Image().SHA256, Compiler: r.Compiler, Local: r.Local, Change: r.Change, HeadersMissing: r.HeadersMissing}
		if r.Local == "" {
			row.Arch = r.GetArch()
		}
		if v, err := kernels.ParseVersion(r.Release); err == nil {
			row.Version = v.String()
		}
		if c, err := kernels.ParseCompiler(") " + trimName(r.Compiler)); err == nil {
			row.CompilerMajor = c.Major
		}
		// Facts only a fetched kernel has (its own config, its vmlinuz) win over the index's.
		if row.Cached = kernels.Cached(r, opts); row.Cached {
			if k, err := kernels.Fetch(ctx, r, opts); err == nil {
				row.Arch, row.Release, row.Version, row.Compiler, row.CompilerMajor = k.Arch, k.Release, k.Version.String(), k.Compiler.String(), k.Compiler.Major
				row.Package, row.PackageVersion, row.SHA256, row.Suite = k.Package, k.PackageVersion, k.SHA256, k.Suite
				btf := k.BTF
				row.BTF = &btf
			}
		}
		rows = append(rows, row)
	}
	if *names {
		list := []string{}
		for _, r := range rows {
			list = append(list, r.Name)
		}
		b, _ := json.Marshal(list)
		fmt.Println(string(b))
	} else if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rows)
	} else {
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tRELEASE\tPACKAGE VERSION\tSUITE\tCOMPILER\tBTF\tHEADERS\tCACHED")
		for _, r := range rows {
			btf := "?"
			if r.BTF != nil {
				btf = yesNo(*r.BTF)
			}
			if r.Local != "" {
				fmt.Fprintf(tw, "%s\t(local %s)\t\t\t\t\t\t\n", r.Name, r.Local)
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Release, r.PackageVersion, r.Suite, r.Compiler, btf, yesNo(r.HeadersMissing == ""), yesNo(r.Cached))
		}
		tw.Flush()
	}
	if rerr != nil {
		fmt.Fprintf(os.Stderr, "kmatrix kernels: %v\n", rerr)
		return usageExit(rerr)
	}
	return 0
}

// trimName turns "gcc-12" into "12.0" so ParseCompiler reads the major.
func trimName(c string) string {
	for i := len(c) - 1; i >= 0; i-- {
		if c[i] == '-' {
			return c[i+1:] + ".0"
		}
	}
	return c
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func fetchCmd(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("kmatrix fetch", flag.ContinueOnError)
	var kf kernelFlags
	kf.register(fs)
	noHeaders := fs.Bool("no-headers", false, "fetch only what boots (vmlinuz, config, BTF), not the headers tree")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: kmatrix fetch [flags] [NAME...]\n\nFetches the named kernels (default: all of the catalog) into the cache and prints where they are.")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, os.Stdout, os.Stderr); !ok {
		return code
	}
	cat, opts, err := kf.load()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kmatrix fetch: %v\n", err)
		return usageExit(err)
	}
	opts.Headers = !*noHeaders
	if _, err := cat.Select(fs.Args()); err != nil {
		fmt.Fprintf(os.Stderr, "kmatrix fetch: %v\n", err)
		return exitUsage
	}
	if err := checkMirrorFor(ctx, cat, fs.Args(), opts); err != nil {
		fmt.Fprintf(os.Stderr, "kmatrix fetch: %v\n", err)
		return usageExit(err)
	}
	ks, err := kernels.Get(ctx, cat, fs.Args(), opts)
	for _, k := range ks {
		fmt.Printf("%s\t%s\t%s\n", k.Name, k.Release, k.Vmlinuz)
		if k.Headers != "" {
			fmt.Printf("%s\theaders\t%s\n", k.Name, k.Headers)
		} else if k.HeadersMissing != "" && opts.Headers {
			fmt.Printf("%s\theaders\tnone: %s\n", k.Name, k.HeadersMissing)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kmatrix fetch: %v\n", err)
		return 1
	}
	return 0
}
