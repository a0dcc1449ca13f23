package guest

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// Options tune LoadObject. The zero value is what kmatrix-guest uses in a
// guest VM.
type Options struct {
	// Interface is the network interface xdp and tcx programs are attached
	// to; "lo" when empty.
	Interface string
	// CgroupPath is the cgroup v2 directory cgroup programs are attached
	// to; the first cgroup2 mount when empty.
	CgroupPath string
	// Programs, when not empty, limits the run to these programs (by name).
	Programs []string
	// Check is the user's check command (argv; the guest has no shell), run
	// once every program is attached, before they are detached.
	Check []string
	// CheckTimeout bounds the check command; 60 s when zero.
	CheckTimeout time.Duration
	// LogLines is how many lines from the end of a verifier log a result
	// keeps; 50 when zero.
	LogLines int
	// OnResult, if set, is called with each result as soon as it is known,
	// so a guest that crashes halfway has still reported what came before.
	OnResult func(ProgramResult)
}

// ObjectError is returned by LoadObject when the object itself is unusable
// (missing, not an ELF, not BPF, no programs), as opposed to the failures
// of its programs, which are results.
type ObjectError struct {
	Path string
	Err  error
}

func (e *ObjectError) Error() string {
	return fmt.Sprintf("BPF object %s: %v", e.Path, e.Err)
}

func (e *ObjectError) Unwrap() error { return e.Err }

// ErrNoPrograms is wrapped by the ObjectError of an object without programs.
var ErrNoPrograms = errors.New("no BPF programs in it (no executable section other than .text)")

