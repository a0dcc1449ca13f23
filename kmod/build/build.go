package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels"
)

// Options tune Module and All. The zero value is usable.
type Options struct {
	// OutDir receives one build directory per kernel, <OutDir>/<kernel
	// name>, holding a copy of the source and the build's products.
	// Default: a new temporary directory.
	OutDir string
	// CacheDir holds build roots (<CacheDir>/buildroots). Default:
	// kernels.CacheDir().
	CacheDir string
	// Jobs bounds how many kernels All builds at once. Default: the
	// number of CPUs.
	Jobs int
	// MakeArgs are appended to the make command line, e.g.
	// "KBUILD_MODPOST_WARN=1" or "EXTRA_CFLAGS=-DDEBUG".
	MakeArgs []string
	// HostOnly refuses to make build roots: a kernel whose gcc the host
	// lacks gets an infra error instead.
	HostOnly bool
	// Progress, when set, receives build-root creation output.
	Progress io.Writer
	// AllowExpired lets build-root creation accept archive indexes past
	// their Valid-Until, like kernels.Options.AllowExpired.
	AllowExpired bool
}

// Result is the outcome of building a module for one kernel. A build
// that failed to compile is a result (Outcome build-error, with Log and
// FirstError), not an error.
type Result struct {
	// Kernel is the kernel's catalog name; Release its `uname -r`.
	Kernel  string `json:"kernel"`
	Release string `json:"release"`
	// Dir is the build directory; Ko the built module (empty unless Outcome is pass).
	Dir string `json:"dir"`
	Ko  string `json:"ko,omitempty"`
	// Arch is the Debian architecture the module was built for ("arm64").
	Arch string `json:"arch,omitempty"`
	// Compiler says which gcc built it and where: "gcc-12 (host)",
	// "gcc-16 (sid build root)" or "aarch64-linux-gnu-gcc-16 (sid cross
	// build root)".
	Compiler string `json:"compiler"`
	// Log is make's full output (stdout and stderr interleaved).
	Log string `json:"log"`
	// Duration is the time make took; Setup the time spent before it,
	// including making a build root (BuildRootCreated says whether one was made).
	Duration         time.Duration `json:"duration"`
	Setup            time.Duration `json:"setup"`
	BuildRootCreated bool          `json:"build_root_created,omitempty"`
	// Cached says the result came from Cached's cache: nothing was
	// compiled, and Duration is the original build's.
	Cached bool `json:"cached,omitempty"`
	// Outcome is outcome.Pass, outcome.BuildError, outcome.Timeout (the
	// context's deadline passed during make) or outcome.InfraError.
	Outcome outcome.Outcome `json:"outcome"`
	// FirstError is the first error in Log, when Outcome is build-error.
	FirstError *FirstError `json:"first_error,omitempty"`
}

// ErrInput is wrapped by errors about Module's arguments.
var ErrInput = errors.New("module build")

// chrootModuleDir is where the module's build directory is mounted inside a build root.
const chrootModuleDir = "/build"

