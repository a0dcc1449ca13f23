package vmtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kmatrix/kmatrix/internal/cache"
	"github.com/kmatrix/kmatrix/vmtest/internal/wire"
)

// Snapshots. Under TCG a run is mostly the kernel's boot; a guest booted
// once, parked by its init (wire.Spec.Park) and saved, is restored in a
// fraction of that. One snapshot per machine shape (kernel, init, QEMU,
// accelerator and CPU model, memory, vCPUs, kernel command line), made on
// first use, cached under <cache>/vmtest/snapshots/<key>.*:
//
//	<key>.ram    the guest's RAM: the parked guest ran on it as a shared
//	             file mapping (memory-backend-file,share=on), so it is the
//	             RAM at the save; a restore maps it private (copy on write),
//	             so every run starts from the same clean image and pages it
//	             never touches are never read
//	<key>.state  the device state (a few hundred KiB): QEMU's migration
//	             stream with x-ignore-shared, which leaves the shared RAM out
//	<key>.json   SnapshotInfo; its mtime is the last use, for prune
//
// The run's files reach the restored guest through fw_cfg (wire.RunFile),
// its clock and RNG seed through the event port (wire.Go). Made under the
// entry's lock, written to temporary names and renamed.

// EnvCold, set (and not "0"), makes every run boot cold, as Spec.Cold does.
const EnvCold = "KMATRIX_COLD"

// snapshotFormat names the layout of snapshotted machines; bump it when
// the QEMU devices or the park protocol change.
const snapshotFormat = 1

// Phases and limits of snapshots.
const (
	restorePhaseTimeout = 30 * time.Second // QEMU's start to the guest's Resumed
	saveTimeout         = 60 * time.Second // stop, migrate, quit
	ramBackend          = "kmatrix-ram"
)

// SnapshotInfo describes one cached snapshot.
type SnapshotInfo struct {
	Key    string `json:"key"`
	Format int    `json:"format"`
	// Kernel is the vmlinuz it booted, KernelSHA256 that file's digest.
	Kernel       string `json:"kernel"`
	KernelSHA256 string `json:"kernel_sha256"`
	// Init is the digest of the initramfs the guest booted (init and park spec).
	Init  string `json:"init"`
	QEMU  string `json:"qemu"`
	Accel string `json:"accel"`
	CPU   string `json:"cpu"`
	// HostCPU identifies the host's CPU under KVM ("-cpu host" gives the
	// guest the host's features: a snapshot does not move to another CPU
	// model, as a CI cache restored on another runner would).
	HostCPU  string `json:"host_cpu,omitempty"`
	MemoryMB int    `json:"memory_mb"`
	CPUs     int    `json:"cpus"`
	Cmdline  string `json:"cmdline"`
	// Shared are the run files the guest holds already (File.Shared).
	Shared []SharedFile `json:"shared,omitempty"`
	// Prestart are the Command.Prestart executables the guest holds
	// started, waiting for their runs (a subset of Shared's paths).
	Prestart []string `json:"prestart,omitempty"`

	Created time.Time `json:"created"`
	// Refused, when set, says why this machine shape is not snapshotted
	// (its boot reported a warning, its guest did not park): its runs boot
	// cold, so that what the boot reports is reported by every run.
	Refused string `json:"refused,omitempty"`
	// StateBytes is the size of the device state, StateSHA256 its digest;
	// RAMBytes the RAM file's allocated bytes (it is sparse).
	StateBytes  int64  `json:"state_bytes,omitempty"`
	StateSHA256 string `json:"state_sha256,omitempty"`
	RAMBytes    int64  `json:"ram_bytes,omitempty"`
	// BootMS and SaveMS are how long the boot to the park and the save took.
	BootMS int64 `json:"boot_ms,omitempty"`
	SaveMS int64 `json:"save_ms,omitempty"`

	// LastUsed is the mtime of the entry's JSON file, set by every restore.
	LastUsed time.Time `json:"-"`
	dir      string
}

