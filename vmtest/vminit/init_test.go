package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/vmtest/internal/wire"
)

// fakeSystem stands in for the guest kernel; the commands the init runs
// are real host processes.
type fakeSystem struct {
	spec       []byte
	mountErr   map[string]error // by target
	mounted    []string
	events     bytes.Buffer
	memlockErr error
	synced     bool
	// For a parked init: the host's go, the run file, what the init did.
	goEvent *wire.Event
	run     []byte
	// prepared: PrepareRunFile was called (before the park).
	prepared bool
	clock    time.Time
	seed     []byte
	root     string
}

func (f *fakeSystem) Mount(m mount) error {
	if err := f.mountErr[m.Target]; err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.FSType, m.Target, err)
	}
	f.mounted = append(f.mounted, m.Target)
	return nil
}
func (f *fakeSystem) RaiseMemlock() error        { return f.memlockErr }
func (f *fakeSystem) LoopbackUp() error          { return nil }
func (f *fakeSystem) Events() (io.Writer, error) { return &f.events, nil }
func (f *fakeSystem) ReadSpec() ([]byte, error) {
	if f.spec == nil {
		return nil, os.ErrNotExist
	}
	return f.spec, nil
}
func (f *fakeSystem) Uptime() time.Duration { return 1500 * time.Millisecond }
func (f *fakeSystem) Sync()                 { f.synced = true }
func (f *fakeSystem) PowerOff() error       { return errors.New("not on the host") }
func (f *fakeSystem) WaitGo() (*wire.Event, error) {
	if f.goEvent == nil {
		return nil, io.EOF
	}
	return f.goEvent, nil
}
func (f *fakeSystem) SetClock(t time.Time) error { f.clock = t; return nil }
func (f *fakeSystem) Reseed(seed []byte) error   { f.seed = seed; return nil }
func (f *fakeSystem) PrepareRunFile() error      { f.prepared = true; return nil }
func (f *fakeSystem) RunFile() (io.Reader, error) {
	if !f.prepared {
		return nil, errors.New("RunFile before PrepareRunFile")
	}
	if f.run == nil {
		return nil, os.ErrNotExist
	}
	return bytes.NewReader(f.run), nil
}

func runInit(t *testing.T, sys *fakeSystem, spec wire.Spec) ([]*wire.Event, string, error) {
	t.Helper()
	if sys.spec == nil {
		b, err := json.Marshal(spec)
		require.NoError(t, err)
		sys.spec = b
	}
	var console bytes.Buffer
	p := &initProc{sys: sys, console: &console, root: sys.root}
	err := p.run()
	p.finish(err)
	return decodeEvents(t, sys), console.String(), err
}

// decodeEvents decodes what the init sent.
func decodeEvents(t *testing.T, sys *fakeSystem) []*wire.Event {
	t.Helper()
	var evs []*wire.Event
	sc := bufio.NewScanner(&sys.events)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		e, derr := wire.Decode(sc.Bytes())
		require.NoError(t, derr, "every line the init writes is a frame")
		evs = append(evs, e)
	}
	return evs
}

func kinds(evs []*wire.Event) string {
	var k []string
	for _, e := range evs {
		k = append(k, e.Kind)
	}
	return strings.Join(k, " ")
}

// output joins command i's output on fd, gaps marked as "<gap N>".
func output(evs []*wire.Event, i, fd int) string {
	var b strings.Builder
	for _, e := range evs {
		if e.Index == i && e.FD == fd {
			if e.Kind == wire.Gap {
				fmt.Fprintf(&b, "<gap %d>", e.Skipped)
			} else if e.Kind == wire.Output {
				b.Write(e.Data)
			}
		}
	}
	return b.String()
}

func exitOf(evs []*wire.Event, i int) *wire.Event {
	for _, e := range evs {
		if e.Kind == wire.Exit && e.Index == i {
			return e
		}
	}
	return nil
}

func sh(script string) wire.Command {
	return wire.Command{Name: "sh", Path: "/bin/sh", Args: []string{"-c", script}}
}

func TestRunsCommandsInOrderWhateverTheyDo(t *testing.T) {
	sys := &fakeSystem{}
	evs, _, err := runInit(t, sys, wire.Spec{StreamLimit: 1 << 20, Commands: []wire.Command{
		sh("echo out; echo err >&2; exit 3"),
		{Name: "nope", Path: "/nonexistent/nope"},
		sh(`echo "$HOME $TMPDIR $FOO $PATH"`),
	}})
	require.NoError(t, err)
	assert.Equal(t, "hello ready start out out exit start exit start out exit bye", kinds(evs))
	assert.Equal(t, time.Duration(1500*time.Millisecond), evs[0].Uptime)
	assert.True(t, sys.synced)

	assert.Equal(t, "out\n", output(evs, 0, 1))
	assert.Equal(t, "err\n", output(evs, 0, 2))
	assert.Equal(t, 3, exitOf(evs, 0).Code)
	assert.Empty(t, exitOf(evs, 0).Err)

	assert.Equal(t, -1, exitOf(evs, 1).Code)
	assert.Equal(t, "exec /nonexistent/nope: no such file or directory", exitOf(evs, 1).Err)

	assert.Equal(t, 0, exitOf(evs, 2).Code)
	assert.Equal(t, "/root /tmp  /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n", output(evs, 2, 1),
		"the default environment, and nothing from the init's own")
}

