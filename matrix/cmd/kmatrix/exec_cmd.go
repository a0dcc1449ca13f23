package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"golang.org/x/term"

	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/matrix"
	"github.com/kmatrix/kmatrix/vmtest"
)

func init() {
	commands["exec"] = command{summary: "run a command inside a kernel (also a `go test -exec` adapter)", run: execCmd}
}

func execCmd(ctx context.Context, args []string) int {
	return execMain(ctx, args, os.Stdin, os.Stdout, os.Stderr)
}

// execMain is `kmatrix exec`: it boots the kernel, copies the command in
// (a host binary with its ELF interpreter and libraries), runs it with the
// output streamed, and exits with its exit status. With `go test -exec
// 'kmatrix exec --kernel NAME --'`, go test passes the test binary's path
// and flags: the package's tests run inside that kernel.
func execMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kmatrix exec", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kernel := fs.String("kernel", "", "kernel `NAME` from the catalog, or a directory holding vmlinuz and config")
	timeout := fs.Duration("timeout", 0, "deadline for the whole VM (default: 10m, or the test binary's -test.timeout plus 2m)")
	mem := fs.Int("memory", vmtest.DefaultMemoryMB, "guest memory in `MiB`")
	cpus := fs.Int("cpus", vmtest.DefaultCPUs, "guest vCPUs")
	console := fs.Bool("console", false, "copy the kernel console to stderr as it runs")
	testdata := fs.Bool("testdata", true, "copy ./testdata into the guest (go test runs a test binary in its package directory)")
	forwardStdin := fs.Bool("stdin", true, "give CMD kmatrix's standard input, read to its end before the VM starts (never a terminal: CMD then reads /dev/null)")
	var env, files multiFlag
	fs.Var(&env, "env", "`KEY=VALUE` for the command's environment (repeatable)")
	fs.Var(&files, "file", "`HOST:GUEST` file to copy into the guest (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: kmatrix exec --kernel NAME [flags] -- CMD [ARG...]

Boots NAME in QEMU, runs CMD inside it and exits with CMD's exit status.
CMD is a host executable (copied in with its shared libraries) or a bare
name from the host PATH. As a go test adapter:

    go test -exec 'kmatrix exec --kernel debian-sid --' ./pkg

Standard input is read to its end before the kernel boots and is CMD's
standard input in the guest (echo hi | kmatrix exec ... -- cat); a terminal
is not read, and --stdin=false leaves it alone (CMD reads /dev/null).

Exit status: CMD's own; 1 when CMD succeeded but the kernel panicked,
oopsed or warned; 124 when the VM timed out; 125 when the VM could not run.

flags:`)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if err := checkRanges(fs,
		rangeCheck{"timeout", *timeout > 0 || *timeout == 0 && !isSet(fs, "timeout"), "want a positive duration, e.g. 5m (leave it out for the default)"},
		rangeCheck{"memory", *mem >= 128, "want at least 128 MiB: the cloud kernels do not boot in less"},
		rangeCheck{"cpus", *cpus >= 1, "want at least 1 vCPU"}); err != nil {
		fmt.Fprintf(stderr, "kmatrix exec: %v\n", err)
		return exitUsage
	}
	cmdArgs := fs.Args()
	if *kernel == "" || len(cmdArgs) == 0 {
		fmt.Fprintln(stderr, "kmatrix exec: want --kernel NAME and a command after --, e.g.: kmatrix exec --kernel debian-sid -- uname -r")
		return exitUsage
	}
	k, err := resolveKernel(ctx, *kernel)
	if err != nil {
		fmt.Fprintf(stderr, "kmatrix exec: kernel %q: %v\n", *kernel, err)
		return exitExecInfra
	}

	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(stderr, "kmatrix exec: %v\n", err)
		return exitExecInfra
	}
	cmd := vmtest.Command{Name: filepath.Base(cmdArgs[0]), Path: cmdArgs[0], Args: cmdArgs[1:], Env: env, Dir: wd, Stdout: stdout, Stderr: stderr}
	if f, ok := stdin.(*os.File); *forwardStdin && stdin != nil && !(ok && term.IsTerminal(int(f.Fd()))) {
		// Interactive input cannot reach a guest that has no channel
		// from the host once it runs; anything else is shipped whole.
		cmd.Stdin = stdin
	}
	if strings.Contains(cmdArgs[0], "/") {
		// A host file (go test's test binary): into the guest at the same
		// absolute path, so that os.Args[0] reads the same in both.
		abs, err := filepath.Abs(cmdArgs[0])
		if err != nil {
			fmt.Fprintf(stderr, "kmatrix exec: %v\n", err)
			return exitUsage
		}
		if _, err := os.Stat(abs); err == nil {
			cmd.Host, cmd.Path = abs, abs
		}
	}
	spec := vmtest.Spec{Kernel: k.Vmlinuz, Commands: []vmtest.Command{cmd}, MemoryMB: *mem, CPUs: *cpus, Timeout: *timeout,
		Files: matrix.KernelFiles(k)}
	if spec.Timeout == 0 {
		spec.Timeout = defaultExecTimeout(cmdArgs[1:])
	}
	if *console {
		spec.Console = stderr
	}
	for _, f := range files {
		host, guest, ok := strings.Cut(f, ":")
		if !ok || host == "" || guest == "" {
			fmt.Fprintf(stderr, "kmatrix exec: --file %q: want HOST:GUEST, e.g. --file ./prog.o:/payload/prog.o\n", f)
			return exitUsage
		}
		spec.Files = append(spec.Files, vmtest.File{Host: host, Guest: guest})
	}
	if *testdata {
		td, err := dirFiles(filepath.Join(wd, "testdata"))
		if err != nil {
			fmt.Fprintf(stderr, "kmatrix exec: %v\n", err)
			return exitExecInfra
		}
		spec.Files = append(spec.Files, td...)
	}

	res, err := vmtest.Run(ctx, spec)
	if res == nil {
		fmt.Fprintf(stderr, "kmatrix exec: %v\n", err)
		if errors.Is(err, vmtest.ErrInvalidSpec) {
			return exitUsage
		}
		return exitExecInfra
	}
	c := res.Commands[0]
	switch res.Outcome {
	case outcome.Pass, outcome.Fail:
		if c.Err != "" {
			fmt.Fprintf(stderr, "kmatrix exec: %s\n", c.Err)
			return exitExecInfra
		}
		return c.ExitCode
	case outcome.Timeout:
		fmt.Fprintf(stderr, "kmatrix exec: %s: %s\n%s\n", k.Name, res.Err, res.Excerpt)
		return exitExecTimeout
	case outcome.InfraError:
		fmt.Fprintf(stderr, "kmatrix exec: %s: %s\n%s\n", k.Name, res.Err, res.Excerpt)
		return exitExecInfra
	default: // kernel-panic, oops, splat
		fmt.Fprintf(stderr, "kmatrix exec: %s: the kernel reported %s:\n%s\n", k.Name, res.Outcome, res.Excerpt)
		if c.Err == "" && c.ExitCode > 0 {
			return c.ExitCode
		}
		return 1
	}
}

// resolveKernel turns --kernel into a kernel: a directory of a local
// kernel (vmlinuz + config), a sub-directory of $KMATRIX_KERNELS_DIR (as
// the tests use), or a catalog name, resolved and fetched into the cache.
func resolveKernel(ctx context.Context, name string) (*kernels.Kernel, error) {
	if fi, err := os.Stat(name); err == nil && fi.IsDir() {
		return kernels.LoadLocal(filepath.Base(filepath.Clean(name)), name)
	}
	if dir := os.Getenv("KMATRIX_KERNELS_DIR"); dir != "" {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.IsDir() {
			return kernels.LoadLocal(name, filepath.Join(dir, name))
		}
	}
	// The default catalog's kernels, then the arm64 ones (debian-sid-arm64).
	var sel *kernels.Catalog
	var known []string
	for _, n := range []string{"default", "arm64"} {
		cat, _, err := kernels.Shipped(n)
		if err != nil {
			return nil, err
		}
		if s, err := cat.Select([]string{name}); err == nil {
			sel = s
			break
		}
		for _, e := range cat.Kernels {
			known = append(known, e.Name)
		}
	}
	if sel == nil {
		return nil, fmt.Errorf("not a directory, and not in kmatrix's catalogs, which have: %s", strings.Join(known, ", "))
	}
	opts := kernels.Options{Progress: os.Stderr}
	rs, err := kernels.Resolve(ctx, sel, opts)
	if err != nil {
		return nil, err
	}
	if len(rs) != 1 {
		return nil, fmt.Errorf("the catalog resolved %d kernels for %q, want 1", len(rs), name)
	}
	return kernels.Fetch(ctx, rs[0], opts)
}

// defaultExecTimeout gives a test binary its own -test.timeout plus time to
// boot and report; otherwise go test's default of 10 minutes.
func defaultExecTimeout(args []string) time.Duration {
	for i, a := range args {
		v, ok := strings.CutPrefix(a, "-test.timeout=")
		if !ok && a == "-test.timeout" && i+1 < len(args) {
			v, ok = args[i+1], true
		}
		if d, err := time.ParseDuration(v); ok && err == nil && d > 0 {
			return d + 2*time.Minute
		}
	}
	return 10 * time.Minute
}

// dirFiles lists the regular files under dir as guest files at the same
// paths; a missing dir is no files.
func dirFiles(dir string) ([]vmtest.File, error) {
	var files []vmtest.File
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == dir {
			return filepath.SkipDir
		}
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, vmtest.File{Host: p, Guest: p})
		}
		return nil
	})
	return files, err
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