// SharedFile is a File.Shared a snapshot holds.
type SharedFile struct {
	Guest  string      `json:"guest"`
	Mode   os.FileMode `json:"mode"`
	SHA256 string      `json:"sha256"`
}

func (s *SnapshotInfo) path(ext string) string { return filepath.Join(s.dir, s.Key+ext) }

// Bytes is the disk space of the entry.
func (s *SnapshotInfo) Bytes() int64 { return s.StateBytes + s.RAMBytes }

// SnapshotDir is where snapshots are cached.
func SnapshotDir() (string, error) {
	dir, err := vmtestCacheDir()
	if err != nil {
		return "", err
	}
	dir = filepath.Join(dir, "snapshots")
	return dir, os.MkdirAll(dir, 0o755)
}

// snapshotMachine is what a snapshotted machine is made of, for the
// creation and every restore alike: only the way in (boot or -incoming),
// the event port's backend and the run's fw_cfg file differ.
func snapshotMachine(p *plan, accel, ram string, share bool) []qemuPart {
	return []qemuPart{
		bareMachine{},
		board(p.arch),
		accelerator{accel, p.arch},
		resources{p.spec.MemoryMB, p.spec.CPUs},
		ramFile{path: ram, mb: p.spec.MemoryMB, share: share},
		consoleOn(p.arch),
		exitOnPanic{oops: p.spec.OopsPanic},
		quietButLoud{},
		fastBoot(p.arch),
		watchdogKargs{},
		extraKargs(p.spec.Append),
	}
}

// ramFile is the guest's RAM as a file.
type ramFile struct {
	path  string
	mb    int
	share bool
}

func (r ramFile) args() []string {
	share := "off"
	if r.share {
		share = "on"
	}
	return []string{"-machine", "memory-backend=" + ramBackend,
		"-object", fmt.Sprintf("memory-backend-file,id=%s,size=%dM,mem-path=%s,share=%s", ramBackend, r.mb, r.path, share)}
}
func (ramFile) kargs() []string { return nil }

// socketSerial is the event port on a connected socket QEMU inherited as
// fd: the host both reads the guest's events and writes Go on it. An ISA
// 8250 on amd64, a PCI 16550 on arm64 (eventPort).
type socketSerial struct {
	id   string
	fd   int
	arch string
}

func (s socketSerial) args() []string {
	dev := []string{"-serial", "chardev:" + s.id}
	if s.arch == archARM64 {
		dev = []string{"-device", "pci-serial,chardev=" + s.id}
	}
	return append([]string{"-chardev", fmt.Sprintf("socket,id=%s,fd=%d", s.id, s.fd)}, dev...)
}
func (socketSerial) kargs() []string { return nil }

// qmpMonitor is QEMU's machine protocol on an inherited socket.
type qmpMonitor struct{ fd int }

func (q qmpMonitor) args() []string {
	return []string{"-chardev", fmt.Sprintf("socket,id=qmp,fd=%d", q.fd), "-mon", "chardev=qmp,mode=control"}
}
func (qmpMonitor) kargs() []string { return nil }

// snapshotKernelArgs is the kernel command line of a snapshotted machine.
func snapshotKernelArgs(p *plan, accel string) string {
	var k []string
	for _, part := range append([]qemuPart{linuxBoot{}}, snapshotMachine(p, accel, "", false)...) {
		k = append(k, part.kargs()...)
	}
	return strings.Join(k, " ")
}

