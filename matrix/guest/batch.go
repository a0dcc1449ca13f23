package guest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cilium/ebpf/btf"
)

// A batch runs many objects in one guest: all of them in one agent process
// (a worker), so that the kernel's BTF is decoded once rather than once per
// object (some 0.2 s per object under TCG), and yet each object keeps the
// isolation of a process of its own. The supervisor (RunBatch) hands the
// worker one object at a time and relays its results; when the worker dies
// (a panic, a signal, a kernel oops that ends it) or overruns an object's
// time limit, the object it was on gets an end that says so, with the
// worker's last stderr, and every object not yet done is run again, one
// worker process per object. The object the shared worker died on is run
// again alone, last, unless the kernel itself died (an oops): its own
// process then gives its verdict, and nothing it did is blamed on another.

// BatchLine is one line of a batch's output: an object's begin, one of its
// results, or its end. Attempt counts an object's runs: 1 in the shared
// worker, 2 alone after the shared worker died on it. The host keeps each
// object's last attempt.
type BatchLine struct {
	Object  string         `json:"object"`
	Attempt int            `json:"attempt"`
	Begin   *ObjectBegin   `json:"begin,omitempty"`
	Result  *ProgramResult `json:"result,omitempty"`
	End     *ObjectEnd     `json:"end,omitempty"`
}

// ObjectBegin says how an object is run.
type ObjectBegin struct {
	// Alone: in a worker process of its own (after a shared one died).
	Alone bool `json:"alone,omitempty"`
	// Worker is the worker's process ID.
	Worker int `json:"worker"`
	// Spare: the worker was started ahead, warmed up before its run (the
	// spare of a kmatrix-guest prestarted in a guest snapshot).
	Spare bool `json:"spare,omitempty"`
}

// ObjectEnd closes an object's results.
type ObjectEnd struct {
	// Unusable is why the object itself could not be used (not ELF, no
	// programs): an *ObjectError's text.
	Unusable string `json:"unusable,omitempty"`
	// Died says how the worker died while on this object ("killed by
	// signal 9 (killed)", "exit status 2"), and TimedOut that it was
	// killed for overrunning the object's time limit.
	Died     string `json:"died,omitempty"`
	TimedOut bool   `json:"timed_out,omitempty"`
	// KernelDied: the kernel oopsed meanwhile (taint flag D).
	KernelDied bool `json:"kernel_died,omitempty"`
	// Stderr is the end of the dead worker's standard error (a Go panic).
	Stderr string `json:"stderr,omitempty"`
	// Rerun: the object runs again alone (another attempt follows).
	Rerun bool `json:"rerun,omitempty"`
	// DurationMS is how long the attempt took.
	DurationMS float64 `json:"duration_ms"`
}

// ObjectRun is what a batch reported for one object: its last attempt.
type ObjectRun struct {
	Attempts int
	Begin    *ObjectBegin
	Results  []ProgramResult
	// End is nil when the attempt never ended (the guest went down).
	End *ObjectEnd
	// Earlier are the ends of the attempts before the last (the shared
	// worker's death).
	Earlier []ObjectEnd
}

// DecodeBatch reads a batch's output into one ObjectRun per object. A
// line it cannot decode (the note vmtest puts where it cut an output past
// its limit) is skipped, so that the objects before and after it keep
// their results; the error names the first such line.
func DecodeBatch(r io.Reader) (map[string]*ObjectRun, error) {
	runs := map[string]*ObjectRun{}
	var bad error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var bl BatchLine
		if err := json.Unmarshal(line, &bl); err != nil {
			if bad == nil {
				bad = fmt.Errorf("line %d: %w", n, err)
			}
			continue
		}
		or := runs[bl.Object]
		if or == nil {
			or = &ObjectRun{}
			runs[bl.Object] = or
		}
		if bl.Attempt > or.Attempts {
			// A new attempt: the earlier one's results are superseded.
			if or.End != nil {
				or.Earlier = append(or.Earlier, *or.End)
			}
			or.Attempts, or.Begin, or.Results, or.End = bl.Attempt, nil, nil, nil
		}
		switch {
		case bl.Begin != nil:
			or.Begin = bl.Begin
		case bl.Result != nil:
			or.Results = append(or.Results, *bl.Result)
		case bl.End != nil:
			or.End = bl.End
		}
	}
	if err := sc.Err(); err != nil {
		return runs, err
	}
	return runs, bad
}

