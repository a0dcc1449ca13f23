package vmtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/vmtest/internal/wire"
)

// Watchdogs of the phases after the kernel's boot. Each is also bounded by
// the VM's deadline. They are generous because TCG on a loaded machine is
// slow; they exist so a hang is named by its phase.
const (
	initPhaseTimeout     = 60 * time.Second // mounts and setup, normally milliseconds
	commandGrace         = 15 * time.Second // past a command's own Timeout, enforced by the guest
	poweroffPhaseTimeout = 30 * time.Second // sync and ACPI power-off
	// oopsGrace is how long a guest may go without sending an event after
	// an oops before it is stopped. A task that oopses dies, often holding
	// locks (an oops in a module's init holds the module mutex), so the
	// guest may never get further: without this, an oops on load cost the
	// whole VM timeout (on 7.2 the loader hangs; on 6.12 and older it dies).
	oopsGrace = 20 * time.Second
	// stallGrace is how long a command may still take after the kernel
	// reported it stuck (a soft lockup, a hung task, an RCU stall) before
	// the guest is stopped: time for the report's trace to reach the
	// console, or for a command that was only slow to end by itself.
	stallGrace = 5 * time.Second
	// bootFloorFactor times the boot floor is the default boot deadline.
	bootFloorFactor = 10
	// defaultBootFloor stands in for an unmeasured floor (Spec.BootFloor).
	defaultBootFloor = 4 * time.Second
	killWait         = 10 * time.Second // for QEMU to die after SIGKILL
	drainWait        = 5 * time.Second  // for the serial pipes to empty after QEMU's exit
)

