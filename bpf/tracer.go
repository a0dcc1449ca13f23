package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/kmatrix/kmatrix/kernels/version"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/hashicorp/go-multierror"
)

// Options configure Load. The zero value probes the kernel for the variant
// and reports every exec on the machine.
type Options struct {
	// Variant forces one variant; empty lets ProbeVariant choose. Forcing
	// VariantBPFLoop on a kernel without bpf_loop fails with a *LoadError
	// wrapping ebpf.ErrNotSupported.
	Variant Variant
	// FilterTgid, when not zero, limits the events to execs by descendants
	// of that process (children, grandchildren, ... up to 32 generations).
	FilterTgid uint32
}

// Resources are the kernel objects a Tracer holds, by id; after Close none
// of them may exist any more.
type Resources struct {
	Programs []ebpf.ProgramID
	Maps     []ebpf.MapID
	Links    []link.ID
}

// Tracer is the loaded exec tracer.
type Tracer struct {
	variant       Variant
	exec          *ebpf.Program
	iter          *ebpf.Program
	events        *ebpf.Map
	bss           *ebpf.Map
	droppedOffset uint32
	reader        *ringbuf.Reader
	stats         []ProgramStats
	execLink      link.Link
	iterLink      *link.Iter
}

// The objects Load asks cilium/ebpf for, one struct per variant because the
// exec program's name is a struct tag. Only what is named here is loaded
// (plus the maps these programs use). Global variables are deliberately not
// assigned as *ebpf.Variable: cilium/ebpf mmaps the data sections behind
// Variables and unmaps them only when the garbage collector runs, so the
// maps would outlive Close; the counter is read with a map lookup instead.
type commonObjects struct {
	Iter   *ebpf.Program `ebpf:"task_states"`
	Events *ebpf.Map     `ebpf:"events"`
	Bss    *ebpf.Map     `ebpf:".bss"`
}

type bpfLoopObjects struct {
	Exec *ebpf.Program `ebpf:"exec_bpf_loop"`
	commonObjects
}

type boundedObjects struct {
	Exec *ebpf.Program `ebpf:"exec_bounded"`
	commonObjects
}

// Attach points, as the C sections name them.
const (
	execAttachPoint = "tp_btf/sched_process_exec"
	iterAttachPoint = "iter/task"
	iterProgram     = "task_states"
)

// Load loads the tracer into the kernel (nothing is attached yet). The
// program variant is opts.Variant or, when empty, what ProbeVariant finds.
// Errors from the kernel are *LoadError.
func Load(opts Options) (*Tracer, error) {
	v := opts.Variant
	if v == "" {
		var err error
		if v, err = ProbeVariant(); err != nil {
			return nil, err
		}
	} else if v.program() == "" {
		return nil, fmt.Errorf("bpf: Options.Variant %q: %w: want %q, %q, or empty to probe the kernel", v, ErrInvalidOptions, VariantBPFLoop, VariantBoundedLoop)
	} else if v == VariantBPFLoop {
		// Fail with a sentence rather than the verifier's "invalid func
		// unknown#181" when the caller forces a variant the kernel lacks.
		if p, err := ProbeVariant(); err == nil && p != VariantBPFLoop {
			return nil, &LoadError{Object: tracerObject(v), Err: fmt.Errorf("this kernel has no bpf_loop helper (%s): %w", version.BPFLoop.Needs(), ebpf.ErrNotSupported)}
		}
	}

	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; later ones
	// use memory cgroups and this is a no-op.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, &LoadError{Object: tracerObject(v), Err: err}
	}

	spec, err := tracerSpec()
	if err != nil {
		return nil, &LoadError{Object: tracerObject(v), Err: err}
	}
	if err := spec.Variables["filter_tgid"].Set(opts.FilterTgid); err != nil {
		return nil, fmt.Errorf("bpf: setting filter_tgid: %w", err)
	}
	dropped := spec.Variables["dropped"]
	if dropped == nil || dropped.SectionName != ".bss" {
		return nil, fmt.Errorf("bpf: the tracer object has no .bss variable \"dropped\": the object and this loader disagree (run make generate)")
	}

	t := &Tracer{variant: v, droppedOffset: dropped.Offset}
	// Only this variant's exec program is loaded: the other one may call a
	// helper this kernel does not have.
	var common *commonObjects
	if v == VariantBPFLoop {
		var o bpfLoopObjects
		err = loadAndAssign(spec, &o)
		t.exec, common = o.Exec, &o.commonObjects
	} else {
		var o boundedObjects
		err = loadAndAssign(spec, &o)
		t.exec, common = o.Exec, &o.commonObjects
	}
	if err != nil {
		return nil, loadError(tracerObject(v), spec, err)
	}
	t.iter, t.events, t.bss = common.Iter, common.Events, common.Bss

	for _, p := range []struct {
		name string
		prog *ebpf.Program
	}{{v.program(), t.exec}, {iterProgram, t.iter}} {
		st, err := VerifierStats(p.name, p.prog)
		if err != nil {
			t.Close()
			return nil, &LoadError{Object: tracerObject(v), Err: err}
		}
		t.stats = append(t.stats, st)
	}
	if t.reader, err = ringbuf.NewReader(t.events); err != nil {
		t.Close()
		return nil, &LoadError{Object: tracerObject(v), Err: fmt.Errorf("opening the events ring buffer: %w", err)}
	}
	return t, nil
}