// snapshotFor returns the snapshot p's run can be restored from; or, on
// first use, a parkJob that makes it (holding the entry's lock until it is
// committed or abandoned); or neither and the reason the run boots cold.
func snapshotFor(ctx context.Context, p *plan, accel string) (*SnapshotInfo, *parkJob, string, error) {
	if p.spec.Cold {
		return nil, nil, "Spec.Cold", nil
	}
	if v := os.Getenv(EnvCold); v != "" && v != "0" {
		return nil, nil, EnvCold + "=" + v, nil
	}
	want, err := snapshotShape(ctx, p, accel)
	if err != nil {
		return nil, nil, "", err
	}
	dir, err := SnapshotDir()
	if err != nil {
		return nil, nil, "", err
	}
	want.dir = dir
	unlock, err := cache.LockFile(want.path(".lock"))
	if err != nil {
		return nil, nil, "", err
	}
	if s, err := readSnapshot(dir, want.Key); err == nil {
		unlock()
		if s.Refused != "" {
			return nil, nil, "no snapshot of this machine: " + s.Refused, nil
		}
		now := time.Now()
		os.Chtimes(s.path(".json"), now, now)
		return s, nil, "", nil
	}
	removeSnapshot(want) // whatever was left of a damaged entry
	j, err := newParkJob(want, p.spec.MemoryMB, unlock)
	if err != nil {
		unlock()
		return nil, nil, "", err
	}
	return nil, j, "", nil
}

// snapshotShape computes the key of p's machine.
func snapshotShape(ctx context.Context, p *plan, accel string) (*SnapshotInfo, error) {
	base, err := baseArchive(ctx, p.arch)
	if err != nil {
		return nil, err
	}
	initSum, err := fileSHA256(base)
	if err != nil {
		return nil, err
	}
	kernelSum, err := fileSHA256(p.spec.Kernel)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInfra, err)
	}
	qv, err := qemuVersion(ctx, p.qemu)
	if err != nil {
		return nil, err
	}
	s := &SnapshotInfo{
		Format: snapshotFormat, Kernel: p.spec.Kernel, KernelSHA256: kernelSum, Init: initSum + "+park", QEMU: qv,
		Accel: accel, CPU: strings.Join(accelerator{accel, p.arch}.args(), " "), MemoryMB: p.spec.MemoryMB, CPUs: p.spec.CPUs,
		Cmdline: snapshotKernelArgs(p, accel), Prestart: p.prestart,
	}
	if accel == "kvm" {
		s.HostCPU = hostCPU()
	}
	for _, f := range p.files {
		if !f.Shared {
			continue
		}
		sum := sha256.Sum256(f.Data)
		digest := hex.EncodeToString(sum[:])
		if f.Host != "" {
			if digest, err = fileSHA256(f.Host); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrInfra, err)
			}
		}
		s.Shared = append(s.Shared, SharedFile{Guest: f.Guest, Mode: f.Mode, SHA256: digest})
	}
	sort.Slice(s.Shared, func(i, j int) bool { return s.Shared[i].Guest < s.Shared[j].Guest })
	shape := *s
	shape.Kernel = "" // the content counts, not where it lies
	b, _ := json.Marshal(shape)
	sum := sha256.Sum256(b)
	s.Key = hex.EncodeToString(sum[:16])
	return s, nil
}

var sumMemo struct {
	sync.Mutex
	m map[string]string
}

// fileSHA256 hashes a file once per process and version of it.
func fileSHA256(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	id := fmt.Sprintf("%s\x00%d\x00%d", path, fi.Size(), fi.ModTime().UnixNano())
	sumMemo.Lock()
	defer sumMemo.Unlock()
	if s, ok := sumMemo.m[id]; ok {
		return s, nil
	}
	_, sum, err := cache.FileSHA256(path)
	if err != nil {
		return "", err
	}
	if sumMemo.m == nil {
		sumMemo.m = map[string]string{}
	}
	sumMemo.m[id] = sum
	return sum, nil
}

var qemuVersionMemo sync.Map // "path size mtime" → first line of -version

func qemuVersion(ctx context.Context, qemu string) (string, error) {
	fi, err := os.Stat(qemu)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInfra, err)
	}
	id := fmt.Sprintf("%s %d %d", qemu, fi.Size(), fi.ModTime().UnixNano())
	if v, ok := qemuVersionMemo.Load(id); ok {
		return v.(string), nil
	}
	out, err := exec.CommandContext(ctx, qemu, "-version").Output()
	if err != nil {
		return "", fmt.Errorf("%w: %s -version: %v", ErrInfra, qemu, err)
	}
	v, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	v = fmt.Sprintf("%s (%d bytes)", v, fi.Size())
	qemuVersionMemo.Store(id, v)
	return v, nil
}