// Run boots spec.Kernel in QEMU with a generated initramfs, runs
// spec.Commands in the guest one after another, and reports what happened.
//
// The error is non-nil for an invalid spec (a *SpecError, no Result), a
// missing QEMU (ErrQEMUNotFound, no Result), and for failures of vmtest's
// own machinery (ErrInfra) or a cancelled ctx, for which the Result, with
// Outcome InfraError, holds what was gathered. A guest that fails, hangs or
// crashes is not an error: the Result says so.
func Run(ctx context.Context, spec Spec) (*Result, error) {
	p, err := newPlan(spec)
	if err != nil {
		return nil, err
	}
	release, err := acquireSlot(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	// The initramfs base first: a failure to build it is ours, and must not
	// be mistaken for KVM failing its trial boot.
	if _, err := baseArchive(ctx, p.arch); err != nil {
		return &Result{Outcome: outcome.InfraError, Err: err.Error()}, err
	}
	acc, err := chooseAccel(ctx, p)
	if err != nil {
		return &Result{Outcome: outcome.InfraError, Err: err.Error()}, err
	}
	res, err := restoreOrBoot(ctx, p, acc.Accel)
	if res != nil {
		res.AccelReason = acc.Reason
	}
	return res, err
}

// vmRun is the state of one boot.
type vmRun struct {
	p     *plan
	ws    *wire.Spec
	res   *Result
	out   []*[2]*headTail
	start time.Time

	tROM, tHello, tReady, tLastExit, tBye, tExit time.Time

	phase string
	// oopsPhase is the phase the first oops came in; stalledAfterOops
	// that the guest was stopped oopsGrace after it.
	oopsPhase        string
	stalledAfterOops bool
	// stall is the first stall report the kernel printed (kind, line and
	// phase); stoppedOnStall that the guest was stopped for it (or for no
	// progress after it), noProgress that it was stopped for silence,
	// bootTimedOut that the kernel never reached the init.
	stall          *stallReport
	stoppedOnStall bool
	noProgress     bool
	bootTimedOut   bool
	cur            int // the running command, -1 outside one
	// findingPhase is the phase the worst console report came in.
	findingWorst outcome.Outcome
	findingPhase string
	started      []bool
	exited       []bool
	bye          bool
	initErrs     []string
	// restored: the guest took up its run from a snapshot (wire.Resumed);
	// launchErr is why the restore failed.
	restored  bool
	launchErr error
	l         *launch
}

type stallReport struct{ kind, line, phase string }

// bootDeadline is how long the kernel may take to reach the init.
func bootDeadline(s Spec) time.Duration {
	if s.BootTimeout > 0 {
		return s.BootTimeout
	}
	floor := s.BootFloor
	if floor <= 0 {
		floor = defaultBootFloor
	}
	return bootFloorFactor * floor
}

// boot runs one VM to its end: booted cold, or restored from a snapshot.
func boot(ctx context.Context, p *plan, accel string, ws *wire.Spec, from launcher) (*Result, error) {
	v := &vmRun{p: p, ws: ws, phase: "kernel", findingWorst: outcome.Pass, cur: -1,
		res:     &Result{Arch: p.arch, Accel: accel, Commands: make([]CommandResult, len(ws.Commands))},
		started: make([]bool, len(ws.Commands)), exited: make([]bool, len(ws.Commands))}
	for i, c := range ws.Commands {
		v.res.Commands[i] = CommandResult{Name: c.Name, ExitCode: -1}
		v.out = append(v.out, &[2]*headTail{newHeadTail(p.spec.OutputLimit), newHeadTail(p.spec.OutputLimit)})
	}
	infra := func(err error) (*Result, error) {
		if !errors.Is(err, ErrInfra) {
			err = fmt.Errorf("%w: %w", ErrInfra, err)
		}
		v.res.Outcome, v.res.Err = outcome.InfraError, err.Error()
		return v.res, err
	}

	conR, conW, err := os.Pipe()
	if err != nil {
		return infra(err)
	}
	defer conR.Close()
	var l *launch
	if from == nil {
		l, err = coldLaunch(ctx, p, accel, ws, conW)
	} else {
		l, err = from.launch(ctx, p, accel, ws, conW)
	}
	if err != nil {
		conW.Close()
		return infra(err)
	}
	defer l.close()
	v.l = l

	cmd := exec.Command(p.qemu, l.args...)
	cmd.ExtraFiles = l.files
	qemuOut := newRing(16 << 10)
	cmd.Stdout, cmd.Stderr = qemuOut, qemuOut
	// Its own process group, killed as a whole; and killed with us if we die.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	// Pdeathsig fires when the thread that forked QEMU exits, not the
	// process: keep this goroutine on one thread while starting it.
	runtime.LockOSThread()
	v.start = time.Now()
	err = cmd.Start()
	runtime.UnlockOSThread()
	for _, f := range l.files {
		f.Close() // QEMU has its copies
	}
	l.files = nil
	if err != nil {
		return infra(fmt.Errorf("start %s: %v", p.qemu, err))
	}
	pgid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	qemuGone := false
	kill := func() {
		syscall.Kill(-pgid, syscall.SIGKILL)
	}
	defer func() {
		if !qemuGone {
			kill()
			<-exited
		}
	}()
	if l.started != nil {
		go func() { l.done <- l.started(kill) }()
	}

	rom := make(chan time.Time, 1)
	scanner := newConsoleScanner(p.spec.Console, func(line string) {
		if strings.Contains(line, "Booting from ROM") {
			select {
			case rom <- time.Now():
			default:
			}
		}
	})
	// The console is read on its own goroutine; its findings come to the
	// loop, which knows the phase. Only a finding worse than the ones
	// before is sent, so the channel never fills.
	findings := make(chan outcome.Outcome, len(outcome.All))
	sent := outcome.Pass
	scanner.onFinding = func(o outcome.Outcome) {
		if o.Severity() > sent.Severity() {
			sent = o
			findings <- o
		}
	}
	finding := func(o outcome.Outcome) {
		if o.Severity() > v.findingWorst.Severity() {
			v.findingWorst, v.findingPhase = o, v.phase
		}
	}
	var afterOops <-chan time.Time
	// Stall reports come to the loop like findings; a full channel drops
	// one, the first is what counts.
	stalls := make(chan stallReport, 8)
	scanner.onStall = func(kind, line string) {
		select {
		case stalls <- stallReport{kind: kind, line: line}:
		default:
		}
	}
	var afterStall <-chan time.Time
	stallCmd := -1
	progressLimit := progressLimitOf(p.spec)
	lastProgress := time.Now()
	progressCheck := time.NewTicker(time.Second)
	defer progressCheck.Stop()
	consoleDone := make(chan struct{})
	go func() {
		io.Copy(scanner, conR)
		scanner.flush()
		close(consoleDone)
	}()
	events := make(chan *wire.Event, 64)
	go readEvents(l.events, events)

	overall := time.NewTimer(p.spec.Timeout)
	defer overall.Stop()
	phaseTimer := time.NewTimer(time.Hour)
	phaseTimer.Stop()
	defer phaseTimer.Stop()
	setPhase := func(name string, limit time.Duration) {
		v.phase = name
		phaseTimer.Stop()
		if limit > 0 {
			phaseTimer.Reset(limit)
		}
	}
	setPhase(l.phase, l.phaseLimit)

	var (
		exitErr   error
		timedOut  bool
		cancelled error
	)
loop:
	for {
		select {
		case t := <-rom:
			v.tROM = t
		case e, ok := <-events:
			if !ok {
				events = nil // the guest side is closed; wait for QEMU
				continue
			}
			v.handle(e, setPhase)
			lastProgress = time.Now()
			if afterOops != nil && e.Kind != wire.Alive {
				// The guest still makes progress. The heartbeat does not
				// count: the init lives on while the oopsed task's
				// waiters hang.
				afterOops = time.After(oopsGrace)
			}
			if afterStall != nil && (stallCmd < 0 || v.exited[stallCmd]) {
				afterStall = nil // the stuck command ended by itself: a splat, not a hang
			}
		case st := <-stalls:
			if v.stall == nil {
				st.phase = v.phase
				v.stall = &st
				stallCmd = v.cur
				// After an oops the stuck tasks are its consequence: the
				// oops grace decides, and the oops is the finding.
				if v.phase != "kernel" && v.phase != "poweroff" && afterOops == nil {
					afterStall = time.After(stallGrace)
				}
			}
		case <-afterStall:
			v.stoppedOnStall = true
			timedOut = true
			kill()
		case <-progressCheck.C:
			if progressLimit > 0 && v.cur >= 0 && time.Since(lastProgress) > progressLimit {
				v.noProgress = true
				v.stoppedOnStall = v.stall != nil
				timedOut = true
				kill()
			}
		case exitErr = <-exited:
			qemuGone = true
			// Events already decoded happened before the exit: apply
			// them first, so the phases' times stay in order.
			for pending := true; pending && events != nil; {
				select {
				case e, ok := <-events:
					if !ok {
						events = nil
						break
					}
					v.handle(e, setPhase)
				default:
					pending = false
				}
			}
			break loop
		case o := <-findings:
			finding(o)
			if o == outcome.Oops && afterOops == nil {
				v.oopsPhase = v.phase
				afterOops = time.After(oopsGrace)
			}
		case <-afterOops:
			v.stalledAfterOops = true
			timedOut = true
			kill()
		case <-phaseTimer.C:
			timedOut = true
			v.bootTimedOut = v.phase == "kernel"
			kill()
		case <-overall.C:
			timedOut = true
			kill()
		case <-ctx.Done():
			cancelled = ctx.Err()
			// Gracefully: QEMU quits on SIGTERM; SIGKILL if it does not.
			syscall.Kill(-pgid, syscall.SIGTERM)
			select {
			case exitErr = <-exited:
			case <-time.After(2 * time.Second):
				kill()
				exitErr = <-exited
			}
			qemuGone = true
			break loop
		}
		if timedOut {
			select {
			case exitErr = <-exited:
				qemuGone = true
			case <-time.After(killWait):
				return infra(fmt.Errorf("QEMU (pid %d) did not die within %v of SIGKILL", pgid, killWait))
			}
			break loop
		}
	}
	v.tExit = time.Now()
	syscall.Kill(-pgid, syscall.SIGKILL) // anything QEMU left in its group

	// Whatever the guest wrote before the end is still in the pipes.
	drain := time.After(drainWait)
	for events != nil {
		select {
		case e, ok := <-events:
			if !ok {
				events = nil
				break
			}
			v.handle(e, setPhase)
		case <-drain:
			events = nil
		}
	}
	select {
	case <-consoleDone:
	case <-drain:
	}
	for len(findings) > 0 {
		finding(<-findings)
	}
	select {
	case t := <-rom:
		v.tROM = t
	default:
	}

	if l.started != nil {
		kill() // QEMU is gone; and if not, the hook must not wait for it
		v.launchErr = <-l.done
	}
	if v.restored {
		v.res.Snapshot = l.snapshot
	}
	l.console, l.excerpt = scanner.Outcome(), scanner.Excerpt()
	return v.finish(scanner, qemuOut, exitErr, timedOut, cancelled)
}

// readEvents decodes frames from the event port until EOF. Lines are
// bounded: a frame carries at most 32 KiB of output, so a longer line is
// damage, dropped rather than buffered.
func readEvents(r io.Reader, out chan<- *wire.Event) {
	defer close(out)
	br := bufio.NewReaderSize(r, 128<<10)
	var long bool
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = true
			continue
		}
		if long {
			long = false
		} else if len(line) > 0 {
			if e, derr := wire.Decode(line); derr == nil {
				out <- e
			}
		}
		if err != nil {
			return
		}
	}
}

