package build

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kmatrix/kmatrix/kernels"
)

// RootOptions tune EnsureRoot.
type RootOptions struct {
	// AllowExpired lets apt accept archive indexes past their Valid-Until
	// (see kernels.ExpiredIndexPolicy for when that is also the default).
	AllowExpired bool
	// Progress, when set, receives mmdebstrap's output.
	Progress io.Writer
}

// Root is a Debian userland of one suite that holds one kernel's
// headers package and, through its dependencies, the gcc that kernel was
// built with. It lives in the cache and is made once, by mmdebstrap.
type Root struct {
	// Dir is the root directory.
	Dir string `json:"dir"`
	// Suite is the Debian suite of its userland ("trixie").
	Suite string `json:"suite"`
	// Release is the kernel release whose headers it holds; they are in
	// /usr/src/linux-headers-<Release> inside it. Empty for a cross root
	// (EnsureCrossRoot), which holds only compilers.
	Release string `json:"release"`
	// Created reports whether this call made it (false: it was cached);
	// Duration is how long making it took.
	Created  bool          `json:"created"`
	Duration time.Duration `json:"duration"`
}

// ErrRoot is wrapped by every failure to make a build root.
var ErrRoot = errors.New("build root")

// buildRootMark records, inside a finished root, how it was made.
const buildRootMark = ".kmatrix-buildroot.json"

// EnsureRoot returns the build root of suite holding the headers of
// kernel release, creating it under <cacheDir>/buildroots if it is not
// there yet. Concurrent callers (goroutines or processes) serialize on a
// lock file; the root is made in a temporary directory and renamed into
// place when complete, so a root that exists is whole. extraSuites are
// added to the sources (e.g. "bookworm-backports" for a backports kernel).
// progress, when not nil, receives mmdebstrap's output.
func EnsureRoot(ctx context.Context, cacheDir, suite, release string, extraSuites []string, opts RootOptions) (*Root, error) {
	if release == "" || strings.ContainsAny(release, "/ ") {
		return nil, fmt.Errorf("%w: kernel release %q: want a release such as \"6.12.118+deb13-cloud-amd64\"", ErrRoot, release)
	}
	return ensureRoot(ctx, cacheDir, rootSpec{
		key: suite + "_" + release, suite: suite, release: release, extraSuites: extraSuites,
		include: "linux-headers-" + release,
		want:    "usr/src/linux-headers-" + release + "/Makefile",
	}, opts)
}

// EnsureCrossRoot returns the build root of suite that holds Debian's cross
// compiler for another machine, gcc-<major>-<triplet> and
// binutils-<triplet>, making it like EnsureRoot does. It holds no headers:
// a cross build mounts the kernel's headers tree from kmatrix's cache
// (whose linux-kbuild is the host's build), so one root serves every
// kernel of that suite, machine and gcc major. A suite without that
// compiler is an error that names the package (bookworm has no gcc-16 for
// aarch64, sid has no gcc-12 once it is dropped).
func EnsureCrossRoot(ctx context.Context, cacheDir, suite string, t Target, major int, extraSuites []string, opts RootOptions) (*Root, error) {
	if t.Triplet == "" || strings.ContainsAny(t.Triplet, "/ ") || major <= 0 {
		return nil, fmt.Errorf("%w: cross compiler gcc-%d for %q: want a GNU triplet such as \"aarch64-linux-gnu\" and a gcc major", ErrRoot, major, t.Triplet)
	}
	cc := fmt.Sprintf("%s-gcc-%d", t.Triplet, major)
	return ensureRoot(ctx, cacheDir, rootSpec{
		key: crossRootKey(suite, t, major), suite: suite, extraSuites: extraSuites,
		include: fmt.Sprintf("gcc-%d-%s,%s", major, t.pkgTriplet(), t.BinutilsPackage()),
		want:    "usr/bin/" + cc,
	}, opts)
}