// hostCPU is the model name and flags of the host's first CPU, hashed.
func hostCPU() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	var id []string
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, ":")
		switch strings.TrimSpace(k) {
		case "vendor_id", "model name", "flags":
			id = append(id, strings.TrimSpace(v))
		case "":
			if len(id) > 0 {
				sum := sha256.Sum256([]byte(strings.Join(id, "\n")))
				return hex.EncodeToString(sum[:8])
			}
		}
	}
	return "unknown"
}

// readSnapshot reads and checks a cached entry.
func readSnapshot(dir, key string) (*SnapshotInfo, error) {
	meta := filepath.Join(dir, key+".json")
	b, err := os.ReadFile(meta)
	if err != nil {
		return nil, err
	}
	var s SnapshotInfo
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", meta, err)
	}
	s.dir = dir
	if fi, err := os.Stat(meta); err == nil {
		s.LastUsed = fi.ModTime()
	}
	if s.Key != key || s.Format != snapshotFormat {
		return nil, fmt.Errorf("snapshot %s: key %q format %d, want %q format %d", meta, s.Key, s.Format, key, snapshotFormat)
	}
	if s.Refused != "" {
		return &s, nil
	}
	if fi, err := os.Stat(s.path(".state")); err != nil || fi.Size() != s.StateBytes {
		return nil, fmt.Errorf("snapshot %s: its device state is missing or not %d bytes", meta, s.StateBytes)
	}
	fi, err := os.Stat(s.path(".ram"))
	if err != nil || fi.Size() != int64(s.MemoryMB)<<20 {
		return nil, fmt.Errorf("snapshot %s: its RAM is missing or not %d MiB", meta, s.MemoryMB)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.RAMBytes = st.Blocks * 512 // sparse: what it takes on disk
	}
	return &s, nil
}

func removeSnapshot(s *SnapshotInfo) {
	for _, ext := range []string{".json", ".state", ".ram"} {
		os.Remove(s.path(ext))
	}
}

// parkJob makes a snapshot on a run's first use of its machine: that run
// boots the machine (its RAM a shared temporary file) with a parking init,
// through boot like any cold boot, so that a kernel that does not boot is
// reported as such; once the guest parks, the launch's hook saves the
// device state and quits QEMU, and the run is restored from the snapshot.
type parkJob struct {
	s          *SnapshotInfo
	ram, state *os.File
	unlock     func()
	start      time.Time
	// Set by the hook (read after boot has joined it): the guest parked,
	// and its state was saved.
	parked, saved bool
	l             *launch
}

func newParkJob(s *SnapshotInfo, memoryMB int, unlock func()) (*parkJob, error) {
	ram, err := os.CreateTemp(s.dir, "."+s.Key+".ram.tmp-*")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInfra, err)
	}
	state, err := os.CreateTemp(s.dir, "."+s.Key+".state.tmp-*")
	if err == nil {
		err = ram.Truncate(int64(memoryMB) << 20)
	}
	if err != nil {
		ram.Close()
		os.Remove(ram.Name())
		if state != nil {
			state.Close()
			os.Remove(state.Name())
		}
		return nil, fmt.Errorf("%w: %v", ErrInfra, err)
	}
	return &parkJob{s: s, ram: ram, state: state, unlock: unlock, start: time.Now()}, nil
}

// abandon removes what the job wrote and releases the lock.
func (j *parkJob) abandon() {
	j.ram.Close()
	j.state.Close()
	os.Remove(j.ram.Name())
	os.Remove(j.state.Name())
	j.unlock()
}

