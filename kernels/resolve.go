package kernels

import (
	"context"
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-multierror"
	"pault.ag/go/debian/dependency"
	"pault.ag/go/debian/version"
)

// Resolved is a catalog kernel pinned to exact packages (or a local directory).
type Resolved struct {
	Name string `json:"name"`
	// Local is the directory of a local kernel; nothing else is set then.
	Local string `json:"local,omitempty"`
	// Suite is the base suite ("bookworm"); the pocket of each package is in Packages.
	Suite string `json:"suite,omitempty"`
	// Arch is the Debian architecture ("arm64"); locks written before
	// kmatrix had arches leave it out: amd64 (see GetArch).
	Arch    string `json:"arch,omitempty"`
	Flavour string `json:"flavour,omitempty"`
	Source  string `json:"source,omitempty"`
	// PinVersion and PinPackage repeat the catalog's pins, so a lock entry
	// is known to be stale when the catalog changes them.
	PinVersion string `json:"pin_version,omitempty"`
	PinPackage string `json:"pin_package,omitempty"`
	PinSeries  string `json:"pin_series,omitempty"`
	// Release is the kernel release ("6.1.0-56-cloud-amd64").
	Release string `json:"release,omitempty"`
	// Version is the image package's version ("6.1.192-2").
	Version string `json:"version,omitempty"`
	// Compiler is the compiler its headers ask for ("gcc-12"), from their Depends.
	Compiler string `json:"compiler,omitempty"`
	// Packages: the image and what it depends on within the kernel's source
	// (not linux-modules-*), then the headers tree's packages (Headers set).
	Packages []Package `json:"packages,omitempty"`
	// HeadersMissing says why Packages holds no headers tree, when the
	// signed index lists the image but not its linux-headers-<abi> at the
	// same version ("the archive lists no headers for 7.0.13-1~bpo13+1"):
	// Debian keeps headers only for the newest versions of a backports
	// suite while older images stay listed and signed. Such a kernel still
	// resolves and boots (BPF needs no headers); whatever needs its headers
	// (module builds) is skipped with this reason. Empty when the headers
	// are there.
	HeadersMissing string `json:"headers_missing,omitempty"`
	// Change says what Float changed: "6.1.0-55-cloud-amd64 6.1.190-1 → …"; "" when nothing did.
	Change string `json:"-"`
}

// Package is one exact .deb.
type Package struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Arch     string `json:"arch"`
	Pocket   string `json:"suite"`
	Filename string `json:"filename"`
	SHA256   string `json:"sha256"`
	Size     int64  `json:"size"`
	Headers  bool   `json:"headers,omitempty"`
}

// GetArch is r's Debian architecture: amd64 unless it says otherwise.
func (r Resolved) GetArch() string { return archOr(r.Arch) }

// Image is the linux-image package.
func (r Resolved) Image() Package {
	if len(r.Packages) == 0 {
		return Package{}
	}
	return r.Packages[0]
}

func (r Resolved) boot() []Package    { return r.filter(false) }
func (r Resolved) headers() []Package { return r.filter(true) }
func (r Resolved) filter(h bool) []Package {
	var out []Package
	for _, p := range r.Packages {
		if p.Headers == h {
			out = append(out, p)
		}
	}
	return out
}

func (r Resolved) String() string {
	if r.Local != "" {
		return r.Name + " (local " + r.Local + ")"
	}
	return fmt.Sprintf("%s (%s %s from %s)", r.Name, r.Release, r.Version, r.Image().Pocket)
}

// Resolve pins every kernel of cat to exact packages. Kernels pinned by the
// lock file (Options.LockFile, else cat.LockPath, else the embedded lock of
// the default catalog) are taken from it without touching the network,
// unless Options.Float; the others are resolved against the signed
// indexes and the lock file is updated (when it is a file). Failures are
// per kernel: the kernels that resolved are returned along with a
// *multierror.Error naming the others.
func Resolve(ctx context.Context, cat *Catalog, opts Options) ([]Resolved, error) {
	results, err := ResolveEach(ctx, cat, opts)
	if results == nil {
		return nil, err
	}
	var errs *multierror.Error
	var res []Resolved
	for _, r := range results {
		if r.Err != nil {
			errs = multierror.Append(errs, r.Err)
			continue
		}
		res = append(res, r.Resolved)
	}
	if err != nil {
		errs = multierror.Append(errs, err)
	}
	return res, errs.ErrorOrNil()
}

// ResolveResult is what became of one catalog entry: Resolved, or Err.
type ResolveResult struct {
	Entry    Entry
	Resolved Resolved
	// Err says why the entry could not be resolved ("kernel X: ...");
	// kmatrix makes it that kernel's infra-error, the others go on.
	Err error
}

