package kernels

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/go-multierror"
)

// SeriesSuites are the suites `kmatrix kernels --series` searches by
// default, oldest first: each stable release, its backports, then sid and
// experimental (buster and the older backports suites are gone from the
// mirrors).
var SeriesSuites = []string{"bullseye", "bookworm", "bookworm-backports", "trixie", "trixie-backports", "sid", "experimental"}

//go:embed series.yaml
var seriesCatalog []byte

//go:embed series.lock
var seriesLock []byte

// DefaultSeriesCatalog is the one-kernel-per-upstream-series catalog shipped
// with kmatrix (kernels/series.yaml), pinned by the embedded
// kernels/series.lock.
func DefaultSeriesCatalog() (*Catalog, error) {
	c, err := ParseCatalog("kernels/series.yaml", seriesCatalog)
	if err != nil {
		return nil, err
	}
	c.Path, c.origin = "", "kernels/series.yaml"
	c.lock = seriesLock
	return c, nil
}

// Available is one signed kernel image a suite's indexes list.
type Available struct {
	// Suite is the suite searched ("trixie-backports"); Pocket the one
	// that lists the image ("bookworm-security").
	Suite  string `json:"suite"`
	Pocket string `json:"pocket"`
	// Arch is the image's Debian architecture ("arm64").
	Arch string `json:"arch"`
	// Source is the image's source package ("linux-signed-amd64").
	Source  string `json:"source"`
	Package string `json:"package"`
	// Version is the package version ("6.16.3-1~bpo13+1"); Series its
	// upstream series ("6.16").
	Version string `json:"version"`
	Series  string `json:"series"`
	// Headers says whether the index lists the image's linux-headers-<abi>
	// at the same version (see Resolved.HeadersMissing).
	Headers bool `json:"headers"`
}