// commit makes the saved snapshot the cache entry (or records refused)
// and releases the lock.
func (j *parkJob) commit(refused string) (*SnapshotInfo, error) {
	defer j.abandon() // the temporary names are gone once renamed
	s := j.s
	s.Created = time.Now().UTC()
	s.Refused = refused
	if refused == "" {
		for _, f := range []*os.File{j.ram, j.state} {
			if err := f.Sync(); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrInfra, err)
			}
		}
		fi, err := j.state.Stat()
		if err != nil {
			return nil, err
		}
		s.StateBytes = fi.Size()
		if s.StateSHA256, err = hashFile(j.state.Name()); err != nil {
			return nil, err
		}
		s.RAMBytes = allocated(j.ram)
		s.BootMS = int64(time.Since(j.start) / time.Millisecond)
		if err := os.Rename(j.ram.Name(), s.path(".ram")); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInfra, err)
		}
		if err := os.Rename(j.state.Name(), s.path(".state")); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInfra, err)
		}
	}
	b, _ := json.MarshalIndent(s, "", "  ")
	if err := cache.WriteFileAtomic(s.path(".json"), append(b, '\n'), 0o644); err != nil {
		removeSnapshot(s)
		return nil, fmt.Errorf("%w: %v", ErrInfra, err)
	}
	s.LastUsed = time.Now()
	removeStale(s, s.LastUsed)
	return s, nil
}

// supersededGrace is how long a superseded snapshot is kept after its
// last use: another build of kmatrix may be using it at the same time
// (two checkouts on one machine, CI jobs sharing a cache), and removing
// the snapshot of a build that is running would have each build make its
// snapshot again on every run, each removing the other's.
const supersededGrace = 10 * time.Minute

// unusedLimit is how long a snapshot of any machine may go unused before a
// new snapshot's commit removes it, as kmatrix cache prune's default does.
const unusedLimit = 30 * 24 * time.Hour

// removeStale removes the snapshots that s supersedes, so that the cache
// does not grow by one snapshot per kernel (100–160 MiB) with every
// change to the init or to a shared file, without anyone pruning it: the
// entries of the same machine (kernel content, QEMU, accelerator, CPU,
// memory, vCPUs, command line) made by another init (another build of
// vmtest), or holding another version of one of s's shared files (another
// build of the program that ships it), unused for supersededGrace; and
// the snapshots of any machine unused for unusedLimit.
// Entries with other shared files altogether (another payload's binary)
// stay: they are another run's. Each goes under its lock; a run restoring
// it at that moment keeps its copy (QEMU holds the files open).
func removeStale(s *SnapshotInfo, now time.Time) []*SnapshotInfo {
	all, err := Snapshots()
	if err != nil {
		return nil
	}
	var removed []*SnapshotInfo
	for _, e := range all {
		superseded := sameMachine(e, s) && (e.Init != s.Init || otherVersion(e.Shared, s.Shared)) &&
			now.Sub(e.LastUsed) >= supersededGrace
		unused := e.Refused == "" && now.Sub(e.LastUsed) > unusedLimit
		if e.Key == s.Key || !superseded && !unused {
			continue
		}
		unlock, err := cache.LockFile(e.path(".lock"))
		if err != nil {
			continue
		}
		removeSnapshot(e)
		unlock()
		removed = append(removed, e)
	}
	return removed
}

// sameMachine: a and b are snapshots of one machine, whatever booted in it.
func sameMachine(a, b *SnapshotInfo) bool {
	return a.KernelSHA256 == b.KernelSHA256 && a.QEMU == b.QEMU && a.Accel == b.Accel && a.CPU == b.CPU &&
		a.HostCPU == b.HostCPU && a.MemoryMB == b.MemoryMB && a.CPUs == b.CPUs && a.Cmdline == b.Cmdline
}

// otherVersion: a holds a file at one of b's guest paths with other
// contents or mode.
func otherVersion(a, b []SharedFile) bool {
	for _, fa := range a {
		for _, fb := range b {
			if fa.Guest == fb.Guest && fa != fb {
				return true
			}
		}
	}
	return false
}

func allocated(f *os.File) int64 {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return 0
	}
	return st.Blocks * 512
}

