package vmtest

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
)

// testTmp is TMPDIR for the whole test binary: TestMain checks that
// nothing is left in it.
var testTmp string

func TestMain(m *testing.M) {
	var err error
	testTmp, err = os.MkdirTemp("", "vmtest-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("TMPDIR", testTmp)
	code := m.Run()
	if left := ownQEMUs(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: QEMU processes left behind: %v\n", left)
		code = 1
	}
	if ents, _ := os.ReadDir(testTmp); len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		fmt.Fprintf(os.Stderr, "FAIL: temporary files left behind in %s: %v\n", testTmp, names)
		code = 1
	}
	os.RemoveAll(testTmp)
	os.Exit(code)
}

// ownQEMUs lists QEMU processes that are children of this test binary.
func ownQEMUs() []string {
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	var own []string
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ..."; comm may hold spaces, so split after ")".
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < 0 {
			continue
		}
		f := strings.Fields(s[close+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		if ppid == os.Getpid() && strings.Contains(s[open+1:close], "qemu") {
			own = append(own, strings.TrimSpace(s[:open])+" "+s[open:close+1])
		}
	}
	return own
}

// noQEMULeft checks, when the test (and its subtests) end, that it left
// no QEMU running. Top-level tests are not parallel, so any QEMU child of
// this process at that point is a leftover of this test.
func noQEMULeft(t *testing.T) {
	t.Cleanup(func() { assert.Empty(t, ownQEMUs(), "QEMU left behind") })
}

var guestprogOnce struct {
	sync.Once
	path string
	err  error
}

// guestprog builds the misbehaving helper the tests run in guests.
func guestprog(t *testing.T) string {
	guestprogOnce.Do(func() {
		guestprogOnce.path, guestprogOnce.err = BuildBinary(context.Background(), "./internal/guestprog")
	})
	require.NoError(t, guestprogOnce.err)
	return guestprogOnce.path
}

// gp is a guestprog command.
func gp(t *testing.T, name string, args ...string) Command {
	return Command{Name: name, Host: guestprog(t), Path: "/usr/local/bin/guestprog", Args: args}
}

// newest is the newest default kernel: the single-kernel tests use it.
func newest(t *testing.T) *kernels.Kernel {
	ks := kernelstest.Default(t)
	require.NotEmpty(t, ks)
	return ks[len(ks)-1]
}

func run(t *testing.T, spec Spec) *Result {
	t.Helper()
	if spec.Timeout == 0 {
		spec.Timeout = 3 * time.Minute
	}
	var console bytes.Buffer
	if spec.Console == nil {
		spec.Console = &lockedBuffer{b: &console}
	}
	res, err := Run(context.Background(), spec)
	require.NoError(t, err, "console:\n%s", console.String())
	require.NotNil(t, res)
	t.Logf("%s: %s in %v (%s: %s)", filepath.Base(filepath.Dir(spec.Kernel)), res.Outcome, res.Timings.Total.Round(time.Millisecond), res.Accel, res.AccelReason)
	return res
}