// ResolveEach is Resolve with one result per entry of cat, in catalog
// order; only the entries of cat are looked at (a catalog from Select
// resolves only the selected kernels, and the lock file keeps the others'
// pins). Its error is nil or says what failed for all entries alike: with
// nil results, nothing could be tried (the lock file is unreadable); with
// results, the lock file could not be updated.
func ResolveEach(ctx context.Context, cat *Catalog, opts Options) ([]ResolveResult, error) {
	lockPath := opts.LockFile
	if lockPath == "" {
		lockPath = cat.LockPath
	}
	lock := &Lock{}
	var err error
	switch {
	case lockPath != "":
		if lock, err = ReadLock(lockPath); err != nil {
			return nil, err
		}
	case len(cat.lock) > 0:
		if lock, err = parseLock("the embedded lock of "+cat.name(), cat.lock); err != nil {
			return nil, err
		}
	}
	res := make([]ResolveResult, len(cat.Kernels))
	var need []int
	for i, e := range cat.Kernels {
		res[i].Entry = e
		switch {
		case e.Local != "":
			res[i].Resolved = Resolved{Name: e.Name, Local: e.Local}
		case !opts.Float && lock.find(e.Name).matches(e):
			res[i].Resolved = *lock.find(e.Name)
		default:
			need = append(need, i)
		}
	}
	if len(need) == 0 {
		return res, nil
	}
	s, err := newSession(opts, true)
	if err != nil {
		// No mirror, a bad setting: every kernel that needs the network
		// fails with it, the pinned ones still run.
		for _, i := range need {
			res[i].Err = fmt.Errorf("kernel %q: %w", cat.Kernels[i].Name, err)
		}
		return res, nil
	}
	var wg sync.WaitGroup
	for _, i := range need {
		wg.Go(func() {
			r, err := s.resolve(ctx, cat.Kernels[i])
			if err != nil {
				res[i].Err = fmt.Errorf("kernel %q: %w", cat.Kernels[i].Name, err)
				return
			}
			if old := lock.find(r.Name); old != nil && old.Release != "" && (old.Release != r.Release || old.Version != r.Version) {
				r.Change = fmt.Sprintf("%s %s → %s %s", old.Release, old.Version, r.Release, r.Version)
			}
			res[i].Resolved = *r
		})
	}
	wg.Wait()
	changed := false
	for _, i := range need {
		if res[i].Err != nil {
			continue
		}
		old := lock.find(res[i].Resolved.Name)
		if old == nil || !slices.Equal(old.Packages, res[i].Resolved.Packages) || !old.matches(cat.Kernels[i]) {
			changed = true
		}
		if res[i].Resolved.Change != "" {
			s.logf("kernels: %s: %s", res[i].Resolved.Name, res[i].Resolved.Change)
		}
	}
	if !changed || lockPath == "" {
		return res, nil
	}
	// The lock keeps every kernel of the whole catalog, in its order: the
	// ones resolved now, and the previous pins of the others (not selected,
	// or failing now).
	now := map[string]Resolved{}
	for _, r := range res {
		if r.Err == nil && r.Entry.Local == "" {
			now[r.Entry.Name] = r.Resolved
		}
	}
	nl := &Lock{}
	for _, e := range cat.all() {
		if r, ok := now[e.Name]; ok {
			nl.Kernels = append(nl.Kernels, r)
		} else if old := lock.find(e.Name); e.Local == "" && old != nil {
			nl.Kernels = append(nl.Kernels, *old)
		}
	}
	if err := WriteLock(lockPath, nl); err != nil {
		s.logf("kernels: could not update the lock file: %v", err)
		return res, fmt.Errorf("lock file: %w", err)
	}
	s.logf("kernels: wrote %s", lockPath)
	return res, nil
}

// pockets are searched in this order; on equal versions the first wins.
func pockets(suite string) []string {
	return []string{suite, suite + "-security", suite + "-updates"}
}

// universe is the kernel packages of a suite and its pockets.
type universe struct {
	pkgs   []*binPkg
	byName map[string][]*binPkg
	read   []string // pockets that exist
}

func (s *session) universe(ctx context.Context, suite, arch string) (*universe, error) {
	u := &universe{byName: map[string][]*binPkg{}}
	for i, p := range pockets(suite) {
		rel, err := s.release(ctx, p)
		if err != nil {
			if i > 0 && isErr(err, ErrUnknownSuite) {
				continue // sid has no -security, some suites no -updates
			}
			return nil, err
		}
		pk, err := s.index(ctx, rel, arch)
		if err != nil {
			return nil, err
		}
		u.read = append(u.read, p)
		u.pkgs = append(u.pkgs, pk...)
		for _, b := range pk {
			u.byName[b.Name] = append(u.byName[b.Name], b)
		}
	}
	return u, nil
}

