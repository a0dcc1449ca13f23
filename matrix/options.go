package matrix

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/matrix/expect"
)

// Options configure Run, and the `kmatrix run` flags map onto them one to one.
type Options struct {
	// Catalog is a catalog file, or the name of a catalog kmatrix ships:
	// "default" (one kernel per Debian suite; also when empty), "series"
	// (one kernel per upstream series), "arm64" (Debian's arm64 cloud
	// kernels of bookworm and sid, booted with qemu-system-aarch64) or
	// "series-arm64" (one arm64 kernel per upstream series).
	Catalog string
	// Arch keeps the catalog's kernels of one architecture ("amd64",
	// "arm64"); empty keeps them all. With no Catalog (or "default"),
	// "arm64" picks the shipped arm64 catalog: the default one is amd64's;
	// with "series", series-arm64.
	Arch string
	// Kernels selects catalog entries by name; empty means all of them.
	Kernels []string
	// Payloads selects built-in payloads ("bpf", "kmod"). Nil means both,
	// unless other payloads are given, in which case it means none.
	Payloads []string
	// BPFObjects are users' BPF ELF objects: every program in each is
	// loaded and attached where its section says, on every kernel.
	BPFObjects []string
	// KmodDirs are users' out-of-tree module source directories (with their
	// own Kbuild/Makefile): built per kernel, loaded, unloaded.
	KmodDirs []string
	// CheckCmd is an optional command run in each guest after the user
	// payloads are loaded and attached (no shell: argv[0] is executed).
	// When argv[0] is a file on the host it is copied into the guest; the
	// guest has no libc, so make it a static binary.
	CheckCmd []string
	// Attach names attach targets the user's BPF objects' sections do not
	// give, as "PROGRAM=TARGET": PATH:SYMBOL for a uprobe (PATH in the
	// guest; ship it with Files), a program of the same object for an
	// freplace program.
	Attach []string
	// Files are "HOST:GUEST" pairs: host files copied into every guest (the
	// binaries uprobes attach to, data a check needs).
	Files []string
	// NoFire lists programs of the user's objects that are not expected
	// to run under the trigger workload: 0 runs is a pass for them, not
	// never-ran.
	NoFire []string
	// GoTests are Go package patterns, as `go test` takes them, relative
	// to the working directory (your module): each package's tests are
	// built static with your Go toolchain and run in every guest, one cell
	// per test and subtest. GoTestArgs are passed to every test binary
	// ("-test.run=X", "-test.count=2").
	GoTests    []string
	GoTestArgs []string
	// Extra are payloads of kinds of the caller's own making (see
	// Payload), run after the built-in and user payloads.
	Extra []Payload
	// OutDir receives report.json, report.md, report.html and junit.xml;
	// empty writes nothing.
	OutDir string
	// Parallel is how many kernels run at once; 0 means one per CPU.
	Parallel int
	// Shard runs only this shard of the selected kernels.
	Shard Shard
	// Float re-resolves the catalog to the newest kernels instead of the lock file.
	Float bool
	// AllowExpired accepts archive indexes past their Valid-Until.
	AllowExpired bool
	// Baseline is a previous report.json to diff against; regressions make
	// Run return ErrRegression (after writing the report and diff.md).
	Baseline string
	// Expect is an expectations file (package matrix/expect): cells it
	// declares failing keep their outcome and are marked expected.
	Expect string
	// Expectations are more expectations, already parsed (e.g. from a
	// project file); they apply after those of Expect.
	Expectations expect.Set
	// Progress receives progress lines (live on a terminal); nil is silent.
	Progress io.Writer
	// Timeout bounds each kernel's VM; 0 means 10 minutes.
	Timeout time.Duration
	// CommandTimeout bounds each guest command of a payload (a test
	// binary, an object's or module's loader) that sets no limit of its
	// own; past it the guest stops the command, and its checks are
	// timeouts, while the other payloads go on. 0 means 5 minutes.
	CommandTimeout time.Duration
	// Cold boots every kernel instead of restoring a snapshot of it booted
	// (vmtest.Spec.Cold); reports then show cold rows.
	Cold bool
	// MeasureFloor boots each kernel once more with an init that powers
	// off at once, and records that bare-boot floor in the report
	// (Kernel.FloorMS), so that what the checks cost beyond booting shows.
	MeasureFloor bool

	progress *Progress
}

func (o Options) withDefaults() Options {
	if o.Payloads == nil && len(o.BPFObjects)+len(o.KmodDirs)+len(o.GoTests)+len(o.Extra) == 0 {
		o.Payloads = []string{PayloadBPF, PayloadKmod}
	}
	if o.Parallel <= 0 {
		o.Parallel = runtime.NumCPU()
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 5 * time.Minute
	}
	if o.progress == nil {
		o.progress = NewProgress(o.Progress)
	}
	return o
}

// validate checks what can be checked before anything is downloaded or booted.
func (o Options) validate() error {
	if o.Arch != "" && !slices.Contains(kernels.Arches, o.Arch) {
		return fmt.Errorf("--arch %s: kmatrix boots %s kernels: want one of them", o.Arch, strings.Join(kernels.Arches, " and "))
	}
	for _, p := range o.Payloads {
		if p != PayloadBPF && p != PayloadKmod {
			return fmt.Errorf("payload %q: kmatrix has the built-in payloads %q and %q; test your own with --bpf FILE.o or --kmod DIR", p, PayloadBPF, PayloadKmod)
		}
	}
	for _, f := range o.BPFObjects {
		if fi, err := os.Stat(f); err != nil || fi.IsDir() {
			return fmt.Errorf("--bpf %s: not a readable file: want a BPF ELF object built with clang -target bpf", f)
		}
	}
	for _, a := range o.Attach {
		if prog, target, ok := strings.Cut(a, "="); !ok || prog == "" || target == "" {
			return fmt.Errorf("--attach %s: want PROGRAM=TARGET, e.g. my_uprobe=/usr/bin/myagent:main.handle (PATH:SYMBOL for a uprobe, a program for freplace)", a)
		}
	}
	for _, f := range o.Files {
		host, guest, ok := strings.Cut(f, ":")
		if !ok || host == "" || !strings.HasPrefix(guest, "/") {
			return fmt.Errorf("--file %s: want HOST:GUEST, the guest path absolute, e.g. ./myagent:/usr/bin/myagent", f)
		}
		if fi, err := os.Stat(host); err != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("--file %s: %s is not a readable file on the host", f, host)
		}
	}
	for _, d := range o.KmodDirs {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() {
			return fmt.Errorf("--kmod %s: not a directory: want an out-of-tree module source directory with a Kbuild or Makefile", d)
		}
		_, e1 := os.Stat(d + "/Kbuild")
		_, e2 := os.Stat(d + "/Makefile")
		if e1 != nil && e2 != nil {
			return fmt.Errorf("--kmod %s: no Kbuild or Makefile in it: kmatrix builds it with `make -C <headers> M=%s modules`", d, d)
		}
	}
	return nil
}