// handle applies one guest event.
func (v *vmRun) handle(e *wire.Event, setPhase func(string, time.Duration)) {
	now := time.Now()
	if !v.tExit.IsZero() && now.After(v.tExit) {
		now = v.tExit // drained after QEMU's exit, sent before it
	}
	cmdAt := func(i int) (*CommandResult, bool) {
		if i < 0 || i >= len(v.res.Commands) {
			return nil, false
		}
		return &v.res.Commands[i], true
	}
	switch e.Kind {
	case wire.Hello:
		v.tHello = now
		setPhase("init", initPhaseTimeout)
	case wire.Parked:
		if v.l.parked != nil {
			select {
			case v.l.parked <- struct{}{}:
			default:
			}
		}
	case wire.Resumed:
		// A restored guest's first word: its "kernel" phase was the restore.
		v.tHello, v.restored = now, true
		setPhase("init", initPhaseTimeout)
	case wire.Ready:
		v.tReady = now
		v.res.Warnings = append(v.res.Warnings, e.Warnings...)
		v.nextPhase(0, setPhase)
	case wire.Start:
		if _, ok := cmdAt(e.Index); !ok {
			return
		}
		v.started[e.Index] = true
		v.cur = e.Index
		v.nextPhase(e.Index, setPhase)
	case wire.Output, wire.Gap:
		if _, ok := cmdAt(e.Index); !ok || e.FD < 1 || e.FD > 2 {
			return
		}
		data := e.Data
		if e.Kind == wire.Gap {
			data = []byte(gapLine(e.Skipped))
		}
		v.out[e.Index][e.FD-1].Write(data)
		c := v.p.spec.Commands
		if e.Index < len(c) {
			if w := [2]io.Writer{c[e.Index].Stdout, c[e.Index].Stderr}[e.FD-1]; w != nil {
				w.Write(data)
			}
		}
	case wire.Exit:
		r, ok := cmdAt(e.Index)
		if !ok {
			return
		}
		v.exited[e.Index] = true
		v.cur = -1
		r.ExitCode, r.Err, r.Duration = e.Code, e.Err, e.Duration
		if e.Err != "" && e.Code == 0 {
			r.ExitCode = -1
		}
		v.tLastExit = now
		v.nextPhase(e.Index+1, setPhase)
	case wire.Log:
		v.initErrs = append(v.initErrs, e.Message)
	case wire.Bye:
		v.tBye = now
		v.bye = true
		setPhase("poweroff", poweroffPhaseTimeout)
	}
}