// crossRootKey names a cross build root in the cache: "sid_cross-aarch64-linux-gnu-gcc-16".
func crossRootKey(suite string, t Target, major int) string {
	return fmt.Sprintf("%s_cross-%s-gcc-%d", suite, t.Triplet, major)
}

// rootSpec says what one build root is: its cache key, its suite, the
// packages it adds to rootPackages, and a file that must be in it after.
type rootSpec struct {
	key, suite, release string
	extraSuites         []string
	include             string
	want                string
}

// crossHeadersDir is where a cross build mounts the headers tree's root
// (the directory holding its usr/src and usr/lib) inside a build root.
const crossHeadersDir = "/kmatrix-headers"

func ensureRoot(ctx context.Context, cacheDir string, spec rootSpec, opts RootOptions) (*Root, error) {
	progress := opts.Progress
	suite := spec.suite
	if suite == "" || strings.ContainsAny(suite, "/ ") {
		return nil, fmt.Errorf("%w: suite %q: want a Debian suite name such as \"trixie\"", ErrRoot, suite)
	}
	base := filepath.Join(cacheDir, "buildroots")
	key := spec.key
	br := &Root{Dir: filepath.Join(base, key), Suite: suite, Release: spec.release}
	unlock, err := kernels.LockFile(filepath.Join(base, key+".lock"))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRoot, err)
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(br.Dir, buildRootMark)); err == nil {
		return br, nil
	}

	start := time.Now()
	tmp := filepath.Join(base, "."+key+".tmp")
	// We hold the lock, so a temporary root is a leftover of a killed run.
	// Never delete through a mount point (a leftover /proc mount would
	// let RemoveAll wander into the host's /proc).
	if mounts, err := mountsUnder(tmp); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRoot, err)
	} else if len(mounts) > 0 {
		return nil, fmt.Errorf("%w: %s is left over from a killed run and still has mounts (%s): unmount them (umount -R) and retry",
			ErrRoot, tmp, strings.Join(mounts, ", "))
	}
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("%w: remove leftover %s: %w", ErrRoot, tmp, err)
	}

	args, sources, err := mmdebstrapArgs(suite, spec.include, spec.extraSuites, tmp, opts.AllowExpired)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "mmdebstrap", args...)
	var log strings.Builder
	if progress != nil {
		cmd.Stdout = io.MultiWriter(&log, progress)
	} else {
		cmd.Stdout = &log
	}
	cmd.Stderr = cmd.Stdout
	cmd.Env = cleanEnv()
	if err := cmd.Run(); err != nil {
		os.RemoveAll(tmp)
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("%w: mmdebstrap is not installed: install the mmdebstrap package (make deps)", ErrRoot)
		}
		if pkg := unknownPackage(log.String()); pkg != "" {
			return nil, fmt.Errorf("%w for %s: the suite has no package %s (its sources: %s): kmatrix cannot build there; a kernel that needs it needs another suite's build root",
				ErrRoot, suite, pkg, strings.Join(sources, "; "))
		}
		return nil, fmt.Errorf("%w for %s with %s: mmdebstrap: %w\n%s", ErrRoot, suite, spec.include, err, tail(log.String(), 30))
	}
	for _, d := range []string{"build", strings.TrimPrefix(crossHeadersDir, "/")} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRoot, err)
		}
	}
	if _, err := os.Stat(filepath.Join(tmp, spec.want)); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("%w for %s: mmdebstrap succeeded but /%s is missing", ErrRoot, suite, spec.want)
	}
	br.Duration = time.Since(start)
	br.Created = true
	mark, _ := json.MarshalIndent(map[string]any{
		"suite": suite, "release": spec.release, "include": spec.include, "sources": sources,
		"created": start.UTC().Format(time.RFC3339), "seconds": br.Duration.Seconds(),
	}, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, buildRootMark), mark, 0o644); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRoot, err)
	}
	if err := os.Rename(tmp, br.Dir); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRoot, err)
	}
	return br, nil
}