// release memoizes fetchRelease per session (many kernels share suites).
func (s *session) release(ctx context.Context, suite string) (*release, error) {
	s.mu.Lock()
	if r, ok := s.releases[suite]; ok {
		s.mu.Unlock()
		return r, nil
	}
	s.mu.Unlock()
	s.fetchMu(suite).Lock()
	defer s.fetchMu(suite).Unlock()
	s.mu.Lock()
	r, ok := s.releases[suite]
	s.mu.Unlock()
	if ok {
		return r, nil
	}
	r, err := s.fetchRelease(ctx, suite)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.releases[suite] = r
	s.mu.Unlock()
	return r, nil
}

var imageRE = regexp.MustCompile(`^linux-image-([0-9][^ ]*?)-([a-z][a-z0-9-]*)$`)

func (s *session) resolve(ctx context.Context, e Entry) (*Resolved, error) {
	u, err := s.universe(ctx, e.Suite, archOr(e.Arch))
	if err != nil {
		return nil, err
	}
	// The headers' linux-kbuild holds programs (modpost, fixdep...) that
	// run on the machine that builds modules, not the kernel's: for an
	// arm64 kernel on an amd64 host, the amd64 build of the same version.
	kbuild := u
	if ba := BuildArch(); ba != archOr(e.Arch) {
		if kbuild, err = s.universe(ctx, e.Suite, ba); err != nil {
			return nil, err
		}
	}
	where := strings.Join(u.read, ", ")
	var cands []*binPkg
	flavours := map[string]bool{}
	sources := map[string]bool{}
	for _, p := range u.pkgs {
		m := imageRE.FindStringSubmatch(p.Name)
		if m == nil || strings.HasSuffix(p.Name, "-dbg") || strings.HasSuffix(p.Name, "-unsigned") {
			continue
		}
		flavours[m[2]] = true
		if m[2] != e.Flavour {
			continue
		}
		sources[p.Source] = true
		if p.Source == e.Source && (e.Package == "" || p.Name == e.Package) {
			cands = append(cands, p)
		}
	}
	if e.Series != "" && len(cands) > 0 {
		var keep []*binPkg
		var series []string
		for _, c := range cands {
			sr := seriesOf(c.Version)
			series = append(series, sr)
			if sr == e.Series {
				keep = append(keep, c)
			}
		}
		if len(keep) == 0 {
			sortSeries(series)
			return nil, fmt.Errorf("%w: no linux-image-<abi>-%s of series %s from %s in %s; series there: %s", ErrPackageNotFound, e.Flavour, e.Series, e.Source, where, strings.Join(slices.Compact(series), ", "))
		}
		cands = keep
	}
	if !flavours[e.Flavour] {
		return nil, fmt.Errorf("%w %q: no linux-image-<abi>-%s in %s; flavours there: %s", ErrUnknownFlavour, e.Flavour, e.Flavour, where, keys(flavours))
	}
	if len(cands) == 0 {
		what := "linux-image-<abi>-" + e.Flavour
		if e.Package != "" {
			what = e.Package
		}
		return nil, fmt.Errorf("%w: no %s built from source %q in %s; sources with that flavour: %s", ErrPackageNotFound, what, e.Source, where, keys(sources))
	}
	if e.Version != "" {
		var vs []string
		var keep []*binPkg
		for _, c := range cands {
			vs = append(vs, c.Version)
			if c.Version == e.Version {
				keep = append(keep, c)
			}
		}
		if len(keep) == 0 {
			SortVersions(vs)
			return nil, fmt.Errorf("%w: no linux-image-<abi>-%s version %s from %s in %s; versions there: %s", ErrPackageNotFound, e.Flavour, e.Version, e.Source, where, strings.Join(slices.Compact(vs), ", "))
		}
		cands = keep
	}
	// Newest version; a stable sort keeps pocket order for equal versions.
	sort.SliceStable(cands, func(i, j int) bool { return debCompare(cands[i].Version, cands[j].Version) > 0 })
	img := cands[0]
	m := imageRE.FindStringSubmatch(img.Name)
	r := &Resolved{Name: e.Name, Suite: e.Suite, Arch: archOr(e.Arch), Flavour: e.Flavour, Source: e.Source, PinVersion: e.Version, PinPackage: e.Package, PinSeries: e.Series,
		Release: m[1] + "-" + e.Flavour, Version: img.Version}
	seen := map[string]bool{}
	var compiler string
	var walk func(p *binPkg, headers bool) error
	walk = func(p *binPkg, headers bool) error {
		if seen[p.Name] {
			return nil
		}
		seen[p.Name] = true
		r.Packages = append(r.Packages, Package{Name: p.Name, Version: p.Version, Arch: p.Arch, Pocket: p.Pocket, Filename: p.Filename, SHA256: p.SHA256, Size: p.Size, Headers: headers})
		if p.Depends == "" {
			return nil
		}
		dep, err := dependency.Parse(p.Depends)
		if err != nil {
			return fmt.Errorf("%s %s: Depends %q: %w", p.Name, p.Version, p.Depends, err)
		}
		for _, rel := range dep.Relations {
			for _, poss := range rel.Possibilities {
				if c := compilerDep.FindStringSubmatch(poss.Name); c != nil && headers {
					compiler = c[1] + "-" + c[2]
				}
				if !follow(poss.Name, headers) {
					continue
				}
				// Follow only the packages of this very kernel build: same
				// version, kernel source. That skips linux-base (the
				// distribution's tools) and initramfs-tools alternatives.
				from := u
				if headers && strings.HasPrefix(poss.Name, "linux-kbuild-") {
					from = kbuild
				}
				if d := from.find(poss.Name, img.Version); d != nil {
					if err := walk(d, headers); err != nil {
						return err
					}
					break
				}
			}
		}
		return nil
	}
	if err := walk(img, false); err != nil {
		return nil, err
	}
	hdr := u.find("linux-headers-"+r.Release, img.Version)
	if hdr == nil {
		// Not an error: the image is listed and signed, and booting it
		// needs no headers (see Resolved.HeadersMissing).
		r.HeadersMissing = fmt.Sprintf("the archive lists no headers for %s (no linux-headers-%s %s in %s)", img.Version, r.Release, img.Version, where)
		return r, nil
	}
	seen = map[string]bool{} // the headers root gets its own copy of shared packages (sid: linux-base-<abi>)
	if err := walk(hdr, true); err != nil {
		return nil, err
	}
	r.Compiler = compiler
	return r, nil
}

