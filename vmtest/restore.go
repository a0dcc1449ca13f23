package vmtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kmatrix/kmatrix/internal/cache"
	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/vmtest/internal/wire"
)

// launch is how boot starts QEMU: the arguments, the files QEMU inherits
// (fds 3, 4, ...; closed once it has started), the host's end of the event
// port, the first phase, and what to do once QEMU runs.
type launch struct {
	args       []string
	files      []*os.File
	events     io.Reader
	phase      string
	phaseLimit time.Duration
	// started, when set, runs on its own goroutine once QEMU has started;
	// it may kill QEMU, and its error goes to done.
	started func(kill func()) error
	done    chan error
	closers []io.Closer
	// snapshot is the key of the snapshot a restore launch restores.
	snapshot string
	// parked, when set, is signalled when the guest parks (a parkJob).
	parked chan struct{}
	// console is what the kernel console reported, set by boot at the end.
	console outcome.Outcome
	excerpt string
}

// A launcher starts a VM other than by a cold boot: restoreFrom, parkJob.
type launcher interface {
	launch(ctx context.Context, p *plan, accel string, ws *wire.Spec, conW *os.File) (*launch, error)
}

// restoreFrom restores a snapshot.
type restoreFrom struct{ s *SnapshotInfo }

func (r restoreFrom) launch(_ context.Context, p *plan, accel string, ws *wire.Spec, conW *os.File) (*launch, error) {
	return restoreLaunch(p, accel, ws, r.s, conW)
}

// pass hands f to QEMU, which inherits it as the next fd from 3 on, and
// returns that fd's number.
func (l *launch) pass(f *os.File) int {
	l.files = append(l.files, f)
	return 2 + len(l.files)
}

// devFD is the path QEMU opens an inherited fd by.
func devFD(fd int) string { return fmt.Sprintf("/dev/fd/%d", fd) }

// snapshotChannels are a snapshotted machine's two channels to the host,
// both socketpairs: the event port (the host reads the guest's events and
// writes Go on it) and QMP.
type snapshotChannels struct {
	host            *os.File // the host's end of the event port
	qmp             *qmp
	events, monitor qemuPart
}

// channels sets up the event port and QMP of a snapshotted machine, for
// its parking boot and for every restore alike.
func (l *launch) channels(arch string) (*snapshotChannels, error) {
	evHost, evQEMU, err := socketPair("events")
	if err != nil {
		return nil, err
	}
	l.closers = append(l.closers, evHost)
	l.events = evHost
	evFD := l.pass(evQEMU)
	q, qf, err := qmpPair()
	if err != nil {
		return nil, err
	}
	l.closers = append(l.closers, closerFunc(q.close))
	return &snapshotChannels{host: evHost, qmp: q,
		events: socketSerial{"events", evFD, arch}, monitor: qmpMonitor{l.pass(qf)}}, nil
}

func (l *launch) close() {
	for _, f := range l.files {
		f.Close()
	}
	for _, c := range l.closers {
		c.Close()
	}
}

// coldLaunch boots the kernel with the run's initramfs.
func coldLaunch(ctx context.Context, p *plan, accel string, ws *wire.Spec, conW *os.File) (*launch, error) {
	initrd, err := writeInitramfs(ctx, p, ws)
	if err != nil {
		return nil, err
	}
	evR, evW, err := os.Pipe()
	if err != nil {
		initrd.Close()
		return nil, err
	}
	// ExtraFiles are fds 3, 4, 5 in QEMU, which opens them by /dev/fd path.
	args := qemuCommandLine(
		bareMachine{},
		board(p.arch),
		accelerator{accel, p.arch},
		resources{p.spec.MemoryMB, p.spec.CPUs},
		linuxBoot{kernel: p.spec.Kernel, initrd: "/dev/fd/3"},
		serialPort{"console", "/dev/fd/4"},
		eventPort(p.arch, "events", "/dev/fd/5"),
		consoleOn(p.arch),
		exitOnPanic{oops: p.spec.OopsPanic},
		quietButLoud{},
		fastBoot(p.arch),
		watchdogKargs{},
		extraKargs(p.spec.Append),
	)
	return &launch{args: args, files: []*os.File{initrd, conW, evW}, events: evR, closers: []io.Closer{evR},
		phase: "kernel", phaseLimit: bootDeadline(p.spec)}, nil
}

// restoreLaunch restores snapshot s: QEMU waits for the incoming state
// (-incoming defer), then started tells it to leave the shared RAM out
// (x-ignore-shared, as when it was saved), loads the device state, waits
// for the guest to resume (it was saved running), and sends it Go.
func restoreLaunch(p *plan, accel string, ws *wire.Spec, s *SnapshotInfo, conW *os.File) (_ *launch, err error) {
	l := &launch{phase: "restore", phaseLimit: restorePhaseTimeout, done: make(chan error, 1), snapshot: s.Key}
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	run, err := writeRunFile(p, ws)
	if err != nil {
		return nil, err
	}
	runFD := l.pass(run)
	state, err := os.Open(s.path(".state"))
	if err != nil {
		return nil, fmt.Errorf("%w: snapshot %s: %v", ErrInfra, s.Key, err)
	}
	stateFD := l.pass(state)
	ch, err := l.channels(p.arch)
	if err != nil {
		return nil, err
	}
	l.args = qemuCommandLine(append(snapshotMachine(p, accel, s.path(".ram"), false),
		// -kernel for its option ROM, part of the saved machine; the
		// kernel itself is in the RAM file.
		linuxBoot{kernel: p.spec.Kernel},
		serialPort{"console", devFD(l.pass(conW))},
		ch.events, ch.monitor,
		fwCfgFile{name: wire.RunFile, path: devFD(runFD)},
		incomingDefer{})...)
	l.started = func(kill func()) error {
		ctx, cancel := context.WithTimeout(context.Background(), restorePhaseTimeout)
		defer cancel()
		err := func() error {
			if err := ch.qmp.start(ctx); err != nil {
				return err
			}
			if err := ch.qmp.ignoreShared(ctx); err != nil {
				return err
			}
			if _, err := ch.qmp.do(ctx, "migrate-incoming", map[string]any{"uri": fmt.Sprintf("fd:%d", stateFD)}); err != nil {
				return err
			}
			if _, err := ch.qmp.waitEvent(ctx, "RESUME"); err != nil {
				return fmt.Errorf("the restored guest did not resume: %w", err)
			}
			frame, err := goFrame()
			if err != nil {
				return err
			}
			_, err = ch.host.Write(frame)
			return err
		}()
		if err != nil {
			kill()
		}
		return err
	}
	return l, nil
}