// nextPhase is command i's phase, or poweroff after the last.
func (v *vmRun) nextPhase(i int, setPhase func(string, time.Duration)) {
	if i >= len(v.ws.Commands) {
		setPhase("poweroff", poweroffPhaseTimeout)
		return
	}
	c := v.ws.Commands[i]
	var limit time.Duration
	if c.Timeout > 0 {
		limit = c.Timeout + commandGrace
	}
	setPhase("command "+c.Name, limit)
}

// finish turns what was observed into the Result.
func (v *vmRun) finish(sc *consoleScanner, qemuOut *ring, exitErr error, timedOut bool, cancelled error) (*Result, error) {
	res := v.res
	for i := range res.Commands {
		h := v.out[i]
		res.Commands[i].Stdout = h[0].Bytes()
		res.Commands[i].Stderr = h[1].Bytes()
	}
	res.Console = sc.tail.Bytes()
	v.timings()

	cons := sc.Outcome()
	worst := []outcome.Outcome{cons}
	if cons != outcome.Pass {
		res.Excerpt = sc.Excerpt()
	}

	// Commands that did not finish, and why.
	why := ""
	switch {
	case cancelled != nil:
		why = "cancelled"
	case v.stalledAfterOops:
		why = "the kernel oopsed during " + v.oopsPhase
	case v.stoppedOnStall:
		why = "timeout: the kernel reported a " + v.stall.kind + " during " + v.stall.phase
	case v.noProgress:
		why = "timeout: the guest made no progress"
	case v.bootTimedOut:
		why = "the kernel did not boot"
	case timedOut:
		why = "timeout"
	case cons == outcome.KernelPanic:
		why = "the kernel panicked"
	case !v.bye && v.tHello.IsZero() && cons == outcome.Pass:
		why = "the kernel did not boot"
	case !v.bye:
		why = "the VM stopped"
	}
	for i := range res.Commands {
		r := &res.Commands[i]
		switch {
		case v.exited[i] && r.Err == "" && r.ExitCode == 0:
			continue
		case v.exited[i]:
		case v.started[i]:
			r.Err = why
		default:
			r.Err = "not run: " + why
		}
		if r.Err == "timeout" || strings.HasPrefix(r.Err, "timeout: ") {
			worst = append(worst, outcome.Timeout)
			if res.Phase == "" && !timedOut {
				res.Phase = "command " + r.Name
			}
		} else {
			worst = append(worst, outcome.Fail)
		}
	}

	var err error
	switch {
	case cancelled != nil:
		err = fmt.Errorf("%w: run cancelled: %w", ErrInfra, cancelled)
	case v.launchErr != nil && !v.restored:
		err = fmt.Errorf("%w: restore the snapshot: %v%s", ErrInfra, v.launchErr, qemuSays(qemuOut))
	case v.stalledAfterOops:
		// Not a timeout of the guest's making: the oops is the finding.
		res.Phase = v.oopsPhase
		res.Err = fmt.Sprintf("the kernel oopsed during %s, then the guest made no progress for %v: stopped it", v.oopsPhase, oopsGrace)
	case v.stoppedOnStall:
		// The kernel said the command is stuck: a timeout (the guest would
		// never have got further), with the kernel's report as evidence,
		// not a splat of the payload's.
		res.Phase = v.stall.phase
		if worst[0] == outcome.Splat {
			worst[0] = outcome.Timeout
		}
		worst = append(worst, outcome.Timeout)
		after := stallGrace
		if v.noProgress {
			after = progressLimitOf(v.p.spec)
		}
		res.Err = fmt.Sprintf("timeout: the kernel reported a %s during %s (%q) and the guest did not get past it within %v: stopped it", v.stall.kind, v.stall.phase, strings.TrimSpace(v.stall.line), after)
	case v.noProgress:
		res.Phase = v.phase
		worst = append(worst, outcome.Timeout)
		if res.Excerpt == "" {
			res.Excerpt = sc.lastLines(40)
		}
		res.Err = fmt.Sprintf("timeout: the guest made no progress for %v during %s (no event from its init, which sends one every %v): stopped it", progressLimitOf(v.p.spec), v.phase, wire.AliveInterval)
	case v.bootTimedOut:
		err = fmt.Errorf("%w: the kernel did not boot: the guest init did not start within %v (Spec.BootTimeout; default 10 × the boot floor)", ErrInfra, bootDeadline(v.p.spec))
		res.Phase = "kernel"
	case timedOut:
		res.Phase = v.phase
		worst = append(worst, outcome.Timeout)
		if res.Excerpt == "" {
			res.Excerpt = sc.lastLines(40)
		}
		if res.Excerpt == "" && v.restored {
			res.Excerpt = "(the kernel printed nothing on its console since the guest was restored from its snapshot)"
		}
		res.Err = fmt.Sprintf("timeout in phase %q after %v", v.phase, res.Timings.Total.Round(time.Millisecond))
	case len(v.initErrs) > 0:
		err = fmt.Errorf("%w: the guest init failed: %s", ErrInfra, strings.Join(v.initErrs, "; "))
	case cons == outcome.KernelPanic:
		// QEMU exits after the panic reboot (-no-reboot): expected.
	case exitErr != nil:
		err = fmt.Errorf("%w: QEMU exited: %v%s", ErrInfra, exitErr, qemuSays(qemuOut))
	case !v.bye && v.tHello.IsZero() && cons == outcome.Pass:
		err = fmt.Errorf("%w: the kernel did not boot: the VM stopped (reset or triple fault) before the guest init started; is the vmlinuz corrupted?%s", ErrInfra, qemuSays(qemuOut))
	case !v.bye:
		err = fmt.Errorf("%w: the VM stopped before the guest init finished (reset or triple fault?)%s", ErrInfra, qemuSays(qemuOut))
	}
	if err != nil {
		worst = append(worst, outcome.InfraError)
		res.Err = err.Error()
		if res.Excerpt == "" {
			res.Excerpt = sc.lastLines(20)
		}
	}
	if res.Phase == "" && cons != outcome.Pass {
		res.Phase = v.findingPhase
	}
	res.Outcome = outcome.Worst(worst...)
	return res, err
}