// BuildArch is the Debian architecture of the machine kmatrix runs on,
// which builds the modules: the arch of the linux-kbuild package in every
// headers tree. Go's GOARCH names amd64 and arm64 as Debian does.
func BuildArch() string {
	if slices.Contains(Arches, runtime.GOARCH) {
		return runtime.GOARCH
	}
	return DefaultArch
}

// kbuildRunsHere reports whether r's headers (if any) have the linux-kbuild
// of BuildArch: a lock written before kmatrix took kbuild from the build
// machine's arch (or on a host of another arch) pins the kernel's own.
func (r *Resolved) kbuildRunsHere() bool {
	for _, p := range r.headers() {
		if strings.HasPrefix(p.Name, "linux-kbuild-") && p.Arch != BuildArch() && p.Arch != "all" {
			return false
		}
	}
	return true
}

var compilerDep = regexp.MustCompile(`^(?:linux-compiler-)?(gcc|clang)-(\d+)(?:-x86|-arm|-for-host)?$`)

// follow says which dependencies belong in the cache: the kernel's own
// split packages (sid 7.x: linux-binary-, linux-base-, linux-modules-<abi>)
// and the headers' -common and linux-kbuild-, never the image again from
// the headers. The modules package is followed for the few modules guests
// load (GuestModules: clsact and cls_bpf, a module function for fentry);
// its other modules are not unpacked. Before the split (6.12 and older) the
// modules are in the image package itself.
func follow(name string, headers bool) bool {
	switch {
	case headers && strings.HasPrefix(name, "linux-modules-"), strings.HasPrefix(name, "linux-compiler-"):
		return false
	case headers && (strings.HasPrefix(name, "linux-image-") || strings.HasPrefix(name, "linux-binary-")):
		return false
	}
	return strings.HasPrefix(name, "linux-")
}

// find returns the package name at exactly version ver, if any pocket has it.
func (u *universe) find(name, ver string) *binPkg {
	for _, p := range u.byName[name] {
		if p.Version == ver {
			return p
		}
	}
	return nil
}

// SortVersions sorts Debian package versions in Debian order (6.19.6-1
// before 6.19.10-1, 7.3~rc7-1 before 7.3.1-1); a string that is not a
// Debian version compares as a string.
func SortVersions(vs []string) { slices.SortStableFunc(vs, debCompare) }

// CompareVersions compares two Debian package versions (dpkg's order),
// like strings.Compare.
func CompareVersions(a, b string) int { return debCompare(a, b) }

func debCompare(a, b string) int {
	va, errA := version.Parse(a)
	vb, errB := version.Parse(b)
	if errA != nil || errB != nil {
		return strings.Compare(a, b)
	}
	return version.Compare(va, vb)
}

func keys(m map[string]bool) string {
	if len(m) == 0 {
		return "(none)"
	}
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}