// cpuFlags are the "flags" of the first CPU in /proc/cpuinfo.
func cpuFlags(t *testing.T, cpuinfo string) []string {
	t.Helper()
	for _, l := range strings.Split(cpuinfo, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "flags" {
			return strings.Fields(v)
		}
	}
	t.Fatalf("no flags line in /proc/cpuinfo:\n%s", cpuinfo)
	return nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestBootEveryKernel(t *testing.T) {
	noQEMULeft(t)
	for _, k := range kernelstest.Default(t) {
		t.Run(k.Name, func(t *testing.T) {
			t.Parallel()
			res := run(t, Spec{
				Kernel: k.Vmlinuz,
				Files:  []File{{Data: []byte("hello\n"), Guest: "/data/greeting"}},
				Commands: []Command{
					{Path: "uname", Args: []string{"-r"}},
					gp(t, "mounts", "mounts"),
					func() Command {
						c := gp(t, "echo", "echo", "a b", "c")
						c.Env, c.Dir = []string{"FOO=bar"}, "/work"
						return c
					}(),
					gp(t, "stat", "stat", "/data/greeting", "/dev/ttyS1", "/tmp"),
					{Path: "cat", Args: []string{"/proc/cpuinfo"}},
				},
			})
			require.Equal(t, outcome.Pass, res.Outcome, "%s\n%s", res.Err, res.Console)
			require.Len(t, res.Commands, 5)
			for _, c := range res.Commands {
				assert.Equal(t, 0, c.ExitCode, c.Name)
				assert.Empty(t, c.Err, c.Name)
			}
			assert.Equal(t, "uname", res.Commands[0].Name)
			assert.Equal(t, k.Release+"\n", string(res.Commands[0].Stdout), "uname -r in the guest")

			mounts := string(res.Commands[1].Stdout)
			// Field 1 is the mount source, which 5.10's bpffs shows as "none".
			for _, m := range []string{" /proc proc ", " /sys sysfs ", " /dev devtmpfs ", " /sys/kernel/debug debugfs ",
				" /sys/kernel/tracing tracefs ", " /sys/fs/bpf bpf ", " /sys/fs/cgroup cgroup2 "} {
				assert.Contains(t, mounts, m)
			}
			assert.Empty(t, res.Warnings, "every default kernel has every filesystem the init mounts")
			assert.NotContains(t, string(res.Console), "feature dependency check failure", "the emulated CPU's features must be consistent")

			echo := string(res.Commands[2].Stdout)
			assert.Contains(t, echo, "args=a b,c\n")
			assert.Contains(t, echo, "cwd=/work\n")
			assert.Contains(t, echo, "env FOO=bar\n")
			assert.Contains(t, echo, "env HOME=/root\n")
			assert.Equal(t, "to stderr\n", string(res.Commands[2].Stderr))
			assert.Equal(t, "/data/greeting exists=true\n/dev/ttyS1 exists=true\n/tmp exists=true\n", string(res.Commands[3].Stdout))

			if res.Accel == "tcg" {
				// The emulated CPU keeps what BPF's JIT looks for and
				// drops what TCG emulates slowly (qemu.go).
				flags := cpuFlags(t, string(res.Commands[4].Stdout))
				for _, f := range []string{"bmi1", "bmi2", "smap", "smep", "popcnt", "movbe"} {
					assert.Contains(t, flags, f, "guest CPU flags")
				}
				for _, f := range []string{"erms", "avx", "avx2", "fma", "f16c", "aes", "pclmulqdq", "vaes"} {
					assert.NotContains(t, flags, f, "guest CPU flags")
				}
			}

			require.NotEmpty(t, res.Snapshot, "a run restores its machine's snapshot by default (cold because: %s)", res.ColdReason)
			checkTimings(t, res)
			assert.Contains(t, []string{"kvm", "tcg"}, res.Accel)
			assert.NotEmpty(t, res.AccelReason)
		})
	}
}

// checkTimings checks that the phases of a run add up, restored or cold.
func checkTimings(t *testing.T, res *Result) {
	t.Helper()
	tm := res.Timings
	if res.Snapshot != "" {
		assert.Positive(t, tm.Restore)
		assert.Zero(t, tm.QEMUStart)
		assert.Zero(t, tm.Kernel)
	} else {
		assert.Zero(t, tm.Restore)
		if res.Arch != archARM64 { // arm64 has no firmware stage (Timings.QEMUStart)
			assert.Positive(t, tm.QEMUStart)
		}
		assert.Positive(t, tm.Kernel)
	}
	assert.Positive(t, tm.Commands)
	// Times are the host's, of the events' arrival: on a loaded host the
	// last command's exit may be read after QEMU has exited, which leaves
	// the power-off no measurable time.
	assert.GreaterOrEqual(t, tm.Poweroff, time.Duration(0))
	assert.Equal(t, tm.Total, tm.Restore+tm.QEMUStart+tm.Kernel+tm.Init+tm.Commands+tm.Poweroff, "the phases add up to the total")
}

// TestColdBootWhenAsked: Spec.Cold boots the kernel with the run's
// initramfs, as a machine with no snapshot does.
func TestColdBootWhenAsked(t *testing.T) {
	noQEMULeft(t)
	k := newest(t)
	res := run(t, Spec{Kernel: k.Vmlinuz, Cold: true,
		Files:    []File{{Data: []byte("hello\n"), Guest: "/data/greeting"}},
		Commands: []Command{{Path: "uname", Args: []string{"-r"}}, gp(t, "stat", "stat", "/data/greeting")}})
	require.Equal(t, outcome.Pass, res.Outcome, "%s\n%s", res.Err, res.Console)
	assert.Empty(t, res.Snapshot)
	assert.Equal(t, "Spec.Cold", res.ColdReason)
	assert.Equal(t, k.Release+"\n", string(res.Commands[0].Stdout))
	assert.Equal(t, "/data/greeting exists=true\n", string(res.Commands[1].Stdout))
	checkTimings(t, res)
}

func TestCommandThatDoesNotExist(t *testing.T) {
	noQEMULeft(t)
	res := run(t, Spec{
		Kernel:   newest(t).Vmlinuz,
		Commands: []Command{{Path: "/bin/nope"}, gp(t, "exit3", "exit", "3"), gp(t, "after", "exit", "0")},
	})
	assert.Equal(t, outcome.Fail, res.Outcome)
	assert.Equal(t, CommandResult{Name: "nope", ExitCode: -1, Err: "exec /bin/nope: no such file or directory", Stdout: []byte{}, Stderr: []byte{}}, res.Commands[0])
	assert.Equal(t, 3, res.Commands[1].ExitCode)
	assert.Empty(t, res.Commands[1].Err)
	assert.Equal(t, 0, res.Commands[2].ExitCode, "commands after a failure still run")
	assert.Empty(t, res.Phase)
}

func TestCommandStdin(t *testing.T) {
	noQEMULeft(t)
	in := append([]byte("hello from the host\n"), bytes.Repeat([]byte{0, 1, 2, 0xff}, 4<<10)...) // 16 KiB, binary
	withIn := gp(t, "cat", "cat")
	withIn.Stdin = bytes.NewReader(in)
	res := run(t, Spec{Kernel: newest(t).Vmlinuz, Commands: []Command{withIn, gp(t, "cat-null", "cat")}})
	require.Equal(t, outcome.Pass, res.Outcome, "%+v", res.Commands)
	assert.Equal(t, in, res.Commands[0].Stdout, "the guest command read the host's input, byte for byte")
	assert.Equal(t, fmt.Sprintf("copied %d bytes\n", len(in)), string(res.Commands[0].Stderr))
	assert.Empty(t, res.Commands[1].Stdout)
	assert.Equal(t, "copied 0 bytes\n", string(res.Commands[1].Stderr), "without Stdin: /dev/null")
}

func TestGuestThatHangs(t *testing.T) {
	noQEMULeft(t)
	const deadline = 25 * time.Second
	start := time.Now()
	res := run(t, Spec{
		Kernel:   newest(t).Vmlinuz,
		Commands: []Command{gp(t, "hang", "hang"), gp(t, "never", "exit", "0")},
		Timeout:  deadline,
	})
	elapsed := time.Since(start)
	assert.Equal(t, outcome.Timeout, res.Outcome)
	assert.Equal(t, "command hang", res.Phase)
	assert.Equal(t, "timeout", res.Commands[0].Err)
	assert.Equal(t, "hanging\n", string(res.Commands[0].Stdout), "output before the hang is kept")
	assert.Equal(t, "not run: timeout", res.Commands[1].Err)
	assert.NotEmpty(t, res.Excerpt, "the console tail at the timeout")
	assert.Contains(t, res.Err, `timeout in phase "command hang"`)
	// A bound, not a speed measurement: the run ends at its deadline, not
	// whenever the guest would have.
	assert.Less(t, elapsed, deadline+15*time.Second)
}

func TestCommandTimeoutIsEnforcedInTheGuest(t *testing.T) {
	noQEMULeft(t)
	hang := gp(t, "hang", "hang")
	hang.Timeout = 3 * time.Second
	res := run(t, Spec{
		Kernel:   newest(t).Vmlinuz,
		Commands: []Command{hang, gp(t, "after", "exit", "0")},
	})
	assert.Equal(t, outcome.Timeout, res.Outcome)
	assert.Equal(t, "command hang", res.Phase)
	assert.Equal(t, "timeout", res.Commands[0].Err)
	assert.Equal(t, -1, res.Commands[0].ExitCode)
	assert.GreaterOrEqual(t, res.Commands[0].Duration, 3*time.Second)
	assert.Equal(t, 0, res.Commands[1].ExitCode, "the VM goes on with the next command")
	assert.Empty(t, res.Commands[1].Err)
}

func TestGuestThatPanics(t *testing.T) {
	noQEMULeft(t)
	for _, k := range kernelstest.Default(t) {
		t.Run(k.Name, func(t *testing.T) {
			t.Parallel()
			res := run(t, Spec{
				Kernel:   k.Vmlinuz,
				Commands: []Command{gp(t, "crash", "sysrq", "c"), gp(t, "never", "exit", "0")},
			})
			assert.Equal(t, outcome.KernelPanic, res.Outcome)
			assert.Contains(t, res.Excerpt, "Kernel panic - not syncing: sysrq triggered crash")
			assert.Contains(t, res.Excerpt, "Call Trace:")
			assert.Equal(t, "the kernel panicked", res.Commands[0].Err)
			assert.Equal(t, -1, res.Commands[0].ExitCode)
			assert.Equal(t, "not run: the kernel panicked", res.Commands[1].Err)
			assert.Equal(t, "command crash", res.Phase, "the phase the panic came in")
			assert.NotEmpty(t, res.Snapshot, "a restored guest's console is scanned as a booted one's")
		})
	}
}

func TestQEMUKilledFromOutside(t *testing.T) {
	noQEMULeft(t)
	started := make(chan struct{})
	var once sync.Once
	hang := gp(t, "hang", "hang")
	hang.Stdout = writerFunc(func(p []byte) {
		if bytes.Contains(p, []byte("hanging")) {
			once.Do(func() { close(started) })
		}
	})
	go func() {
		select {
		case <-started:
		case <-time.After(3 * time.Minute):
			return
		}
		for _, q := range ownQEMUs() {
			pid, _ := strconv.Atoi(strings.Fields(q)[0])
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}()
	res, err := Run(context.Background(), Spec{Kernel: newest(t).Vmlinuz, Commands: []Command{hang}, Timeout: 3 * time.Minute})
	require.ErrorIs(t, err, ErrInfra)
	assert.ErrorContains(t, err, "QEMU exited: signal: killed")
	require.NotNil(t, res)
	assert.Equal(t, outcome.InfraError, res.Outcome)
	assert.Equal(t, "the VM stopped", res.Commands[0].Err)
	assert.Equal(t, "hanging\n", string(res.Commands[0].Stdout))
	assert.Empty(t, ownQEMUs())
}

type writerFunc func(p []byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

func TestOutputFlood(t *testing.T) {
	noQEMULeft(t)
	const limit = 64 << 10
	var live bytes.Buffer
	flood := gp(t, "flood", "flood", strconv.Itoa(50<<20))
	flood.Stdout = &live
	res := run(t, Spec{Kernel: newest(t).Vmlinuz, Commands: []Command{flood}, OutputLimit: limit})
	assert.Equal(t, outcome.Pass, res.Outcome, res.Err)
	out := res.Commands[0].Stdout
	assert.LessOrEqual(t, len(out), limit+100, "the kept output is bounded by OutputLimit")
	assert.True(t, bytes.HasPrefix(out, []byte("line 000000000 of the flood")), "the head is kept")
	assert.True(t, bytes.HasSuffix(out, []byte("\nEND\n")), "the tail is kept")
	assert.Regexp(t, `\n\[vmtest: \d+ bytes of output left out here\]\n`, string(out))
	assert.LessOrEqual(t, live.Len(), limit+100, "the guest sent only the bounded output over the serial port")
}

func TestMissingQEMU(t *testing.T) {
	k := newest(t)
	t.Setenv("PATH", t.TempDir())
	t.Setenv(EnvQEMU, "")
	_, err := Run(context.Background(), Spec{Kernel: k.Vmlinuz, Commands: []Command{{Path: "/bin/true"}}})
	require.ErrorIs(t, err, ErrQEMUNotFound)
	assert.ErrorContains(t, err, `install it with "apt-get install qemu-system-x86"`)

	t.Setenv(EnvQEMU, "/nonexistent/qemu-system-x86_64")
	_, err = Run(context.Background(), Spec{Kernel: k.Vmlinuz})
	require.ErrorIs(t, err, ErrQEMUNotFound)
	assert.ErrorContains(t, err, "/nonexistent/qemu-system-x86_64 (from KMATRIX_QEMU)")
}

func TestBadKernel(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "vmlinuz")
	require.NoError(t, os.WriteFile(text, bytes.Repeat([]byte("not a kernel\n"), 100), 0o644))

	_, err := Run(context.Background(), Spec{Kernel: filepath.Join(dir, "missing")})
	require.ErrorIs(t, err, ErrInvalidSpec)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.ErrorContains(t, err, "vmtest: Kernel: open "+filepath.Join(dir, "missing"))
	assert.ErrorContains(t, err, "want a readable vmlinuz")

	_, err = Run(context.Background(), Spec{Kernel: text})
	require.ErrorIs(t, err, ErrInvalidSpec)
	assert.ErrorIs(t, err, kernels.ErrNotKernel)
	assert.ErrorContains(t, err, "no HdrS boot-protocol magic")
	assert.ErrorContains(t, err, "want a vmlinuz/bzImage or arm64 Image")

	_, err = Run(context.Background(), Spec{})
	assert.ErrorContains(t, err, "vmtest: Kernel: empty: want the path of a vmlinuz")
}

func TestCancelledRunStopsQEMU(t *testing.T) {
	noQEMULeft(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hang := gp(t, "hang", "hang")
	hang.Stdout = writerFunc(func(p []byte) {
		if bytes.Contains(p, []byte("hanging")) {
			cancel()
		}
	})
	res, err := Run(ctx, Spec{Kernel: newest(t).Vmlinuz, Commands: []Command{hang}, Timeout: 3 * time.Minute})
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, ErrInfra)
	assert.Equal(t, outcome.InfraError, res.Outcome)
	assert.Equal(t, "cancelled", res.Commands[0].Err)
}