// Module compiles the module in srcDir (a Kbuild or Makefile for an
// out-of-tree module) for kernel k with a gcc of the major version k was
// built with: on the host when it has every tool k's build needs (Needs:
// gcc-<major>, pahole for BTF), else in a build root of the kernel's
// Debian suite that has them (made once, see EnsureRoot).
//
// The error is for kmatrix's own failures (bad arguments, no usable
// compiler, mmdebstrap or make could not run); the returned result then
// has Outcome infra-error. A module that does not compile is not an
// error: the result says build-error.
func Module(ctx context.Context, k *kernels.Kernel, srcDir string, opts Options) (*Result, error) {
	start := time.Now()
	if k == nil {
		return nil, fmt.Errorf("%w: no kernel given", ErrInput)
	}
	res := &Result{Kernel: k.Name, Release: k.Release, Outcome: outcome.InfraError}
	fail := func(err error) (*Result, error) {
		res.Setup = time.Since(start)
		return res, err
	}
	if k.Name == "" || strings.ContainsAny(k.Name, "/\x00") || k.Name == "." || k.Name == ".." {
		return fail(fmt.Errorf("%w: kernel name %q cannot name a build directory: want e.g. \"debian-bookworm\"", ErrInput, k.Name))
	}
	if err := checkSource(srcDir); err != nil {
		return fail(err)
	}
	if k.Compiler.Name != "gcc" {
		return fail(fmt.Errorf("%w: kernel %s was built with %q (%s): kmatrix builds modules only for gcc-built kernels",
			ErrInput, k.Name, k.Compiler.String(), k.Compiler.Text))
	}
	if k.Release == "" {
		return fail(fmt.Errorf("%w: kernel %s has no release: it must come from kernels (LoadLocal or the catalog)", ErrInput, k.Name))
	}

	outDir := opts.OutDir
	if outDir == "" {
		var err error
		if outDir, err = os.MkdirTemp("", "kmatrix-kmod-"); err != nil {
			return fail(err)
		}
	}
	dir, err := filepath.Abs(filepath.Join(outDir, k.Name))
	if err != nil {
		return fail(err)
	}
	res.Dir = dir
	if err := os.RemoveAll(dir); err != nil {
		return fail(fmt.Errorf("module build for %s: clean %s: %w", k.Name, dir, err))
	}
	if err := os.CopyFS(dir, os.DirFS(srcDir)); err != nil {
		return fail(fmt.Errorf("module build for %s: copy %s: %w", k.Name, srcDir, err))
	}

	tg, err := TargetOf(k)
	if err != nil {
		return fail(err)
	}
	if k.Arch != "" && k.Arch != tg.Arch {
		return fail(fmt.Errorf("%w: kernel %s: its image is %s but its config (%s) is for %s: the config is not this kernel's", ErrInput, k.Name, k.Arch, k.Config, tg.Arch))
	}
	res.Arch = tg.Arch
	cc := tg.CC(k.Compiler.Major)
	// A cross build names the machine and the cross compiler (ARCH,
	// CROSS_COMPILE, CC); a native build leaves them to the headers.
	crossArgs := tg.makeArgs(k.Compiler.Major)
	var cmd *exec.Cmd
	var moduleDirs []string
	var rootDir string // the build root, when not on the host
	if missing := HostMissing(k); len(missing) == 0 {
		if k.Headers == "" {
			return fail(fmt.Errorf("%w: kernel %s has no headers tree: fetch it with its headers", ErrInput, k.Name))
		}
		if err := checkKbuildRunsHere(k); err != nil {
			return fail(err)
		}
		res.Compiler = cc + " (host)"
		args := append([]string{"-C", k.Headers}, rawHeadersArgs(k.Headers)...)
		args = append(args, "M="+dir)
		args = append(args, crossArgs...)
		args = append(args, "modules")
		args = append(args, opts.MakeArgs...)
		cmd = exec.CommandContext(ctx, "make", args...)
		moduleDirs = []string{dir}
	} else {
		if opts.HostOnly {
			return fail(fmt.Errorf("module build for %s: the host lacks %s, and HostOnly forbids a build root: install them", k.Name, toolList(missing)))
		}
		suite, extra := rootSuite(k)
		if suite == "" {
			return fail(fmt.Errorf("module build for %s: the host lacks %s and no Debian suite is known to ship %s: install them", k.Name, toolList(missing), cc))
		}
		cacheDir := opts.CacheDir
		if cacheDir == "" {
			if cacheDir, err = kernels.CacheDir(); err != nil {
				return fail(err)
			}
		}
		ropts := RootOptions{AllowExpired: opts.AllowExpired, Progress: opts.Progress}
		var argv []string
		var headersRoot string // the host directory mounted on crossHeadersDir
		if tg.Cross() {
			// The root has only the cross compiler; the headers are the
			// cache's tree, mounted read-only (Debian's arm64 headers
			// depend on the arm64 gcc-N, which apt cannot install on amd64).
			if k.Headers == "" {
				return fail(fmt.Errorf("%w: kernel %s has no headers tree: fetch it with its headers", ErrInput, k.Name))
			}
			if err := checkKbuildRunsHere(k); err != nil {
				return fail(err)
			}
			var inTree string
			if headersRoot, inTree, err = headersMount(k); err != nil {
				return fail(err)
			}
			br, err := EnsureCrossRoot(ctx, cacheDir, suite, tg, k.Compiler.Major, extra, ropts)
			if err != nil {
				return fail(fmt.Errorf("module build for %s: %w", k.Name, err))
			}
			res.BuildRootCreated, rootDir = br.Created, br.Dir
			res.Compiler = fmt.Sprintf("%s (%s cross build root)", cc, suite)
			argv = []string{"make", "-C", path.Join(crossHeadersDir, inTree)}
			for _, a := range rawHeadersArgs(k.Headers) {
				// A plain unpack's -f and KBUILD_OUTPUT name host paths.
				argv = append(argv, strings.ReplaceAll(a, headersRoot, crossHeadersDir))
			}
		} else {
			br, err := EnsureRoot(ctx, cacheDir, suite, k.Release, extra, ropts)
			if err != nil {
				return fail(fmt.Errorf("module build for %s: %w", k.Name, err))
			}
			res.BuildRootCreated, rootDir = br.Created, br.Dir
			res.Compiler = fmt.Sprintf("%s (%s build root)", cc, suite)
			argv = []string{"make", "-C", "/usr/src/linux-headers-" + k.Release}
		}
		argv = append(argv, "M="+chrootModuleDir)
		argv = append(argv, crossArgs...)
		argv = append(argv, "modules")
		argv = append(argv, opts.MakeArgs...)
		cmd = inRoot(ctx, rootDir, dir, headersRoot, argv)
		moduleDirs = []string{chrootModuleDir, dir}
	}
	cmd.Env = cleanEnv()
	var log bytes.Buffer
	cmd.Stdout = &log
	cmd.Stderr = &log
	res.Setup = time.Since(start)

	t0 := time.Now()
	err = cmd.Run()
	res.Duration = time.Since(t0)
	res.Log = log.String()
	var exit *exec.ExitError
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		res.Outcome = outcome.Timeout
		res.FirstError = &FirstError{Message: fmt.Sprintf("make did not finish before the deadline (%s)", res.Duration.Round(time.Millisecond))}
		return res, nil
	case ctx.Err() != nil:
		return res, fmt.Errorf("module build for %s: %w", k.Name, ctx.Err())
	case errors.As(err, &exit) && missingTool(res.Log) != "":
		// The kernel's build ran a tool the host or the root lacks: ours to fix, not the module's.
		where := "the host"
		if rootDir != "" {
			where = "the build root " + rootDir + " (delete it to have it made again)"
		}
		return res, fmt.Errorf("module build for %s: make ran %s, which %s lacks: kmatrix should have provided it (see build.Needs)",
			k.Name, missingTool(res.Log), where)
	case errors.As(err, &exit):
		res.Outcome = outcome.BuildError
		res.FirstError = ParseFirstError(res.Log, moduleDirs...)
		if res.FirstError == nil {
			res.FirstError = &FirstError{Message: fmt.Sprintf("make failed (%v) with no recognisable error in its output", err)}
		}
		return res, nil
	case err != nil:
		return res, fmt.Errorf("module build for %s: run make: %w", k.Name, err)
	}
	kos, _ := filepath.Glob(filepath.Join(dir, "*.ko"))
	if len(kos) != 1 {
		return res, fmt.Errorf("module build for %s: make succeeded but %s holds %d .ko files (%v): want exactly one", k.Name, dir, len(kos), kos)
	}
	// A module of the wrong machine or release would only fail later, in
	// the guest, as the payload's load-error: catch kmatrix's mistake here.
	if err := checkKo(kos[0], k, tg); err != nil {
		return res, fmt.Errorf("module build for %s: %w", k.Name, err)
	}
	res.Ko = kos[0]
	res.Outcome = outcome.Pass
	return res, nil
}