// parsedTracer is the tracer object parsed once per process: Load takes a
// copy, because it sets the copy's variables. Parsing the ELF and its BTF
// took 40–60 ms of every Load under TCG.
var parsedTracer = sync.OnceValues(loadTracer)

func tracerSpec() (*ebpf.CollectionSpec, error) {
	spec, err := parsedTracer()
	if err != nil {
		return nil, err
	}
	return spec.Copy(), nil
}

// tracerObject names the tracer in errors.
func tracerObject(v Variant) string { return "the " + string(v) + " tracer" }

// Variant is the variant that was loaded.
func (t *Tracer) Variant() Variant { return t.variant }

// Programs describes the loaded programs: the exec program of the variant,
// then the task iterator.
func (t *Tracer) Programs() []ProgramStats { return append([]ProgramStats(nil), t.stats...) }

// Attach attaches the exec program to the sched_process_exec tracepoint and
// links the task iterator. Errors are *AttachError.
func (t *Tracer) Attach() error {
	if t.execLink != nil {
		return errors.New("bpf: Tracer.Attach called twice")
	}
	l, err := link.AttachTracing(link.TracingOptions{Program: t.exec, AttachType: ebpf.AttachTraceRawTp})
	if err != nil {
		return &AttachError{Program: t.variant.program(), Point: execAttachPoint, Err: err}
	}
	it, err := link.AttachIter(link.IterOptions{Program: t.iter})
	if err != nil {
		l.Close()
		return &AttachError{Program: iterProgram, Point: iterAttachPoint, Err: err}
	}
	t.execLink, t.iterLink = l, it
	return nil
}

// Dropped is how many events the program could not submit because the ring
// buffer was full.
func (t *Tracer) Dropped() (uint64, error) {
	if t.bss == nil {
		return 0, fmt.Errorf("bpf: reading the dropped counter: %w", ErrClosed)
	}
	var data []byte
	if err := t.bss.Lookup(uint32(0), &data); err != nil {
		return 0, fmt.Errorf("bpf: reading the dropped counter: %w", err)
	}
	if int(t.droppedOffset)+8 > len(data) {
		return 0, fmt.Errorf("bpf: reading the dropped counter: .bss is %d bytes, the counter is at %d", len(data), t.droppedOffset)
	}
	return binary.NativeEndian.Uint64(data[t.droppedOffset:]), nil
}

// Resources lists the ids of every program, map and link the tracer holds,
// including the maps only its programs hold (.rodata).
func (t *Tracer) Resources() (Resources, error) {
	var r Resources
	if t.exec == nil {
		return r, fmt.Errorf("bpf: resources: %w", ErrClosed)
	}
	for _, p := range []*ebpf.Program{t.exec, t.iter} {
		info, err := p.Info()
		if err != nil {
			return r, fmt.Errorf("bpf: program info: %w", err)
		}
		id, _ := info.ID()
		r.Programs = append(r.Programs, id)
		maps, ok := info.MapIDs()
		if !ok {
			return r, fmt.Errorf("bpf: program %d: the kernel does not report its map ids (needs 4.15+)", id)
		}
		for _, m := range maps {
			if !slices.Contains(r.Maps, m) {
				r.Maps = append(r.Maps, m)
			}
		}
	}
	var links []link.Link
	if t.execLink != nil {
		links = append(links, t.execLink)
	}
	if t.iterLink != nil {
		links = append(links, t.iterLink)
	}
	for _, l := range links {
		info, err := l.Info()
		if err != nil {
			return r, fmt.Errorf("bpf: link info: %w", err)
		}
		r.Links = append(r.Links, info.ID)
	}
	return r, nil
}

// Close detaches and unloads everything. It is safe to call more than once.
func (t *Tracer) Close() error {
	var errs *multierror.Error
	closeOne := func(c io.Closer) {
		if err := c.Close(); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	// Readers and links first: they hold references to the maps and
	// programs.
	if t.reader != nil {
		closeOne(t.reader)
		t.reader = nil
	}
	if t.iterLink != nil {
		closeOne(t.iterLink)
		t.iterLink = nil
	}
	if t.execLink != nil {
		closeOne(t.execLink)
		t.execLink = nil
	}
	for _, p := range []**ebpf.Program{&t.exec, &t.iter} {
		if *p != nil {
			closeOne(*p)
			*p = nil
		}
	}
	for _, m := range []**ebpf.Map{&t.events, &t.bss} {
		if *m != nil {
			closeOne(*m)
			*m = nil
		}
	}
	if err := errs.ErrorOrNil(); err != nil {
		return fmt.Errorf("bpf: closing the tracer: %w", err)
	}
	return nil
}
