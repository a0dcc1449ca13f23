package main

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kmatrix/kmatrix/vmtest/internal/wire"
)

// system is everything the init does to the machine rather than to its
// commands: the real one makes syscalls as PID 1 of the guest, the tests'
// one records the calls on the host.
type system interface {
	// Mount mounts one filesystem, creating target if it is missing and
	// creatable.
	Mount(m mount) error
	// RaiseMemlock lifts RLIMIT_MEMLOCK: before 5.11 BPF maps and programs
	// are charged against it and the default 64 KiB (8 MiB since 5.16's
	// distributions) is not enough for real programs.
	RaiseMemlock() error
	// LoopbackUp brings lo up: tests that open sockets on 127.0.0.1 need it
	// and nothing else configures network in the guest.
	LoopbackUp() error
	// Events opens the channel to the host.
	Events() (io.Writer, error)
	// ReadSpec returns the run description the host put into the initramfs.
	ReadSpec() ([]byte, error)
	// Uptime is the time since the kernel started (CLOCK_BOOTTIME).
	Uptime() time.Duration
	// Sync flushes filesystems before the power goes off.
	Sync()
	// PowerOff ends the VM; it returns only on failure.
	PowerOff() error

	// For a parked guest (wire.Spec.Park), restored from a snapshot:
	// WaitGo blocks until the host's Go on the event port.
	WaitGo() (*wire.Event, error)
	// SetClock sets the wall clock, which a restore leaves at the
	// snapshot's time.
	SetClock(t time.Time) error
	// Reseed feeds host random bytes to the kernel's RNG and reseeds it,
	// which a restore leaves as the snapshot had it.
	Reseed(seed []byte) error
	// PrepareRunFile sets up reading the run before the guest parks: its
	// memory and the memory's addresses are then part of the snapshot,
	// and each restore only reads.
	PrepareRunFile() error
	// RunFile reads the run the host put in fw_cfg (wire.RunFile).
	RunFile() (io.Reader, error)
}

// mount is one entry of the init's mount table.
type mount struct {
	Source, Target, FSType string
	Flags                  uintptr
	Data                   string
	// Optional mounts are skipped with a warning when the kernel lacks the
	// filesystem (ENODEV) or its mount point (sysfs directories such as
	// /sys/fs/bpf only exist when the kernel has the feature).
	Optional bool
}

const nosuidNodevNoexec = syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC

// mounts is the guest's mount table, in order (sysfs before what lives on
// it). Modelled on systemd's mount-setup.c; the versions are when each
// filesystem appeared, which is why they are optional: tracefs 4.1, bpffs
// 4.4, cgroup2 4.5.
var mounts = []mount{
	{"devtmpfs", "/dev", "devtmpfs", syscall.MS_NOSUID, "mode=0755", false},
	{"proc", "/proc", "proc", nosuidNodevNoexec, "", false},
	{"sysfs", "/sys", "sysfs", nosuidNodevNoexec, "", false},
	{"tmpfs", "/dev/shm", "tmpfs", syscall.MS_NOSUID | syscall.MS_NODEV, "mode=1777", true},
	{"devpts", "/dev/pts", "devpts", syscall.MS_NOSUID | syscall.MS_NOEXEC, "mode=0620,ptmxmode=0666", true},
	{"debugfs", "/sys/kernel/debug", "debugfs", nosuidNodevNoexec, "", true},
	{"tracefs", "/sys/kernel/tracing", "tracefs", nosuidNodevNoexec, "", true},
	{"bpf", "/sys/fs/bpf", "bpf", nosuidNodevNoexec, "mode=0700", true},
	{"cgroup2", "/sys/fs/cgroup", "cgroup2", nosuidNodevNoexec, "", true},
}

// defaultEnv is every command's environment before its own Env.
var defaultEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root",
	"TMPDIR=/tmp",
}

// initProc is the init's logic.
type initProc struct {
	sys system
	// console gets the init's own diagnostics (the kernel console in the guest).
	console io.Writer

	// root is where a restored run's files go: "/" in the guest.
	root string

	mu     sync.Mutex
	events io.Writer

	// prestarted are the processes started before the park
	// (wire.Spec.Prestart), by path, each waiting for its command.
	prestarted map[string]*prestarted
	// prestartTimeout bounds a prestarted process's warm-up.
	prestartTimeout time.Duration
}