// launch boots the parking guest.
func (j *parkJob) launch(ctx context.Context, p *plan, accel string, _ *wire.Spec, conW *os.File) (_ *launch, err error) {
	l := &launch{phase: "kernel", phaseLimit: bootDeadline(p.spec), parked: make(chan struct{}, 1), done: make(chan error, 1)}
	j.l = l
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	// The shared files are the snapshot's; the rest are each run's own.
	park := *p
	park.files, park.dirs = nil, nil
	for _, f := range p.files {
		if f.Shared {
			park.files = append(park.files, f)
		}
	}
	initrd, err := writeInitramfs(ctx, &park, &wire.Spec{Park: true, Prestart: p.prestart})
	if err != nil {
		return nil, err
	}
	initrdFD, conFD := l.pass(initrd), l.pass(conW)
	ch, err := l.channels(p.arch)
	if err != nil {
		return nil, err
	}
	l.args = qemuCommandLine(append(snapshotMachine(p, accel, j.ram.Name(), true),
		linuxBoot{kernel: p.spec.Kernel, initrd: devFD(initrdFD)},
		serialPort{"console", devFD(conFD)},
		ch.events, ch.monitor)...)
	l.started = func(kill func()) error {
		ctx := context.Background()
		if err := ch.qmp.start(ctx); err != nil {
			return nil // QEMU did not come up: boot reports why
		}
		if err := ch.qmp.ignoreShared(ctx); err != nil {
			kill()
			return err
		}
		// Until the guest parks, or QEMU goes (boot says why).
	wait:
		for {
			select {
			case <-l.parked:
				break wait
			case _, ok := <-ch.qmp.events:
				if !ok {
					return nil
				}
			}
		}
		j.parked = true
		err := j.save(ch.qmp)
		if err != nil {
			kill()
			return err
		}
		j.saved = true
		ch.qmp.do(ctx, "quit", nil)
		return nil
	}
	return l, nil
}