type closerFunc func()

func (f closerFunc) Close() error { f(); return nil }

// fwCfgFile is a file the guest finds in fw_cfg's directory.
type fwCfgFile struct{ name, path string }

func (f fwCfgFile) args() []string { return []string{"-fw_cfg", "name=" + f.name + ",file=" + f.path} }
func (fwCfgFile) kargs() []string  { return nil }

type incomingDefer struct{}

func (incomingDefer) args() []string  { return []string{"-incoming", "defer"} }
func (incomingDefer) kargs() []string { return nil }

// writeRunFile writes the run (spec, files but the shared ones,
// directories) into a memfd.
func writeRunFile(p *plan, ws *wire.Spec) (*os.File, error) {
	fd, err := unix.MemfdCreate("vmtest-run", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("%w: memfd_create: %v", ErrInfra, err)
	}
	f := os.NewFile(uintptr(fd), "vmtest-run")
	err = func() error {
		w := wire.NewRunWriter(f)
		spec, err := json.Marshal(ws)
		if err != nil {
			return err
		}
		if err := w.File(wire.SpecPath, 0o644, int64(len(spec)), bytesReader(spec)); err != nil {
			return err
		}
		for _, pf := range p.files {
			if pf.Shared {
				continue // the snapshot's guest has it
			}
			if pf.Host != "" {
				hf, err := os.Open(pf.Host)
				if err != nil {
					return err
				}
				fi, err := hf.Stat()
				if err == nil {
					err = w.File(pf.Guest, pf.Mode, fi.Size(), hf)
				}
				hf.Close()
				if err != nil {
					return err
				}
			} else if err := w.File(pf.Guest, pf.Mode, int64(len(pf.Data)), bytesReader(pf.Data)); err != nil {
				return err
			}
		}
		for _, d := range p.dirs {
			if err := w.Dir(d, 0o755); err != nil {
				return err
			}
		}
		return w.Close()
	}()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("run file: %w", err)
	}
	return f, nil
}

// restoreOrBoot runs p from its machine's snapshot when one applies
// (making it on the machine's first use), else boots it cold. A snapshot
// that fails to restore or to be made, before the guest ran any of the
// run, is removed and the run boots cold, saying so in Warnings.
func restoreOrBoot(ctx context.Context, p *plan, accel string) (*Result, error) {
	s, job, why, err := snapshotFor(ctx, p, accel)
	var warn string
	if err != nil {
		if ctx.Err() != nil {
			return &Result{Outcome: outcome.InfraError, Accel: accel, Err: err.Error()}, err
		}
		why, warn = "the snapshot could not be made", "booted cold: the snapshot could not be made: "+err.Error()
	}
	if job != nil {
		res, err := boot(ctx, p, accel, &p.wire, job)
		switch {
		case !job.parked:
			// The boot itself failed: that is this run's result.
			job.abandon()
			if res != nil {
				res.ColdReason = "the guest did not park for its snapshot"
			}
			return res, err
		case !job.saved:
			job.abandon()
			why, warn = "the snapshot could not be made", fmt.Sprintf("booted cold: the snapshot could not be made: %v", err)
		case job.l.console != outcome.Pass:
			// Its boot reported something: every run of it must, so they boot cold.
			refused := fmt.Sprintf("its boot reported %s: %s", job.l.console, firstLine(job.l.excerpt))
			job.commit(refused)
			why = "no snapshot of this machine: " + refused
		default:
			if s, err = job.commit(""); err != nil {
				why, warn = "the snapshot could not be made", "booted cold: the snapshot could not be made: "+err.Error()
			}
		}
	}
	if s != nil {
		res, err := boot(ctx, p, accel, &p.wire, restoreFrom{s})
		if res != nil && res.Snapshot != "" {
			res.SnapshotMade = job != nil
		}
		if res != nil && res.Snapshot == "" && ctx.Err() == nil && errors.Is(err, ErrInfra) {
			why, warn = "the snapshot failed to restore", fmt.Sprintf("booted cold: snapshot %s failed to restore and was removed: %v", s.Key, err)
			unlock, lerr := cache.LockFile(s.path(".lock"))
			if lerr == nil {
				removeSnapshot(s)
				unlock()
			}
		} else {
			return res, err
		}
	}
	res, err := boot(ctx, p, accel, &p.wire, nil)
	if res != nil {
		res.ColdReason = why
		if warn != "" {
			res.Warnings = append(res.Warnings, warn)
		}
	}
	return res, err
}
