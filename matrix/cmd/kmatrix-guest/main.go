// Command kmatrix-guest runs inside a kmatrix guest VM: it loads every
// program of a user's BPF object on the running kernel, attaches each where
// its section says, optionally runs a check command while they are
// attached, and prints one JSON result per program and stage on stdout
// (decode them with guest.Decode).
//
//	kmatrix-guest [flags] object.o [-- check-command [args...]]
//	kmatrix-guest -batch [flags] object.o... [-- check-command [args...]]
//	kmatrix-guest -kmod [flags] module.ko [-- check-command [args...]]
//
// With -batch it runs every object in one worker process (itself, with
// -worker), so that the kernel's BTF is decoded once, and prints
// guest.BatchLines (decode them with guest.DecodeBatch): a worker that dies
// costs only the object it was on, which gets its own end with the
// evidence, while the objects not yet done are run again one process each
// (see guest.RunBatch).
//
// Prestarted in a guest snapshot (vmtest.Command.Prestart), it starts a
// spare worker while it waits for its run (guest.StartSpare): a -batch run
// then finds its shared worker started and warmed up.
//
// It exits 0 whenever it could report, even when every program failed
// (failures are data), 1 when the object itself is unusable, 2 on bad
// usage. It is built static (CGO_ENABLED=0): the guest has no libc, no
// shell and no coreutils.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/kmatrix/kmatrix/matrix/guest"
	"github.com/kmatrix/kmatrix/vmtest/prestart"
)

type programList []string

func (p *programList) String() string     { return fmt.Sprint(*p) }
func (p *programList) Set(v string) error { *p = append(*p, v); return nil }

// attachList collects -attach PROG=TARGET flags.
type attachList map[string]string

func (a attachList) String() string { return fmt.Sprint(map[string]string(a)) }
func (a attachList) Set(v string) error {
	prog, target, ok := strings.Cut(v, "=")
	if !ok || prog == "" || target == "" {
		return fmt.Errorf("%q: want PROGRAM=TARGET (PATH:SYMBOL for a uprobe, a program for freplace)", v)
	}
	a[prog] = target
	return nil
}