// BatchOptions tune RunBatch.
type BatchOptions struct {
	// Worker makes the command of one worker process, which reads object
	// paths on stdin and answers with ServeBatch's lines.
	Worker func() *exec.Cmd
	// ObjectTimeout bounds each object's run in a worker; 5 minutes when
	// zero.
	ObjectTimeout time.Duration
	// Spare, when set, is a worker started ahead (StartSpare): it is the
	// shared worker, released with SpareArgs (the whole command line of a
	// worker, as Worker's), SpareEnv and SpareDir.
	Spare               *SpareWorker
	SpareArgs, SpareEnv []string
	SpareDir            string
}

// RunBatch runs objects in worker processes as the package comment says,
// writing BatchLines to out. Its error is for what kept it from running
// workers at all.
func RunBatch(objects []string, opts BatchOptions, out io.Writer) error {
	if opts.ObjectTimeout == 0 {
		opts.ObjectTimeout = 5 * time.Minute
	}
	s := &supervisor{opts: opts, enc: json.NewEncoder(out), attempts: map[string]int{}}
	pending := objects
	var culprits []string
	for len(pending) > 0 {
		// The shared worker takes every object; once one died, each
		// object gets a worker of its own.
		done, dead, err := s.worker(pending, !s.alone)
		if err != nil {
			return err
		}
		pending = pending[done:]
		if dead == "" {
			continue
		}
		pending = pending[1:] // the object it died on
		if !s.alone && !s.kernelDied() {
			culprits = append(culprits, dead)
		}
		s.alone = true
	}
	// Last: if one of them kills the guest, the others have reported.
	for _, obj := range culprits {
		s.rerun = true
		if _, _, err := s.worker([]string{obj}, false); err != nil {
			return err
		}
	}
	return nil
}

type supervisor struct {
	opts     BatchOptions
	enc      *json.Encoder
	mu       sync.Mutex
	attempts map[string]int
	// alone: a shared worker died; every object now runs in its own.
	alone bool
	// rerun: culprits' second attempts.
	rerun bool
	// taint is the kernel's taint before the first worker.
	taint, taintSet bool
}

func (s *supervisor) emit(l BatchLine) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.enc.Encode(l)
}

// kernelDied reports whether the kernel oopsed since the batch began
// (TAINT_DIE, "D", bit 7 of /proc/sys/kernel/tainted).
func (s *supervisor) kernelDied() bool {
	b, err := os.ReadFile("/proc/sys/kernel/tainted")
	if err != nil {
		return false
	}
	n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	died := n&(1<<7) != 0
	if !s.taintSet {
		s.taint, s.taintSet = died, true
		return false
	}
	return died && !s.taint
}