// LoadObject loads every program of the BPF ELF object at path on its own,
// attaches each one that loaded where its section says, runs the optional
// check command, detaches everything, and returns one result per program
// and stage (see ProgramResult). Program failures are results; the error is
// for an unusable object (an *ObjectError) only.
func LoadObject(path string, opts Options) ([]ProgramResult, error) {
	spec, err := ebpf.LoadCollectionSpec(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &ObjectError{path, fmt.Errorf("%w: pass the path of a BPF ELF object (the output of clang -target bpf -c)", fs.ErrNotExist)}
	}
	if err != nil {
		return nil, &ObjectError{path, fmt.Errorf("not a usable BPF ELF object (want the output of clang -target bpf -c): %w", err)}
	}
	if len(spec.Programs) == 0 {
		return nil, &ObjectError{path, ErrNoPrograms}
	}
	progs := make([]*ebpf.ProgramSpec, 0, len(spec.Programs))
	for _, p := range spec.Programs {
		progs = append(progs, p)
	}
	if len(opts.Programs) > 0 {
		var missing []string
		for _, name := range opts.Programs {
			if spec.Programs[name] == nil {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			have := slices.Sorted(maps.Keys(spec.Programs))
			return nil, &ObjectError{path, fmt.Errorf("no program named %q in it: it has %q", missing, have)}
		}
		progs = slices.DeleteFunc(progs, func(p *ebpf.ProgramSpec) bool { return !slices.Contains(opts.Programs, p.Name) })
	}
	// Section then name: the order a reader of the C file expects.
	slices.SortFunc(progs, func(a, b *ebpf.ProgramSpec) int {
		return cmp.Or(cmp.Compare(a.SectionName, b.SectionName), cmp.Compare(a.Name, b.Name))
	})

	r := runner{
		spec:  spec,
		opts:  opts,
		cache: btf.NewCache(), // parse the kernel's BTF once, not per program
		env:   &env{iface: cmp.Or(opts.Interface, "lo"), cgroupPath: opts.CgroupPath},
	}
	if r.opts.LogLines == 0 {
		r.opts.LogLines = 50
	}
	defer r.closeAll()

	for _, p := range progs {
		r.program(p)
	}
	if len(opts.Check) > 0 {
		r.emit(runCheck(opts.Check, cmp.Or(opts.CheckTimeout, 60*time.Second)))
	}
	r.detachAll()
	return r.results, nil
}

// runner holds one LoadObject call's state.
type runner struct {
	spec    *ebpf.CollectionSpec
	opts    Options
	cache   *btf.Cache
	env     *env
	results []ProgramResult
	live    []*loaded
}

// loaded is a program in the kernel, with its maps and attachment.
type loaded struct {
	spec    *ebpf.ProgramSpec
	point   string
	objects []io.Closer // the program and its maps
	link    io.Closer   // nil when not attached
}

func (r *runner) emit(pr ProgramResult) {
	r.results = append(r.results, pr)
	if r.opts.OnResult != nil {
		r.opts.OnResult(pr)
	}
}

func result(p *ebpf.ProgramSpec, stage Stage, start time.Time) ProgramResult {
	return ProgramResult{
		Program:    p.Name,
		Section:    p.SectionName,
		Type:       p.Type.String(),
		Stage:      stage,
		DurationMS: float64(time.Since(start).Microseconds()) / 1000,
	}
}

// program loads and attaches one program, emitting its results.
func (r *runner) program(p *ebpf.ProgramSpec) {
	start := time.Now()
	if p.Type == ebpf.UnspecifiedProgram {
		res := result(p, StageLoad, start)
		res.Outcome = outcome.NotAttached
		res.Facts.Class = ClassUnknownSection
		res.Message = fmt.Sprintf("section %q names no BPF program type that libbpf or cilium/ebpf know, so the program was neither loaded nor attached", p.SectionName)
		r.emit(res)
		return
	}

	prog, objects, err := r.load(p)
	res := result(p, StageLoad, start)
	if err != nil {
		closeAll(objects)
		res.Outcome = outcome.LoadError
		res.Facts, res.Message, res.Log = loadFailure(err, p, r.spec.Types, r.opts.LogLines)
		res.Message = trimLoaderPrefix(res.Message, p.Name)
		r.emit(res)
		return
	}
	l := &loaded{spec: p, objects: objects}
	r.live = append(r.live, l)
	res.Outcome = outcome.Pass
	insns := verifiedInsns(prog)
	res.Facts.VerifiedInsns = &insns
	if insns.Known {
		res.Message = fmt.Sprintf("loaded: the verifier processed %d instructions", insns.N)
	} else {
		res.Message = "loaded (verified instruction count unknown: the kernel reports it since Linux 5.16)"
	}
	r.emit(res)

	start = time.Now()
	plan := planAttach(p, r.env)
	l.point = plan.point
	if plan.attach == nil {
		res := result(p, StageAttach, start)
		res.Outcome = outcome.NotAttached
		res.Facts.Class = ClassNoAttachPoint
		res.Facts.AttachPoint = plan.point
		res.Message = "loaded but not attached: " + plan.reason
		r.emit(res)
		return
	}
	lnk, err := plan.attach(prog)
	res = result(p, StageAttach, start)
	res.Facts.AttachPoint = plan.point
	if err != nil {
		res.Outcome = outcome.AttachError
		res.Facts, res.Message = attachFailure(err, plan)
		r.emit(res)
		return
	}
	l.link = lnk
	res.Outcome = outcome.Pass
	res.Message = "attached: " + plan.point
	r.emit(res)
}

// load loads p with only the maps it references, from the shared spec,
// through cilium/ebpf's lazy loader (CollectionSpec.LoadAndAssign), so that
// neither another program nor a map only another program uses can make it
// fail. It returns the program and everything to close afterwards.
func (r *runner) load(p *ebpf.ProgramSpec) (*ebpf.Program, []io.Closer, error) {
	var used []string
	iter := p.Instructions.Iterate()
	for iter.Next() {
		ref := iter.Ins.Reference()
		if iter.Ins.IsLoadFromMap() && ref != "" && r.spec.Maps[ref] != nil && !slices.Contains(used, ref) {
			used = append(used, ref)
		}
	}
	// LoadAndAssign wants a struct whose tagged fields name what to load;
	// build one for this program and its maps. Assigning every map it uses
	// also satisfies the loader's rule that prog arrays be assigned.
	fields := []reflect.StructField{{
		Name: "Program",
		Type: reflect.TypeFor[*ebpf.Program](),
		Tag:  reflect.StructTag(fmt.Sprintf(`ebpf:%q`, p.Name)),
	}}
	for i, m := range used {
		fields = append(fields, reflect.StructField{
			Name: fmt.Sprintf("Map%d", i),
			Type: reflect.TypeFor[*ebpf.Map](),
			Tag:  reflect.StructTag(fmt.Sprintf(`ebpf:%q`, m)),
		})
	}
	objs := reflect.New(reflect.StructOf(fields))
	if err := r.spec.LoadAndAssign(objs.Interface(), &ebpf.CollectionOptions{Cache: r.cache}); err != nil {
		// On failure the loader has closed whatever it created.
		return nil, nil, err
	}
	closers := make([]io.Closer, len(fields))
	for i := range fields {
		closers[i] = objs.Elem().Field(i).Interface().(io.Closer)
	}
	return objs.Elem().Field(0).Interface().(*ebpf.Program), closers, nil
}

// trimLoaderPrefix drops the "assign values: field Program: program X: "
// that LoadAndAssign puts before every error: the result already names the
// program, and the struct field is an artefact of how it is loaded here.
func trimLoaderPrefix(msg, name string) string {
	for _, p := range []string{"assign values: field Program: ", "program " + name + ": "} {
		msg = strings.Replace(msg, p, "", 1)
	}
	return msg
}

// verifiedInsns asks the kernel how many instructions the verifier
// processed (bpf_prog_info.verified_insns, added in Linux 5.16 by commit
// aba64c7da983 "bpf: Add verified_insns to bpf_prog_info and fdinfo").
func verifiedInsns(p *ebpf.Program) InsnCount {
	info, err := p.Info()
	if err != nil {
		return InsnCount{}
	}
	n, ok := info.VerifiedInstructions()
	return InsnCount{N: n, Known: ok}
}

// attachFailure turns an attach error into facts and a message that names
// the attach point, and the kernel version a missing feature needs.
func attachFailure(err error, plan attachPlan) (Facts, string) {
	point := plan.point
	f := Facts{AttachPoint: point}
	setErrno(&f, err)
	msg := point + ": " + err.Error()
	switch {
	case errors.Is(err, ebpf.ErrNotSupported):
		f.Class = ClassNotSupported
		if f.RequiresKernel = requiredKernel(err); f.RequiresKernel != "" {
			// "tcx not supported (requires >= v6.6)" → "tcx ingress on lo:
			// requires Linux 6.6: tcx not supported".
			msg = fmt.Sprintf("%s: requires Linux %s: %s", point, f.RequiresKernel, strings.TrimSpace(requiresRE.ReplaceAllString(strings.ReplaceAll(err.Error(), " (requires >= v"+f.RequiresKernel+")", ""), "")))
		}
	case errors.Is(err, syscall.ENOENT): // no such function, tracepoint or interface
		f.Class = ClassAttachTarget
	case plan.missing != nil && plan.missing():
		f.Class = ClassAttachTarget
		msg = fmt.Sprintf("%s: no such function in this kernel: %v", point, err)
	case errors.Is(err, syscall.EPERM):
		f.Class = ClassPermission
	default:
		f.Class = ClassOther
	}
	return f, msg
}

// detachAll closes every link, reporting the ones that fail to close.
func (r *runner) detachAll() {
	for _, l := range r.live {
		if l.link == nil {
			continue
		}
		start := time.Now()
		err := l.link.Close()
		l.link = nil
		if err == nil {
			continue
		}
		res := result(l.spec, StageDetach, start)
		res.Outcome = outcome.AttachError
		res.Facts = Facts{AttachPoint: l.point, Class: ClassOther}
		setErrno(&res.Facts, err)
		res.Message = fmt.Sprintf("detaching from %s failed: %v", l.point, err)
		r.emit(res)
	}
}

// closeAll releases every link, program and map still open.
func (r *runner) closeAll() {
	for _, l := range r.live {
		if l.link != nil {
			l.link.Close()
		}
		closeAll(l.objects)
	}
	r.live = nil
}

func closeAll(cs []io.Closer) {
	for _, c := range cs {
		c.Close()
	}
}