func progressLimitOf(s Spec) time.Duration {
	if s.ProgressTimeout == 0 {
		return DefaultProgressTimeout
	}
	return s.ProgressTimeout
}

func qemuSays(r *ring) string {
	s := strings.TrimSpace(string(r.Bytes()))
	if s == "" {
		return ""
	}
	return "; QEMU said: " + s
}

func (v *vmRun) timings() {
	t := &v.res.Timings
	t.Total = v.tExit.Sub(v.start)
	kernelStart := v.start
	if v.restored {
		t.Restore = v.tHello.Sub(v.start)
		kernelStart = v.tHello
	} else if !v.tROM.IsZero() {
		t.QEMUStart = v.tROM.Sub(v.start)
		kernelStart = v.tROM
	}
	last := kernelStart
	if !v.tHello.IsZero() && !v.restored {
		t.Kernel = v.tHello.Sub(kernelStart)
		last = v.tHello
	}
	if !v.tReady.IsZero() {
		t.Init = v.tReady.Sub(v.tHello)
		last = v.tReady
	}
	if !v.tLastExit.IsZero() {
		t.Commands = v.tLastExit.Sub(v.tReady)
		last = v.tLastExit
	}
	if v.bye {
		t.Poweroff = v.tExit.Sub(last)
	}
}