// worker runs objects in one worker process, in order, until it has done
// them all or dies. It returns how many it finished, and the object it
// died on ("" if none).
func (s *supervisor) worker(objects []string, shared bool) (int, string, error) {
	s.kernelDied() // the taint to compare with, once
	var w *workerProc
	usedSpare := false
	if spare := s.opts.Spare; shared && spare != nil {
		s.opts.Spare = nil
		if err := spare.proc.Release(s.opts.SpareArgs, s.opts.SpareEnv, s.opts.SpareDir); err == nil {
			w, usedSpare = spare.w, true
		}
	}
	if w == nil {
		var err error
		if w, err = startWorker(s.opts.Worker()); err != nil {
			return 0, "", err
		}
	}
	cmd, stdin, stdout, stderr := w.cmd, w.stdin, w.stdout, w.stderr
	lines := make(chan BatchLine)
	readErr := make(chan error, 1)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		for sc.Scan() {
			var l BatchLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				readErr <- fmt.Errorf("worker wrote %q: %w", sc.Text(), err)
				return
			}
			lines <- l
		}
	}()
	finish := func() error {
		stdin.Close()
		return cmd.Wait()
	}

	for i, obj := range objects {
		s.attempts[obj]++
		attempt := s.attempts[obj]
		s.emit(BatchLine{Object: obj, Attempt: attempt, Begin: &ObjectBegin{Alone: !shared, Worker: cmd.Process.Pid, Spare: usedSpare}})
		start := time.Now()
		if _, err := fmt.Fprintln(stdin, obj); err != nil {
			// It is gone already; the wait below says how.
			_ = err
		}
		timer := time.NewTimer(s.opts.ObjectTimeout)
		ended, timedOut := false, false
	read:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break read
				}
				l.Object, l.Attempt = obj, attempt
				if l.End != nil {
					l.End.DurationMS = msSince(start)
					s.emit(l)
					ended = true
					break read
				}
				s.emit(l)
			case <-timer.C:
				timedOut = true
				cmd.Process.Kill()
				break read
			}
		}
		timer.Stop()
		if ended {
			continue
		}
		// The worker died on obj (or was killed for overrunning).
		for range lines { // drain what it wrote before it died
		}
		werr := cmd.Wait()
		end := &ObjectEnd{TimedOut: timedOut, Stderr: strings.TrimSpace(stderr.String()), KernelDied: s.kernelDied(),
			DurationMS: msSince(start)}
		end.Died = describeExit(werr)
		if timedOut {
			end.Died = fmt.Sprintf("killed after overrunning the object's time limit of %v (%s)", s.opts.ObjectTimeout, end.Died)
		}
		select {
		case err := <-readErr:
			end.Died += "; " + err.Error()
		default:
		}
		end.Rerun = shared && !timedOut && !end.KernelDied
		s.emit(BatchLine{Object: obj, Attempt: attempt, End: end})
		return i, obj, nil
	}
	if err := finish(); err != nil {
		// Every object ended: a worker that then fails to exit cleanly
		// has lost nothing; say so on stderr for the log.
		fmt.Fprintf(os.Stderr, "kmatrix-guest: worker %d: %s\n", cmd.Process.Pid, describeExit(err))
	}
	return len(objects), "", nil
}

// workerProc is a started worker process.
type workerProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout io.Reader
	stderr *tailBuffer // its last 8 KiB, the evidence when it dies
}

func startWorker(cmd *exec.Cmd) (*workerProc, error) {
	w, err := newWorker(cmd)
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting a kmatrix-guest worker: %w", err)
	}
	return w, nil
}

// newWorker sets up a worker's pipes, before it starts.
func newWorker(cmd *exec.Cmd) (*workerProc, error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	w := &workerProc{cmd: cmd, stdin: stdin, stdout: stdout, stderr: &tailBuffer{max: 8 << 10}}
	cmd.Stderr = w.stderr
	return w, nil
}

// describeExit says in words how a worker process ended.
func describeExit(err error) string {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		if err == nil {
			return "exited with status 0 before finishing the object"
		}
		return err.Error()
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
	}
	return ee.Error()
}

// ServeBatch is a worker: for each object path read from in (one per
// line), it runs LoadObject with opts and writes its results and then its
// end to out as BatchLines (the supervisor fills in the object and the
// attempt). It returns when in ends.
func ServeBatch(in io.Reader, out io.Writer, opts Options) error {
	enc := json.NewEncoder(out)
	var writeErr error
	write := func(l BatchLine) {
		if err := enc.Encode(l); err != nil && writeErr == nil {
			writeErr = err
		}
	}
	if opts.BTF == nil {
		// The point of a worker: the kernel's BTF decoded once.
		opts.BTF = btf.NewCache()
	}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		obj := sc.Text()
		if obj == "" {
			continue
		}
		o := opts
		o.OnResult = func(r ProgramResult) { write(BatchLine{Object: obj, Result: &r}) }
		end := &ObjectEnd{}
		if _, err := LoadObject(obj, o); err != nil {
			end.Unusable = err.Error()
		}
		write(BatchLine{Object: obj, End: end})
		if writeErr != nil {
			return writeErr
		}
	}
	return sc.Err()
}