// unknownPackageRE finds apt's words for a package the sources do not
// have: "E: Unable to locate package gcc-16-aarch64-linux-gnu", "E: Package
// 'gcc-9' has no installation candidate".
var unknownPackageRE = regexp.MustCompile(`(?m)^E: (?:Unable to locate package (\S+)|Package '([^']+)' has no installation candidate)`)

func unknownPackage(log string) string {
	if m := unknownPackageRE.FindStringSubmatch(log); m != nil {
		return m[1] + m[2]
	}
	return ""
}

// rootSuites says which suite a build root's userland is and which
// suites its apt sources list, for a catalog suite:
//
//   - a release ("trixie"): it and its -updates and -security pockets (the
//     newest kernel ABIs are often only in -security);
//   - its backports ("trixie-backports"): the release as above plus the
//     backports suite, which holds the kernel's headers but no userland
//     (mmdebstrap of "trixie-backports" alone exits with status 25);
//   - "experimental": sid plus experimental, which holds only what is newer
//     than sid;
//   - "sid" (or "unstable"): itself; it has no pockets.
//
// The sources go on mmdebstrap's command line only: the host's apt sources
// are never touched.
func rootSuites(suite string) (base string, suites []string) {
	switch {
	case suite == "experimental":
		return "sid", []string{"sid", "experimental"}
	case suite == "sid" || suite == "unstable":
		return suite, []string{suite}
	case strings.HasSuffix(suite, "-backports"):
		base = strings.TrimSuffix(suite, "-backports")
		return base, []string{base, base + "-updates", base + "-security", suite}
	}
	return suite, []string{suite, suite + "-updates", suite + "-security"}
}

// rootPackages are installed in every build root besides the kernel's
// headers (which pull in its gcc): make; binutils, because trixie's
// x86_64-linux-gnu-gcc-14 (which the trixie-backports 7.x headers pull in)
// runs plain "as", which only binutils provides (sid's gcc-16 runs
// x86_64-linux-gnu-as); and dwarves for pahole, which kbuild runs for the
// modules' BTF when the kernel has CONFIG_DEBUG_INFO_BTF_MODULES and its
// headers ship a vmlinux (see Needs).
var rootPackages = []string{"make", "binutils", "dwarves"}

// mmdebstrapArgs builds the mmdebstrap command line for the build root of
// suite (see rootSuites) plus extraSuites, with rootPackages and include
// (comma-separated packages), from the mirrors the host's apt uses.
func mmdebstrapArgs(suite, include string, extraSuites []string, target string, allowExpired bool) (args, sources []string, err error) {
	m, err := kernels.DiscoverMirrors()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrRoot, err)
	}
	base, suites := rootSuites(suite)
	for _, s := range extraSuites {
		if s != "" && !slices.Contains(suites, s) {
			suites = append(suites, s)
		}
	}
	for _, s := range suites {
		sources = append(sources, fmt.Sprintf("deb %s %s main", m.For(s), s))
	}
	args = []string{
		"--variant=minbase",
		"--include=" + strings.Join(rootPackages, ",") + "," + include,
		// Documentation is most of a root's size and never read.
		"--dpkgopt=path-exclude=/usr/share/doc/*",
		"--dpkgopt=path-exclude=/usr/share/man/*",
		"--dpkgopt=path-exclude=/usr/share/locale/*",
	}
	if os.Geteuid() != 0 {
		args = append(args, "--mode=unshare")
	}
	// One rule for the whole of kmatrix: the kernels package's (caller's
	// flag, KMATRIX_ALLOW_EXPIRED_INDEX=1, or the host's apt policy).
	if allow, _ := kernels.ExpiredIndexPolicy(kernels.Options{AllowExpired: allowExpired}); allow {
		args = append(args, `--aptopt=Acquire::Check-Valid-Until "false"`)
	}
	args = append(args, base, target)
	args = append(args, sources...)
	return args, sources, nil
}

// mountsUnder lists the mount points at or below dir.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := fields[4]
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out, sc.Err()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