// All builds the module in srcDir for every kernel, up to opts.Jobs
// at once, and returns one result per kernel in the order of ks. A build
// error on one kernel does not stop the others; the error gathers (with
// go-multierror) only kmatrix's own failures, whose results say infra-error.
func All(ctx context.Context, ks []*kernels.Kernel, srcDir string, opts Options) ([]*Result, error) {
	if opts.OutDir == "" {
		dir, err := os.MkdirTemp("", "kmatrix-kmod-")
		if err != nil {
			return nil, err
		}
		opts.OutDir = dir
	}
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	results := make([]*Result, len(ks))
	errs := make([]error, len(ks))
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	for i, k := range ks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i], errs[i] = Module(ctx, k, srcDir, opts)
			if results[i] == nil {
				results[i] = &Result{Outcome: outcome.InfraError}
				if k != nil {
					results[i].Kernel, results[i].Release = k.Name, k.Release
				}
			}
		}()
	}
	wg.Wait()
	var merr *multierror.Error
	for _, err := range errs {
		if err != nil {
			merr = multierror.Append(merr, err)
		}
	}
	return results, merr.ErrorOrNil()
}

// checkSource makes sure srcDir looks like an out-of-tree module.
func checkSource(srcDir string) error {
	if srcDir == "" {
		return fmt.Errorf("%w: no source directory given: want the directory holding the module's Kbuild (see kmod.WriteSource)", ErrInput)
	}
	fi, err := os.Stat(srcDir)
	if err != nil {
		return fmt.Errorf("%w: source directory: %w", ErrInput, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: source %s is not a directory: want the directory holding the module's Kbuild", ErrInput, srcDir)
	}
	for _, f := range []string{"Kbuild", "Makefile"} {
		if _, err := os.Stat(filepath.Join(srcDir, f)); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%w: %s has neither a Kbuild nor a Makefile: it is not an out-of-tree module source", ErrInput, srcDir)
}

// suiteForGCC names the Debian suite whose default gcc has that major
// version, for kernels that do not say which suite built them (local
// kernels): bullseye shipped gcc-10, bookworm gcc-12, trixie gcc-14, and
// sid carries gcc-16 today.
// rootSuite is the suite of k's build root and the extra suites it needs:
// a kernel from another pocket of the root's suite ("bookworm-backports")
// has its headers there.
func rootSuite(k *kernels.Kernel) (suite string, extra []string) {
	suite = k.BuildRootSuite
	if suite == "" {
		suite = suiteForGCC[k.Compiler.Major]
	}
	if suite != "" && strings.HasPrefix(k.Suite, suite+"-") {
		extra = []string{k.Suite}
	}
	return suite, extra
}

var suiteForGCC = map[int]string{10: "bullseye", 12: "bookworm", 14: "trixie", 16: "sid"}

var (
	hostGCCMu    sync.Mutex
	hostGCCCache = map[string]bool{}
)

// hostHasGCC reports whether the host has the gcc command name (gcc-12,
// aarch64-linux-gnu-gcc-12) and it is version major (Debian's gcc-N names
// are trustworthy, other distributions' may be symlinks).
func hostHasGCC(name string, major int) bool {
	hostGCCMu.Lock()
	defer hostGCCMu.Unlock()
	if ok, done := hostGCCCache[name]; done {
		return ok
	}
	ok := false
	if path, err := exec.LookPath(name); err == nil {
		out, err := exec.Command(path, "-dumpversion").Output()
		if err == nil {
			v, _, _ := strings.Cut(strings.TrimSpace(string(out)), ".")
			n, err := strconv.Atoi(v)
			ok = err == nil && n == major
		}
	}
	hostGCCCache[name] = ok
	return ok
}

// inRoot runs argv chrooted into root with /proc mounted, hostDir bound on
// /build and, when headersRoot is set, headersRoot bound read-only on
// crossHeadersDir, in a private mount namespace so that no mount outlives
// the command or is seen by concurrent builds in the same root. Without
// root privileges it maps the caller to root in a user namespace (and
// needs a PID namespace to mount /proc).
func inRoot(ctx context.Context, root, hostDir, headersRoot string, argv []string) *exec.Cmd {
	args := []string{"--mount", "--propagation", "private"}
	if os.Geteuid() != 0 {
		args = append(args, "--map-root-user", "--pid", "--fork")
	}
	const script = `root=$1; dir=$2; headers=$3; shift 3
mount --bind "$dir" "$root` + chrootModuleDir + `"
if [ -n "$headers" ]; then mount --bind -o ro "$headers" "$root` + crossHeadersDir + `"; fi
mount -t proc proc "$root/proc"
exec chroot "$root" "$@"`
	args = append(args, "--", "sh", "-ec", script, "sh", root, hostDir, headersRoot)
	args = append(args, argv...)
	return exec.CommandContext(ctx, "unshare", args...)
}

// cleanEnv is the environment for make and mmdebstrap: the caller's minus
// make's own variables (a `make test` run would otherwise hand its
// jobserver and flags to the kernel's make) and locale, so that logs are
// in English and parseable.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES", "GNUMAKEFLAGS", "LANG", "LANGUAGE", "ARCH", "CROSS_COMPILE", "KBUILD_OUTPUT":
			continue
		}
		if strings.HasPrefix(k, "LC_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}

// rawHeadersArgs works around headers trees unpacked from Debian packages
// but not yet made self-contained: the flavour Makefile includes the
// -common tree by an absolute /usr/src path. When that path is missing
// and a sibling directory of the same name exists, make is pointed at the
// sibling's Makefile with -f (the kernel Makefile derives srctree from its
// own location and objtree from -C, so nothing else changes).
//
// Fetched trees are self-contained (package kernels rewrites the include);
// this still serves local kernels whose headers are a plain unpack.
func rawHeadersArgs(headers string) []string {
	data, err := os.ReadFile(filepath.Join(headers, "Makefile"))
	if err != nil {
		return nil
	}
	m := includeRE.FindSubmatch(data)
	if m == nil {
		return nil
	}
	inc := string(m[1])
	if _, err := os.Stat(inc); err == nil {
		return nil
	}
	real, err := filepath.EvalSymlinks(headers)
	if err != nil {
		return nil
	}
	sibling := filepath.Join(filepath.Dir(real), filepath.Base(filepath.Dir(inc)), "Makefile")
	if _, err := os.Stat(sibling); err != nil {
		return nil
	}
	return []string{"-f", sibling, "KBUILD_OUTPUT=" + real}
}

var includeRE = regexp.MustCompile(`(?m)^include (/\S+/Makefile)\s*$`)