// run does everything but powering off, which the caller does whatever happens.
func (p *initProc) run() error {
	// devtmpfs first: /dev/ttyS1 does not exist before it.
	if err := p.sys.Mount(mounts[0]); err != nil {
		return err
	}
	ev, err := p.sys.Events()
	if err != nil {
		return fmt.Errorf("open the event port: %w", err)
	}
	p.events = ev
	p.send(&wire.Event{Kind: wire.Hello, Uptime: p.sys.Uptime()})

	raw, err := p.sys.ReadSpec()
	if err != nil {
		return fmt.Errorf("read the run description: %w", err)
	}
	var spec wire.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return fmt.Errorf("parse the run description %s: %w", wire.SpecPath, err)
	}
	if spec.PowerOffOnly {
		return nil
	}

	var warnings []string
	for _, m := range mounts[1:] {
		err := p.sys.Mount(m)
		switch {
		case err == nil:
		case m.Optional && (errors.Is(err, syscall.ENODEV) || errors.Is(err, fs.ErrNotExist)):
			warnings = append(warnings, fmt.Sprintf("%s on %s skipped: %v", m.FSType, m.Target, err))
		default:
			return err
		}
	}
	if err := p.sys.RaiseMemlock(); err != nil {
		warnings = append(warnings, fmt.Sprintf("raise RLIMIT_MEMLOCK: %v", err))
	}
	if err := p.sys.LoopbackUp(); err != nil {
		warnings = append(warnings, fmt.Sprintf("bring lo up: %v", err))
	}
	if spec.Park {
		warnings = append(warnings, p.prestart(spec.Prestart)...)
		next, err := p.park(warnings)
		if err != nil {
			return err
		}
		spec = *next
	}
	p.send(&wire.Event{Kind: wire.Ready, Warnings: warnings})
	// A heartbeat: while it comes, the guest schedules user space. A module
	// that hogs the only CPU in the kernel stops it, and the host notices.
	go func() {
		for range time.Tick(wire.AliveInterval) {
			p.send(&wire.Event{Kind: wire.Alive})
		}
	}()

	for i, c := range spec.Commands {
		p.runCommand(i, c, spec.StreamLimit, spec.TailLimit)
	}
	return nil
}

// park waits, set up, for the host's Go (the host snapshots the guest
// meanwhile; each restore of the snapshot resumes here), then takes up the
// restored run: the host's clock and random bytes first, so that no two
// runs from one snapshot share a clock or a random stream, then the run's
// files and spec from fw_cfg.
func (p *initProc) park(warnings []string) (*wire.Spec, error) {
	if err := p.sys.PrepareRunFile(); err != nil {
		return nil, fmt.Errorf("set up reading the run: %w", err)
	}
	p.send(&wire.Event{Kind: wire.Parked, Warnings: warnings})
	g, err := p.sys.WaitGo()
	if err != nil {
		return nil, fmt.Errorf("wait for the host's go: %w", err)
	}
	if g.Time == 0 || len(g.Seed) == 0 {
		return nil, errors.New("the host's go has no time or no random seed")
	}
	if err := p.sys.SetClock(time.Unix(0, g.Time)); err != nil {
		return nil, fmt.Errorf("set the clock: %w", err)
	}
	if err := p.sys.Reseed(g.Seed); err != nil {
		return nil, fmt.Errorf("reseed the kernel RNG: %w", err)
	}
	p.send(&wire.Event{Kind: wire.Resumed, Uptime: p.sys.Uptime()})
	r, err := p.sys.RunFile()
	if err != nil {
		return nil, fmt.Errorf("read the run: %w", err)
	}
	if err := unpackRun(r, p.root); err != nil {
		return nil, fmt.Errorf("unpack the run: %w", err)
	}
	raw, err := os.ReadFile(filepath.Join(p.root, wire.SpecPath))
	if err != nil {
		return nil, fmt.Errorf("read the run description: %w", err)
	}
	var spec wire.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, fmt.Errorf("parse the run description %s: %w", wire.SpecPath, err)
	}
	return &spec, nil
}