// save writes the parked guest's device state. The guest waits in a read:
// migrating it running keeps "running" in the saved state, so that a
// restore resumes it without a cont.
func (j *parkJob) save(q *qmp) error {
	ctx, cancel := context.WithTimeout(context.Background(), saveTimeout)
	defer cancel()
	if _, err := q.doFD(ctx, "getfd", map[string]any{"fdname": "state"}, int(j.state.Fd())); err != nil {
		return err
	}
	if _, err := q.do(ctx, "migrate", map[string]any{"uri": "fd:state"}); err != nil {
		return err
	}
	for {
		r, err := q.do(ctx, "query-migrate", nil)
		if err != nil {
			return err
		}
		var st struct {
			Status    string `json:"status"`
			ErrorDesc string `json:"error-desc"`
		}
		json.Unmarshal(r, &st)
		switch st.Status {
		case "completed":
			return nil
		case "failed", "cancelled":
			return fmt.Errorf("QEMU failed to save the machine: %s", st.ErrorDesc)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	for _, l := range strings.Split(s, "\n") {
		if _, ok := classifyLine(l); ok {
			return strings.TrimSpace(l)
		}
	}
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// socketPair returns the host's end and QEMU's end of a stream socketpair.
func socketPair(name string) (host, guest *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: socketpair: %v", ErrInfra, err)
	}
	return os.NewFile(uintptr(fds[0]), name), os.NewFile(uintptr(fds[1]), name+"-qemu"), nil
}

// Snapshots lists the cached snapshots, refused entries included.
func Snapshots() ([]*SnapshotInfo, error) {
	dir, err := SnapshotDir()
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []*SnapshotInfo
	for _, e := range ents {
		key, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(key, ".") {
			continue
		}
		s, err := readSnapshot(dir, key)
		if err != nil {
			// Damaged: list what can be said, so prune can remove it.
			s = &SnapshotInfo{Key: key, dir: dir, Refused: "damaged: " + err.Error()}
		}
		out = append(out, s)
	}
	return out, nil
}

// PruneSnapshots removes the snapshots not used for olderThan, those of
// kernels whose vmlinuz is gone or changed, and damaged or refused entries
// (a refused machine is tried again on its next run). Each is removed
// under its lock, so a run restoring it at that moment keeps its copy
// (QEMU holds the files open) and the next run makes a new one.
func PruneSnapshots(olderThan time.Duration, now time.Time) (removed []*SnapshotInfo, err error) {
	all, err := Snapshots()
	if err != nil {
		return nil, err
	}
	for _, s := range all {
		why := ""
		switch {
		case s.Refused != "":
			why = s.Refused
		case now.Sub(s.LastUsed) > olderThan:
			why = fmt.Sprintf("not used since %s", s.LastUsed.UTC().Format(time.RFC3339))
		default:
			if sum, err := fileSHA256(s.Kernel); err != nil {
				why = "its kernel is gone: " + s.Kernel
			} else if sum != s.KernelSHA256 {
				why = "its kernel changed: " + s.Kernel
			}
		}
		if why == "" {
			continue
		}
		unlock, err := cache.LockFile(s.path(".lock"))
		if err != nil {
			return removed, err
		}
		removeSnapshot(s) // not the lock: another process may be waiting on it
		unlock()
		s.Refused = why
		removed = append(removed, s)
	}
	// Temporary files of a creation that was killed.
	if dir, err := SnapshotDir(); err == nil {
		tmps, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
		for _, t := range tmps {
			if fi, err := os.Stat(t); err == nil && now.Sub(fi.ModTime()) > time.Hour {
				os.Remove(t)
			}
		}
	}
	return removed, nil
}

// TrimSnapshots removes the least recently used snapshots until the rest
// take at most maxBytes on disk, each under its lock, and returns what it
// removed (Refused says why).
func TrimSnapshots(maxBytes int64) (removed []*SnapshotInfo, err error) {
	all, err := Snapshots()
	if err != nil {
		return nil, err
	}
	var total int64
	for _, s := range all {
		total += s.Bytes()
	}
	sort.Slice(all, func(i, j int) bool { return all[i].LastUsed.Before(all[j].LastUsed) })
	for _, s := range all {
		if total <= maxBytes {
			break
		}
		unlock, err := cache.LockFile(s.path(".lock"))
		if err != nil {
			return removed, err
		}
		removeSnapshot(s)
		unlock()
		total -= s.Bytes()
		s.Refused = fmt.Sprintf("the least recently used (%s) over the budget of %.0f MiB", s.LastUsed.UTC().Format(time.RFC3339), float64(maxBytes)/(1<<20))
		removed = append(removed, s)
	}
	return removed, nil
}

// goFrame is the host's Go for a restored guest.
func goFrame() ([]byte, error) {
	seed := make([]byte, 64)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	return wire.Encode(&wire.Event{Kind: wire.Go, Time: time.Now().UnixNano(), Seed: seed})
}

// VerifySnapshots re-hashes every snapshot's device state against its
// recorded digest and checks its RAM file; a damaged entry is removed
// (the next run makes it again). It returns how many entries it checked.
func VerifySnapshots() (checked int, problems []error, err error) {
	all, err := Snapshots()
	if err != nil {
		return 0, nil, err
	}
	for _, s := range all {
		checked++
		why := ""
		switch {
		case strings.HasPrefix(s.Refused, "damaged: "):
			why = s.Refused
		case s.Refused != "":
			continue
		default:
			if sum, err := hashFile(s.path(".state")); err != nil {
				why = err.Error()
			} else if sum != s.StateSHA256 {
				why = fmt.Sprintf("device state has SHA-256 %s, want %s", sum, s.StateSHA256)
			}
		}
		if why == "" {
			continue
		}
		unlock, err := cache.LockFile(s.path(".lock"))
		if err != nil {
			return checked, problems, err
		}
		removeSnapshot(s)
		unlock()
		problems = append(problems, fmt.Errorf("snapshot %s (%s): %s: removed", s.Key, s.Kernel, why))
	}
	return checked, problems, nil
}

func hashFile(path string) (string, error) {
	_, sum, err := cache.FileSHA256(path)
	return sum, err
}