func TestStdinFromAFile(t *testing.T) {
	in := filepath.Join(t.TempDir(), "0")
	require.NoError(t, os.WriteFile(in, []byte("from the host\n\x00binary too\n"), 0o644))
	withIn := sh("cat; echo done")
	withIn.Stdin = in
	missing := sh("echo never")
	missing.Stdin = filepath.Join(t.TempDir(), "gone")
	evs, _, err := runInit(t, &fakeSystem{}, wire.Spec{StreamLimit: 1 << 20, Commands: []wire.Command{withIn, sh("cat; echo eof"), missing}})
	require.NoError(t, err)
	assert.Equal(t, "from the host\n\x00binary too\ndone\n", output(evs, 0, 1))
	assert.Equal(t, "eof\n", output(evs, 1, 1), "without Stdin a command reads /dev/null")
	assert.Equal(t, -1, exitOf(evs, 2).Code)
	assert.Contains(t, exitOf(evs, 2).Err, "open standard input: ")
	assert.Empty(t, output(evs, 2, 1))
}

func TestEnvAndDir(t *testing.T) {
	dir := t.TempDir()
	c := sh(`echo "$HOME|$FOO|$PATH"; pwd`)
	c.Env = []string{"FOO=bar", "HOME=/home/x"}
	c.Dir = dir
	evs, _, err := runInit(t, &fakeSystem{}, wire.Spec{StreamLimit: 1 << 20, Commands: []wire.Command{c}})
	require.NoError(t, err)
	assert.Equal(t, "/home/x|bar|"+defaultEnv[0][len("PATH="):]+"\n"+dir+"\n", output(evs, 0, 1))
}

func TestMountsSkipWhatTheKernelLacks(t *testing.T) {
	sys := &fakeSystem{mountErr: map[string]error{
		"/sys/kernel/tracing": syscall.ENODEV, // before 4.1
		"/sys/fs/bpf":         os.ErrNotExist, // no CONFIG_BPF_SYSCALL: no mount point in sysfs
	}}
	evs, _, err := runInit(t, sys, wire.Spec{})
	require.NoError(t, err)
	assert.Equal(t, []string{"/dev", "/proc", "/sys", "/dev/shm", "/dev/pts", "/sys/kernel/debug", "/sys/fs/cgroup"}, sys.mounted)
	require.Equal(t, wire.Ready, evs[1].Kind)
	require.Len(t, evs[1].Warnings, 2)
	assert.Contains(t, evs[1].Warnings[0], "tracefs on /sys/kernel/tracing skipped")
	assert.Contains(t, evs[1].Warnings[1], "bpf on /sys/fs/bpf skipped")
}

func TestRequiredMountFailureIsReported(t *testing.T) {
	sys := &fakeSystem{mountErr: map[string]error{"/proc": syscall.EPERM}}
	evs, console, err := runInit(t, sys, wire.Spec{Commands: []wire.Command{sh("true")}})
	require.Error(t, err)
	assert.Equal(t, "hello log bye", kinds(evs), "no command runs on a half-set-up guest")
	assert.Contains(t, evs[1].Message, "mount proc on /proc: operation not permitted")
	assert.Contains(t, console, "mount proc on /proc")
}

func TestMemlockFailureIsAWarning(t *testing.T) {
	evs, _, err := runInit(t, &fakeSystem{memlockErr: syscall.EPERM}, wire.Spec{})
	require.NoError(t, err)
	assert.Contains(t, evs[1].Warnings, "raise RLIMIT_MEMLOCK: operation not permitted")
}

func TestUnreadableSpec(t *testing.T) {
	sys := &fakeSystem{spec: []byte("{not json")}
	evs, _, err := runInit(t, sys, wire.Spec{})
	require.Error(t, err)
	assert.Equal(t, "hello log bye", kinds(evs))
	assert.Contains(t, evs[1].Message, "parse the run description /vmtest/spec.json")
}

func TestPowerOffOnlyMountsNothingMore(t *testing.T) {
	sys := &fakeSystem{}
	evs, _, err := runInit(t, sys, wire.Spec{PowerOffOnly: true, Commands: []wire.Command{sh("true")}})
	require.NoError(t, err)
	assert.Equal(t, "hello bye", kinds(evs))
	assert.Equal(t, []string{"/dev"}, sys.mounted)
}

func TestTimeoutKillsTheProcessGroup(t *testing.T) {
	// The background sleep keeps stdout open: without the group kill (and
	// WaitDelay) the init would wait for it.
	c := sh("echo started; sleep 30 & sleep 30")
	c.Timeout = 300 * time.Millisecond
	evs, _, err := runInit(t, &fakeSystem{}, wire.Spec{StreamLimit: 1 << 20, Commands: []wire.Command{c, sh("echo next")}})
	require.NoError(t, err)
	e := exitOf(evs, 0)
	assert.Equal(t, "timeout", e.Err)
	assert.Equal(t, -1, e.Code)
	assert.Less(t, e.Duration, 10*time.Second)
	assert.Equal(t, "started\n", output(evs, 0, 1))
	assert.Equal(t, "next\n", output(evs, 1, 1), "the next command runs after a timeout")
}