// unpackRun writes the run file's tar stream under root, checking its
// length and CRC against the header.
func unpackRun(r io.Reader, root string) error {
	h, err := wire.ReadRunHeader(r)
	if err != nil {
		return err
	}
	cr := &countReader{r: io.LimitReader(r, int64(h.Size))}
	err = untar(tar.NewReader(cr), root)
	if _, derr := io.Copy(io.Discard, cr); derr != nil && err == nil {
		err = derr
	}
	// The length, not the CRC: CRC-32C of 20 MB costs 0.2 s under TCG, and
	// fw_cfg DMA into locked, unmovable memory does not damage data.
	if cr.n != int64(h.Size) {
		return fmt.Errorf("the run is damaged: %d bytes, want %d", cr.n, h.Size)
	}
	return err
}

func untar(tr *tar.Reader, root string) error {
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := path.Clean("/" + hdr.Name)
		if name == "/" || strings.Contains(hdr.Name, "..") {
			return fmt.Errorf("bad name %q in the run", hdr.Name)
		}
		target := filepath.Join(root, name)
		mode := os.FileMode(hdr.Mode).Perm()
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			if err := os.Chmod(target, mode); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if err == nil {
				err = f.Chmod(mode) // exactly, whatever the umask
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		default:
			return fmt.Errorf("%s: unexpected tar entry type %q", name, hdr.Typeflag)
		}
	}
	return nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// finish reports err (if any), syncs, and says goodbye.
func (p *initProc) finish(err error) {
	if err != nil {
		fmt.Fprintf(p.console, "vmtest init: %v\n", err)
		p.send(&wire.Event{Kind: wire.Log, Message: err.Error()})
	}
	p.sys.Sync()
	p.send(&wire.Event{Kind: wire.Bye})
}

// send writes one event; a failure goes to the console, since the host
// channel is the thing that failed.
func (p *initProc) send(e *wire.Event) {
	line, err := wire.Encode(e)
	if err == nil {
		p.mu.Lock()
		if p.events != nil {
			_, err = p.events.Write(line)
		} else {
			err = errors.New("event port not open")
		}
		p.mu.Unlock()
	}
	if err != nil {
		fmt.Fprintf(p.console, "vmtest init: send %s event: %v\n", e.Kind, err)
	}
}

// runCommand runs one command to its end and reports it; it never fails,
// since the next command runs whatever happened to this one.
func (p *initProc) runCommand(i int, c wire.Command, streamLimit, tailLimit int) {
	p.send(&wire.Event{Kind: wire.Start, Index: i})
	stdout := &streamer{p: p, index: i, fd: 1, limit: streamLimit, tailLimit: tailLimit}
	stderr := &streamer{p: p, index: i, fd: 2, limit: streamLimit, tailLimit: tailLimit}
	if ps := p.prestarted[c.Path]; ps != nil && c.Prestart && c.Stdin == "" {
		delete(p.prestarted, c.Path) // one command per process
		p.release(i, c, ps, stdout, stderr)
		return
	}

	cmd := exec.Command(c.Path, c.Args...)
	cmd.Env = mergeEnv(defaultEnv, c.Env)
	cmd.Dir = c.Dir
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	exit := &wire.Event{Kind: wire.Exit, Index: i, Code: -1}
	if c.Stdin != "" {
		// The host's input, shipped as a file: an *os.File is handed to
		// the command as its fd 0 directly, as a shell's < would.
		f, err := os.Open(c.Stdin)
		if err != nil {
			exit.Err = fmt.Sprintf("open standard input: %v", err)
			p.send(exit)
			return
		}
		defer f.Close()
		cmd.Stdin = f
	}
	// Its own process group, so a timeout kills what it started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A daemon the command left behind may hold the output pipes open:
	// don't wait for it forever once the command itself has exited.
	cmd.WaitDelay = time.Second

	start := time.Now()
	if err := cmd.Start(); err != nil {
		exit.Err = startError(c.Path, err)
		p.send(exit)
		return
	}
	p.wait(cmd, c.Timeout, start, exit, stdout, stderr)
}