// List returns every signed image of flavour (default cloud-amd64) that
// the suites and their -security and -updates pockets list, in Debian
// version order (oldest first; equal versions in suite order). A suite
// the mirror does not have, or one without a binary index of the
// flavour's arch, or one listing no signed image of the flavour (arm64 in
// a suite that has no arm64 kernels), is an error naming it; the others
// are still listed.
func List(ctx context.Context, suites []string, flavour string, opts Options) ([]Available, error) {
	if flavour == "" {
		flavour = DefaultFlavour
	}
	s, err := newSession(opts, true)
	if err != nil {
		return nil, err
	}
	per := make([][]Available, len(suites))
	var errs *multierror.Error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, suite := range suites {
		wg.Go(func() {
			u, err := s.universe(ctx, suite, ArchOfFlavour(flavour))
			if err != nil {
				mu.Lock()
				errs = multierror.Append(errs, fmt.Errorf("suite %s: %w", suite, err))
				mu.Unlock()
				return
			}
			arch := ArchOfFlavour(flavour)
			seen := map[string]bool{}
			for _, p := range u.pkgs {
				m := imageRE.FindStringSubmatch(p.Name)
				if m == nil || m[2] != flavour || !strings.HasPrefix(p.Source, "linux-signed-") || seen[p.Name+" "+p.Version] {
					continue
				}
				seen[p.Name+" "+p.Version] = true
				per[i] = append(per[i], Available{Suite: suite, Pocket: p.Pocket, Arch: arch, Source: p.Source, Package: p.Name,
					Version: p.Version, Series: seriesOf(p.Version), Headers: u.find("linux-headers-"+m[1]+"-"+flavour, p.Version) != nil})
			}
			if len(per[i]) == 0 {
				mu.Lock()
				errs = multierror.Append(errs, fmt.Errorf("%w: suite %s (%s) lists no signed linux-image-<abi>-%s: no %s kernels of that flavour there",
					ErrUnknownFlavour, suite, strings.Join(u.read, ", "), flavour, arch))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	var out []Available
	for _, a := range per {
		out = append(out, a...)
	}
	slices.SortStableFunc(out, func(a, b Available) int { return debCompare(a.Version, b.Version) })
	return out, errs.ErrorOrNil()
}

// NewestPerSeries keeps the newest image of each upstream series, in
// series order. On equal versions the suite listed first in List's input
// wins.
func NewestPerSeries(all []Available) []Available {
	best := map[string]Available{}
	var order []string
	for _, a := range all {
		b, ok := best[a.Series]
		if !ok {
			order = append(order, a.Series)
		}
		if !ok || debCompare(a.Version, b.Version) > 0 {
			best[a.Series] = a
		}
	}
	sortSeries(order)
	out := make([]Available, 0, len(order))
	for _, sr := range order {
		out = append(out, best[sr])
	}
	return out
}

// RenderSeriesCatalog renders the catalog of newest (from NewestPerSeries),
// the kernels of arch (empty: amd64): one entry per series, named
// linux-<series> (linux-<series>-arm64 for arm64, so that the names stay
// apart from the amd64 ones in reports and --kernels), which Resolve (and
// Float) keep at the newest image of that series in that suite. file is
// where it is written (kernels/series.yaml), named in its comment.
func RenderSeriesCatalog(newest []Available, arch, file string) string {
	arch = archOr(arch)
	lock := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file)) + ".lock"
	var b strings.Builder
	if arch == DefaultArch {
		fmt.Fprintf(&b, `# One Debian cloud kernel per upstream series: the newest signed image of
# each series in the suites kmatrix searches (kmatrix kernels --series
# writes this file). The exact packages are pinned in %s; run it
# with "make series" or "kmatrix run --catalog %s".
kernels:
`, lock, file)
	} else {
		fmt.Fprintf(&b, `# One Debian %[1]s cloud kernel per upstream series: the newest signed
# cloud-%[1]s image of each series in the suites kmatrix searches
# (kmatrix kernels --series --arch %[1]s writes this file). The exact
# packages are pinned in %[2]s; run it with "make series-%[1]s" or
# "kmatrix run --catalog %[3]s".
kernels:
`, arch, lock, file)
	}
	for _, a := range newest {
		name := "linux-" + a.Series
		if arch != DefaultArch {
			name += "-" + arch
		}
		fmt.Fprintf(&b, "  - name: %s\n    suite: %s\n", name, a.Suite)
		if arch != DefaultArch {
			fmt.Fprintf(&b, "    arch: %s\n", arch)
		}
		fmt.Fprintf(&b, "    source: %s\n    series: %q\n", a.Source, a.Series)
	}
	return b.String()
}

// Outdated is a resolved kernel for which the archive holds a newer image
// of the same upstream series.
type Outdated struct {
	Name    string    `json:"name"`
	Version string    `json:"version"`
	Series  string    `json:"series"`
	Newer   Available `json:"newer"`
}

func (o Outdated) String() string {
	return fmt.Sprintf("%s: %s, and %s has %s (%s) of series %s", o.Name, o.Version, o.Newer.Pocket, o.Newer.Version, o.Newer.Package, o.Series)
}

// FindOutdated compares each resolved kernel with what its suite lists now
// (the signed indexes, fetched or cached) and returns those for which a
// newer image of the same flavour, source and upstream series exists.
// Local kernels have no archive to compare with. A suite that cannot be
// read is an error; the others are still compared.
func FindOutdated(ctx context.Context, rs []Resolved, opts Options) ([]Outdated, error) {
	suites := map[string][]string{} // flavour → suites
	for _, r := range rs {
		if r.Local == "" && r.Suite != "" && !slices.Contains(suites[r.Flavour], r.Suite) {
			suites[r.Flavour] = append(suites[r.Flavour], r.Suite)
		}
	}
	var errs *multierror.Error
	var all []Available
	for flavour, ss := range suites {
		a, err := List(ctx, ss, flavour, opts)
		if err != nil {
			errs = multierror.Append(errs, err)
		}
		all = append(all, a...)
	}
	var out []Outdated
	for _, r := range rs {
		if r.Local != "" || r.Suite == "" {
			continue
		}
		sr := seriesOf(r.Version)
		var newest *Available
		for i, a := range all {
			if a.Suite == r.Suite && a.Source == r.Source && a.Series == sr && strings.HasSuffix(a.Package, "-"+r.Flavour) &&
				debCompare(a.Version, r.Version) > 0 && (newest == nil || debCompare(a.Version, newest.Version) > 0) {
				newest = &all[i]
			}
		}
		if newest != nil {
			out = append(out, Outdated{Name: r.Name, Version: r.Version, Series: sr, Newer: *newest})
		}
	}
	return out, errs.ErrorOrNil()
}

// VersionsBetween lists every image of e's suite, flavour and source whose
// package version lies between good and bad (both included), in Debian
// version order: the kernels a bisection can boot. e.Series, when set,
// keeps one series. Each is returned as an exact catalog entry (Version
// and Package pinned).
func VersionsBetween(ctx context.Context, e Entry, good, bad string, opts Options) ([]Available, error) {
	if debCompare(good, bad) > 0 {
		good, bad = bad, good
	}
	all, err := List(ctx, []string{e.Suite}, e.Flavour, opts)
	if err != nil {
		return nil, err
	}
	var out []Available
	var versions []string
	for _, a := range all {
		if a.Source != e.Source {
			continue
		}
		versions = append(versions, a.Version)
		if (e.Series == "" || a.Series == e.Series) && debCompare(a.Version, good) >= 0 && debCompare(a.Version, bad) <= 0 &&
			(len(out) == 0 || out[len(out)-1].Version != a.Version) {
			out = append(out, a)
		}
	}
	for _, v := range []string{good, bad} {
		if !slices.Contains(versions, v) {
			return nil, fmt.Errorf("%w: no linux-image-<abi>-%s version %s from %s in %s; versions there: %s",
				ErrPackageNotFound, e.Flavour, v, e.Source, e.Suite, strings.Join(slices.Compact(versions), ", "))
		}
	}
	return out, nil
}

// seriesOf is the upstream series of a package version: "6.16" for
// "6.16.3-1~bpo13+1", "7.3" for "7.3~rc7-1~exp1"; "" when it has none.
func seriesOf(pkgVersion string) string {
	v, err := ParseVersion(pkgVersion)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d.%d", v.Major, v.Minor)
}

// sortSeries sorts "MAJOR.MINOR" strings numerically (6.9 before 6.10).
func sortSeries(ss []string) {
	slices.SortFunc(ss, func(a, b string) int {
		va, ea := ParseVersion(a)
		vb, eb := ParseVersion(b)
		if err := errors.Join(ea, eb); err != nil {
			return strings.Compare(a, b)
		}
		return va.Code() - vb.Code()
	})
}