func TestKilledBySignal(t *testing.T) {
	evs, _, err := runInit(t, &fakeSystem{}, wire.Spec{Commands: []wire.Command{sh("kill -9 $$")}})
	require.NoError(t, err)
	assert.Equal(t, -1, exitOf(evs, 0).Code)
	assert.Equal(t, "signal: killed", exitOf(evs, 0).Err)
}

func TestFloodKeepsHeadAndTail(t *testing.T) {
	c := sh(`i=0; while [ $i -lt 5000 ]; do echo "line $i"; i=$((i+1)); done; echo END`)
	evs, _, err := runInit(t, &fakeSystem{}, wire.Spec{StreamLimit: 1000, TailLimit: 100, Commands: []wire.Command{c}})
	require.NoError(t, err)
	out := output(evs, 0, 1)
	head, rest, ok := strings.Cut(out, "<gap ")
	require.True(t, ok, "a gap marks the left-out middle: %q", out)
	assert.Len(t, head, 1000)
	assert.True(t, strings.HasPrefix(head, "line 0\nline 1\n"))
	n, tail, _ := strings.Cut(rest, ">")
	assert.Len(t, tail, 100)
	assert.True(t, strings.HasSuffix(tail, "line 4999\nEND\n"))
	full, _ := exec.Command("/bin/sh", "-c", c.Args[1]).Output()
	assert.Equal(t, fmt.Sprint(len(full)-1100), n, "the gap counts exactly the bytes left out")
}

func TestMergeEnv(t *testing.T) {
	assert.Equal(t, []string{"A=3", "B=2", "C=4"}, mergeEnv([]string{"A=1", "B=2"}, []string{"A=3", "C=4"}))
}

// fileAt is an in-memory io.WriterAt.
type fileAt struct{ b []byte }

func (f *fileAt) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(f.b) {
		f.b = append(f.b, make([]byte, end-len(f.b))...)
	}
	return copy(f.b[off:], p), nil
}

func runFile(t *testing.T, spec wire.Spec, files map[string]string) []byte {
	t.Helper()
	var f fileAt
	w := wire.NewRunWriter(&f)
	b, err := json.Marshal(spec)
	require.NoError(t, err)
	require.NoError(t, w.File(wire.SpecPath, 0o644, int64(len(b)), bytes.NewReader(b)))
	for name, data := range files {
		require.NoError(t, w.File(name, 0o750, int64(len(data)), strings.NewReader(data)))
	}
	require.NoError(t, w.Dir("/work", 0o700))
	require.NoError(t, w.Close())
	return f.b
}

func TestParkedInitTakesUpTheRestoredRun(t *testing.T) {
	root := t.TempDir()
	now := time.Now().Add(time.Hour)
	sys := &fakeSystem{root: root, mountErr: map[string]error{"/sys/fs/bpf": syscall.ENODEV},
		goEvent: &wire.Event{Kind: wire.Go, Time: now.UnixNano(), Seed: []byte("0123456789abcdef")},
		run: runFile(t, wire.Spec{StreamLimit: 1 << 20, Commands: []wire.Command{sh("cat " + root + "/data/x")}},
			map[string]string{"/data/x": "from the run\n"})}
	evs, console, err := runInit(t, sys, wire.Spec{Park: true})
	require.NoError(t, err, console)
	assert.Equal(t, "hello parked resumed ready start out exit bye", kinds(evs))
	assert.Len(t, evs[1].Warnings, 1, "parked says what was skipped")
	assert.Equal(t, evs[1].Warnings, evs[3].Warnings, "and so does ready after the restore")
	assert.Equal(t, now.UnixNano(), sys.clock.UnixNano())
	assert.Equal(t, "0123456789abcdef", string(sys.seed))
	assert.Equal(t, "from the run\n", output(evs, 0, 1))
	fi, err := os.Stat(root + "/data/x")
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o750), fi.Mode().Perm(), "modes are kept exactly")
	fi, err = os.Stat(root + "/work")
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
}

func TestParkedInitRejectsADamagedRun(t *testing.T) {
	run := runFile(t, wire.Spec{}, map[string]string{"/data/x": "some bytes to damage"})
	run = run[:len(run)-2000] // cut short
	sys := &fakeSystem{root: t.TempDir(), goEvent: &wire.Event{Kind: wire.Go, Time: 1, Seed: []byte{1}}, run: run}
	evs, _, err := runInit(t, sys, wire.Spec{Park: true})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "damaged")
	assert.Equal(t, "hello parked resumed log bye", kinds(evs))
}

func TestParkedInitWithoutGo(t *testing.T) {
	sys := &fakeSystem{root: t.TempDir()}
	_, _, err := runInit(t, sys, wire.Spec{Park: true})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "wait for the host's go")
}