// wait waits for a started command, bounded by timeout, and sends its exit.
func (p *initProc) wait(cmd *exec.Cmd, timeout time.Duration, start time.Time, exit *wire.Event, stdout, stderr *streamer) {
	var timedOut atomic.Bool
	if timeout > 0 {
		t := time.AfterFunc(timeout, func() {
			timedOut.Store(true)
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		})
		defer t.Stop()
	}
	err := cmd.Wait()
	exit.Duration = time.Since(start)
	stdout.finish()
	stderr.finish()

	var ee *exec.ExitError
	switch {
	case timedOut.Load():
		exit.Err = "timeout"
	case err == nil:
		exit.Code = 0
	case errors.As(err, &ee) && ee.Exited():
		exit.Code = ee.ExitCode()
	case errors.As(err, &ee):
		exit.Err = ee.ProcessState.String() // "signal: killed"
	default:
		// exec.ErrWaitDelay: it exited, but something kept its output open.
		exit.Code = cmd.ProcessState.ExitCode()
		exit.Err = err.Error()
	}
	p.send(exit)
}

// startError phrases why a command could not start the way a shell user
// reads it: "exec /bin/nope: no such file or directory".
func startError(path string, err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Sprintf("exec %s: %v", path, pe.Err)
	}
	return fmt.Sprintf("exec %s: %v", path, err)
}

// mergeEnv returns base with extra appended, a later KEY= replacing an earlier one.
func mergeEnv(base, extra []string) []string {
	out := make([]string, 0, len(base)+len(extra))
	index := map[string]int{}
	for _, kv := range append(append([]string{}, base...), extra...) {
		k, _, _ := strings.Cut(kv, "=")
		if j, ok := index[k]; ok {
			out[j] = kv
			continue
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// streamer sends a command's output as it comes, up to limit bytes; past
// that it keeps only the last tailLimit bytes, sent by finish after a Gap.
type streamer struct {
	p         *initProc
	index, fd int
	limit     int
	tailLimit int

	sent    int
	tail    []byte // ring buffer once over the limit
	pos     int    // next write position in tail when full
	full    bool
	skipped int64
}

func (s *streamer) Write(b []byte) (int, error) {
	n := len(b)
	if room := s.limit - s.sent; room > 0 {
		chunk := b[:min(room, len(b))]
		s.p.send(&wire.Event{Kind: wire.Output, Index: s.index, FD: s.fd, Data: chunk})
		s.sent += len(chunk)
		b = b[len(chunk):]
	}
	for len(b) > 0 && s.tailLimit > 0 {
		if !s.full {
			take := min(s.tailLimit-len(s.tail), len(b))
			s.tail = append(s.tail, b[:take]...)
			b = b[take:]
			if len(s.tail) == s.tailLimit {
				s.full = true
			}
			continue
		}
		// Overwrite the oldest bytes.
		take := min(s.tailLimit-s.pos, len(b))
		copy(s.tail[s.pos:], b[:take])
		s.skipped += int64(take)
		s.pos = (s.pos + take) % s.tailLimit
		b = b[take:]
	}
	s.skipped += int64(len(b)) // tailLimit 0: everything past the limit is dropped
	return n, nil
}

// finish sends the tail kept past the limit.
func (s *streamer) finish() {
	if s.skipped > 0 {
		s.p.send(&wire.Event{Kind: wire.Gap, Index: s.index, FD: s.fd, Skipped: s.skipped})
	}
	if len(s.tail) == 0 {
		return
	}
	tail := append(append([]byte{}, s.tail[s.pos:]...), s.tail[:s.pos]...)
	const chunk = 32 << 10
	for len(tail) > 0 {
		n := min(chunk, len(tail))
		s.p.send(&wire.Event{Kind: wire.Output, Index: s.index, FD: s.fd, Data: tail[:n]})
		tail = tail[n:]
	}
	s.tail, s.pos, s.full, s.skipped = nil, 0, false, 0
}