func main() {
	warmUp := startSpare
	if os.Getenv(guest.EnvSpare) != "" {
		warmUp = func() {
			warmed = btf.NewCache()
			guest.WarmUp(warmed)
		}
	}
	if _, err := prestart.Await(warmUp); err != nil {
		fmt.Fprintf(os.Stderr, "kmatrix-guest: %v\n", err)
		os.Exit(2)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// spare is the worker a prestarted kmatrix-guest started while it warmed
// up, until a -batch takes it; warmed is a spare worker's kernel BTF,
// decoded before its run.
var (
	spare  *guest.SpareWorker
	warmed *btf.Cache
)

// startSpare is the prestart warm-up: a spare worker; without one, a
// batch starts its worker as usual.
func startSpare() {
	if self, err := os.Executable(); err == nil {
		spare, _ = guest.StartSpare(exec.Command(self))
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kmatrix-guest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kmatrix-guest [flags] object.o [-- check-command [args...]]")
		fs.PrintDefaults()
	}
	var opts guest.Options
	var programs, noFire programList
	attach := attachList{}
	fs.Var(attach, "attach", "PROGRAM=TARGET: attach PROGRAM there (PATH:SYMBOL for a uprobe, a program for freplace; repeatable)")
	fs.Var(&noFire, "no-fire", "PROGRAM is not expected to run under the trigger workload (repeatable)")
	fs.StringVar(&opts.CgroupPath, "cgroup", "", "cgroup v2 directory for cgroup programs (default: the cgroup2 mount)")
	fs.Var(&programs, "program", "load only this program (repeatable)")
	fs.DurationVar(&opts.CheckTimeout, "check-timeout", 60*time.Second, "deadline of the check command")
	fs.IntVar(&opts.LogLines, "log-lines", 50, "verifier log lines kept from the end of a log")
	module := fs.Bool("kmod", false, "the argument is a kernel module (.ko): load it, run the check, unload it")
	batch := fs.Bool("batch", false, "the arguments are objects: run them all in one worker process, isolated as guest.RunBatch says")
	worker := fs.Bool("worker", false, "be a batch worker: read object paths on stdin (kmatrix-guest -batch starts these)")
	objectTimeout := fs.Duration("object-timeout", 5*time.Minute, "with -batch: the time limit of each object in a worker")
	fs.StringVar(&opts.ModuleDir, "modules", "", "directory of the running kernel's modules (.ko, .ko.xz) that programs may need (sch_ingress, cls_bpf, ...)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // asked for the usage, got it
		}
		return 2
	}
	defer func() {
		if spare != nil { // not a -batch: nothing takes it
			spare.Close()
			spare = nil
		}
	}()
	flagArgs := args[:len(args)-len(fs.Args())]
	rest := fs.Args()
	var objects []string
	if *batch || *worker {
		for len(rest) > 0 && rest[0] != "--" {
			objects, rest = append(objects, rest[0]), rest[1:]
		}
		if len(objects) > 0 {
			rest = append([]string{objects[0]}, rest...)
		}
	}
	if len(rest) == 0 {
		fmt.Fprintln(stderr, "kmatrix-guest: no BPF object given: pass the path of a BPF ELF object")
		fs.Usage()
		return 2
	}
	object := rest[0]
	rest = rest[1:]
	if len(rest) > 0 {
		if rest[0] != "--" {
			fmt.Fprintf(stderr, "kmatrix-guest: unexpected argument %q after the object: put the check command after \"--\"\n", rest[0])
			return 2
		}
		opts.Check = rest[1:]
		if len(opts.Check) == 0 {
			fmt.Fprintln(stderr, "kmatrix-guest: \"--\" is not followed by a check command")
			return 2
		}
	}
	if opts.LogLines < 1 {
		fmt.Fprintf(stderr, "kmatrix-guest: -log-lines %d: want at least 1\n", opts.LogLines)
		return 2
	}
	opts.Programs = programs
	opts.NoFire = noFire
	opts.Attach = attach

	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; the guest
	// init raises it, but kmatrix-guest may also run elsewhere.
	if err := rlimit.RemoveMemlock(); err != nil {
		fmt.Fprintf(stderr, "kmatrix-guest: warning: raising RLIMIT_MEMLOCK: %v\n", err)
	}

	if *worker {
		if warmed != nil {
			opts.BTF = warmed
		}
		if err := guest.ServeBatch(os.Stdin, stdout, opts); err != nil {
			fmt.Fprintf(stderr, "kmatrix-guest: worker: %v\n", err)
			return 1
		}
		return 0
	}
	if *batch {
		self, err := os.Executable()
		if err != nil {
			fmt.Fprintf(stderr, "kmatrix-guest: finding its own binary for the workers: %v\n", err)
			return 1
		}
		// The worker gets the same flags and check; its comm stays
		// "kmatrix-guest" (exec'd by its path, not /proc/self/exe).
		// "-" stands for the objects, which come on stdin.
		wargs := append(append([]string{"-worker"}, flagArgs...), "-")
		if len(opts.Check) > 0 {
			wargs = append(append(wargs, "--"), opts.Check...)
		}
		bo := guest.BatchOptions{ObjectTimeout: *objectTimeout, Worker: func() *exec.Cmd { return exec.Command(self, wargs...) }}
		if spare != nil {
			dir, _ := os.Getwd()
			bo.Spare, bo.SpareArgs, bo.SpareEnv, bo.SpareDir = spare, append([]string{self}, wargs...), os.Environ(), dir
			spare = nil
		}
		if err := guest.RunBatch(objects, bo, stdout); err != nil {
			fmt.Fprintf(stderr, "kmatrix-guest: %v\n", err)
			return 1
		}
		return 0
	}
	var writeErr error
	opts.OnResult = func(r guest.ProgramResult) {
		// Stream each result as it is known: if the kernel crashes on the
		// next program, the host still has these.
		if err := guest.Encode(stdout, r); err != nil && writeErr == nil {
			writeErr = err
		}
	}
	if *module {
		guest.LoadModule(object, opts)
		if writeErr != nil {
			fmt.Fprintf(stderr, "kmatrix-guest: writing results: %v\n", writeErr)
			return 1
		}
		return 0
	}
	_, err := guest.LoadObject(object, opts)
	if err != nil {
		// Only an unusable object (*guest.ObjectError) gets here.
		fmt.Fprintf(stderr, "kmatrix-guest: %v\n", err)
		return 1
	}
	if writeErr != nil {
		fmt.Fprintf(stderr, "kmatrix-guest: writing results: %v\n", writeErr)
		return 1
	}
	return 0
}
