package guest

import (
	"cmp"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kmatrix/kmatrix/kernels/version"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// Options tune LoadObject. The zero value is what kmatrix-guest uses in a
// guest VM.
type Options struct {
	// CgroupPath is the cgroup v2 directory cgroup programs are attached
	// to; the first cgroup2 mount when empty.
	CgroupPath string
	// ModuleDir holds modules of the running kernel (.ko, .ko.xz) that
	// kmatrix ships for the programs that need them: sch_ingress and
	// cls_bpf for a classifier on a kernel without tcx, and modules whose
	// functions tracing programs attach to. Empty: none.
	ModuleDir string
	// Programs, when not empty, limits the run to these programs or
	// struct_ops maps (by name).
	Programs []string
	// Attach names attach targets the sections do not give, by program:
	// "PATH:SYMBOL" for a uprobe, a program name for an freplace program.
	Attach map[string]string
	// NoFire lists programs not expected to run under the trigger
	// workload: one that did not run is then a pass, not never-ran.
	NoFire []string
	// Check is the user's check command (argv; the guest has no shell), run
	// once every program is attached and the trigger workload has run,
	// before they are detached.
	Check []string
	// CheckTimeout bounds the check command; 60 s when zero.
	CheckTimeout time.Duration
	// LogLines is how many lines from the end of a verifier log a result
	// keeps; 50 when zero.
	LogLines int
	// BTF, if set, is the kernel BTF cache of the process, shared by its
	// LoadObject calls (a batch worker's), so that the kernel's BTF is
	// decoded once for all objects (0.2 to 0.9 s per object under TCG);
	// nil: one per call.
	BTF *btf.Cache
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
var ErrNoPrograms = errors.New("no BPF programs in it (no executable section other than .text) and no struct_ops maps")

// ErrBigEndian is wrapped by the ObjectError of a big-endian object.
var ErrBigEndian = errors.New("it is a big-endian BPF object (clang -target bpfeb, or bpf2go's *_bpfeb.o): kmatrix guests are x86-64, which loads only little-endian BPF: use the bpfel build")

// checkObjectFile says in words what is wrong with a file that is not a
// little-endian ELF object, before the ELF reader's terser errors.
func checkObjectFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: pass the path of a BPF ELF object (the output of clang -target bpf -c)", fs.ErrNotExist)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	var ident [elf.EI_NIDENT]byte
	if _, err := io.ReadFull(f, ident[:]); err != nil || string(ident[:4]) != elf.ELFMAG {
		return errors.New("not an ELF file: want a BPF ELF object (the output of clang -target bpf -c)")
	}
	if elf.Data(ident[elf.EI_DATA]) == elf.ELFDATA2MSB {
		return ErrBigEndian
	}
	return nil
}

// LoadObject loads every program of the BPF ELF object at path on its own
// (and every struct_ops map with its programs), attaches each one that
// loaded where its section says, runs the trigger workload and the
// optional check command, reads how often each attached program ran,
// detaches everything, and returns one result per program and stage (see
// ProgramResult). Program failures are results; the error is for an
// unusable object (an *ObjectError) only.
func LoadObject(path string, opts Options) ([]ProgramResult, error) {
	if err := checkObjectFile(path); err != nil {
		return nil, &ObjectError{path, err}
	}
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil && strings.Contains(err.Error(), "'.struct_ops' section: not supported") {
		// libbpf loads it; cilium/ebpf (v0.22) reads only .struct_ops.link.
		// kmatrix's limit, not the object's: an infra-error result.
		res := ProgramResult{Stage: StageLoad, Outcome: outcome.InfraError, Section: ".struct_ops", Type: "StructOps map",
			Message: "kmatrix cannot load this object: its loader (cilium/ebpf) reads struct_ops maps from .struct_ops.link sections only, not from .struct_ops: " + err.Error()}
		res.Facts.Class = ClassKmatrix
		if opts.OnResult != nil {
			opts.OnResult(res)
		}
		return []ProgramResult{res}, nil
	}
	if err != nil {
		return nil, &ObjectError{path, fmt.Errorf("not a usable BPF ELF object (want the output of clang -target bpf -c): %w", err)}
	}
	var ops []*ebpf.MapSpec
	owner := map[string]string{} // struct_ops program → its map
	for _, m := range spec.Maps {
		if m.Type != ebpf.StructOpsMap {
			continue
		}
		ops = append(ops, m)
		for _, p := range structOpsPrograms(spec, m) {
			owner[p.Name] = m.Name
		}
	}
	kfuncs := objectKfuncs(spec) // before the called functions go
	dropCalledFunctions(spec)
	if len(spec.Programs) == 0 && len(ops) == 0 {
		if names := userMaps(spec); len(names) > 0 {
			return nil, &ObjectError{path, fmt.Errorf("%w: only maps (%s), which kmatrix checks through the programs that use them: give it the object with those programs", ErrNoPrograms, strings.Join(names, ", "))}
		}
		return nil, &ObjectError{path, ErrNoPrograms}
	}
	if len(opts.Programs) > 0 {
		var missing []string
		want := map[string]bool{}
		for _, name := range opts.Programs {
			switch {
			case owner[name] != "":
				want[owner[name]] = true
			case spec.Programs[name] != nil, spec.Maps[name] != nil && spec.Maps[name].Type == ebpf.StructOpsMap:
				want[name] = true
			default:
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			have := slices.Sorted(maps.Keys(spec.Programs))
			return nil, &ObjectError{path, fmt.Errorf("no program named %q in it: it has %q", missing, have)}
		}
		ops = slices.DeleteFunc(ops, func(m *ebpf.MapSpec) bool { return !want[m.Name] })
		for name := range spec.Programs {
			if !want[name] && owner[name] == "" {
				delete(spec.Programs, name)
			}
		}
	}
	var progs, exts []*ebpf.ProgramSpec
	for _, p := range spec.Programs {
		switch {
		case owner[p.Name] != "":
			// Loaded with its struct_ops map.
		case p.Type == ebpf.Extension, tracesProgram(spec, p, opts.Attach):
			// After the programs whose functions they replace or trace.
			exts = append(exts, p)
		default:
			progs = append(progs, p)
		}
	}
	// Section then name: the order a reader of the C file expects.
	bySection := func(a, b *ebpf.ProgramSpec) int {
		return cmp.Or(cmp.Compare(a.SectionName, b.SectionName), cmp.Compare(a.Name, b.Name))
	}
	slices.SortFunc(progs, bySection)
	slices.SortFunc(exts, bySection)
	slices.SortFunc(ops, func(a, b *ebpf.MapSpec) int { return cmp.Compare(a.Name, b.Name) })

	r := &runner{
		spec:     spec,
		opts:     opts,
		cache:    opts.BTF, // parse the kernel's BTF once, not per program
		targets:  map[string]extTarget{},
		sockmaps: map[string]*ebpf.Map{},
		kfuncs:   kfuncs,
	}
	if r.cache == nil {
		r.cache = btf.NewCache()
	}
	r.env = &env{cgroupPath: opts.CgroupPath, moduleDir: opts.ModuleDir, targets: opts.Attach, sockmap: r.sockmap, extTarget: r.extTarget}
	if r.opts.LogLines == 0 {
		r.opts.LogLines = 50
	}
	defer r.closeAll()

	// Run statistics must be on before anything runs.
	stats, statsErr := enableRunStats()
	if statsErr == nil {
		defer stats.Close()
	}
	if needsPinning(spec) {
		dir, cleanup, err := pinDir()
		r.pinDir, r.pinErr = dir, err
		if err == nil {
			defer cleanup()
		}
	}

	for _, p := range progs {
		r.program(p)
	}
	for _, m := range ops {
		r.structOps(m)
	}
	for _, p := range exts {
		r.program(p)
	}
	var fires []func() error
	var firedBy []*loaded // fires[i] is firedBy[i]'s
	attached := false
	for _, l := range r.live {
		if l.link == nil && !l.registered {
			continue
		}
		attached = true
		if f, ok := l.link.(firer); ok {
			fires, firedBy = append(fires, f.fire), append(firedBy, l)
		}
		if l.fire != nil {
			fires, firedBy = append(fires, l.fire), append(firedBy, l)
		}
	}
	var trig triggerRun
	if attached {
		trig = trigger(path, fires)
		for i, err := range trig.fireErrs {
			if err != nil {
				firedBy[i].fireErr = errors.Join(firedBy[i].fireErr, err)
			}
		}
	}
	if len(opts.Check) > 0 {
		r.emit(runCheck(opts.Check, cmp.Or(opts.CheckTimeout, 60*time.Second)))
	}
	r.runResults(statsErr, trig)
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
	// current is the program being attached (for env.sockmap).
	current *loaded
	// pinDir is the bpffs directory pinned maps go to (PinPath), or
	// pinErr why there is none.
	pinDir string
	pinErr error
	// targets are the programs extension programs replace functions of.
	targets map[string]extTarget
	// sockmaps are the object's sockmaps shared by the programs attached
	// to them; shared is what to close at the end.
	sockmaps map[string]*ebpf.Map
	shared   []io.Closer
	// kfuncs are the kfuncs each program calls; kfunc what loading the
	// modules that provide the current program's found (kfuncs.go).
	kfuncs map[string][]string
	kfunc  *kfuncState
}

type extTarget struct {
	prog *ebpf.Program
	name string
}

// loaded is a program (or a struct_ops map with its programs) in the
// kernel, with its maps and attachment.
type loaded struct {
	name, section, typ string
	spec               *ebpf.ProgramSpec // nil for a struct_ops map
	point              string
	// runs are the programs whose run counts are reported.
	runs    []runTarget
	maps    map[string]*ebpf.Map
	objects []io.Closer // the programs and maps
	link    io.Closer   // nil when not attached
	// registered: a .struct_ops map (without .link) is registered with
	// its subsystem when it is created; unregister undoes it.
	registered bool
	unregister func() error
	// fire, if set, makes the programs run (a TCP connection with a
	// struct_ops congestion control).
	fire func() error
	// traffic is the kind of the default workload's traffic the hook
	// alone sees (trafficIPv6 for cgroup/connect6), if any.
	traffic string
	// fireErr is why the attachment's own trigger (its fire, or the
	// link's) failed, if it did.
	fireErr error
}

type runTarget struct {
	name, section, typ string
	prog               *ebpf.Program
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
	if p.Type == ebpf.Extension || tracesProgram(r.spec, p, r.opts.Attach) {
		// The target program must be known before loading: the kernel
		// checks the replacement (or the tracer) against its function.
		t, err := r.findExtTarget(p)
		if err != nil {
			res := result(p, StageLoad, start)
			res.Outcome = outcome.NotAttached
			res.Facts.Class = ClassNoAttachPoint
			res.Facts.AttachPoint = sectionKind(p.SectionName) + " " + p.AttachTo
			res.Message = "not loaded: " + err.Error()
			r.emit(res)
			return
		}
		r.targets[p.Name] = t
		p.AttachTarget = t.prog
	}

	inModule, err := r.moduleTarget(p)
	if err == nil {
		err = r.loadKfuncModules(p).err
	}
	if err != nil {
		res := result(p, StageLoad, start)
		r.loadError(&res, err, p)
		r.emit(res)
		return
	}
	objs, err := r.load([]*ebpf.ProgramSpec{p}, nil)
	res := result(p, StageLoad, start)
	if err != nil {
		r.loadError(&res, err, p)
		r.explainKfunc(&res, err)
		if inModule && errors.Is(err, ebpf.ErrNotSupported) && !moduleBTF() {
			res.Facts.RequiresKernel = "5.11"
			res.Message += ": " + p.AttachTo + " is not the kernel's own function, and this kernel has no BTF for its modules (CONFIG_DEBUG_INFO_BTF_MODULES, Linux 5.11+), which tracing a module's function needs"
		}
		r.emit(res)
		return
	}
	prog := objs.progs[p.Name]
	l := &loaded{name: p.Name, section: p.SectionName, typ: p.Type.String(), spec: p, objects: objs.closers, maps: objs.maps,
		runs: []runTarget{{p.Name, p.SectionName, p.Type.String(), prog}}}
	r.live = append(r.live, l)
	r.loadPass(&res, prog)
	r.emit(res)

	start = time.Now()
	plan := planAttach(p, r.env)
	l.point, l.traffic = plan.point, plan.traffic
	if plan.attach == nil {
		res := result(p, StageAttach, start)
		res.Outcome = outcome.NotAttached
		res.Facts.Class = ClassNoAttachPoint
		if plan.arch != "" {
			res.Facts.Class = ClassArchAttachPoint
		}
		res.Facts.AttachPoint = plan.point
		res.Message = "loaded but not attached: " + plan.reason
		r.emit(res)
		return
	}
	r.current = l
	lnk, err := plan.attach(prog)
	r.current = nil
	res = result(p, StageAttach, start)
	res.Facts.AttachPoint = plan.point
	if err != nil {
		res.Outcome = outcome.AttachError
		res.Facts, res.Message = attachFailure(err, plan)
		var ie *infraError
		var np *noPointError
		switch {
		case errors.As(err, &ie):
			res.Outcome, res.Facts.Class = outcome.InfraError, ClassKmatrix
		case errors.As(err, &np):
			res.Outcome, res.Facts.Class = outcome.NotAttached, ClassNoAttachPoint
			res.Message = "loaded but not attached: " + np.Error()
		}
		r.emit(res)
		return
	}
	l.link = lnk
	res.Outcome = outcome.Pass
	res.Message = "attached: " + plan.point
	if v, ok := lnk.(varianter); ok {
		res.Facts.Variant = v.variant()
		res.Message += " (" + res.Facts.Variant + ")"
	}
	r.emit(res)
}

// moduleTarget loads the modules kmatrix ships when p traces a function
// that is not the kernel's own (not in its BTF): the function may be a
// module's, and the loader looks for it in the BTF of loaded modules
// (/sys/kernel/btf/<module>, CONFIG_DEBUG_INFO_BTF_MODULES, Linux 5.11+).
// It reports whether the target is not the kernel's own.
func (r *runner) moduleTarget(p *ebpf.ProgramSpec) (bool, error) {
	if p.Type != ebpf.Tracing || p.AttachTo == "" || p.AttachTarget != nil {
		// A program's function (AttachTarget) is not the kernel's.
		return false, nil
	}
	switch p.AttachType {
	case ebpf.AttachTraceFEntry, ebpf.AttachTraceFExit, ebpf.AttachModifyReturn:
	default:
		return false, nil
	}
	k, err := r.cache.Kernel()
	if err != nil {
		return false, nil // the load says what is wrong with the kernel's BTF
	}
	var fn *btf.Func
	if k.TypeByName(p.AttachTo, &fn) == nil {
		return false, nil
	}
	return true, r.env.loadModules(p.AttachTo)
}

// moduleBTF reports whether the kernel has BTF for any loaded module
// (/sys/kernel/btf lists more than vmlinux).
func moduleBTF() bool {
	ents, _ := os.ReadDir("/sys/kernel/btf")
	for _, e := range ents {
		if e.Name() != "vmlinux" {
			return true
		}
	}
	return false
}

// loadError fills a load-error result.
func (r *runner) loadError(res *ProgramResult, err error, p *ebpf.ProgramSpec) {
	res.Outcome = outcome.LoadError
	res.Facts, res.Message, res.Log = loadFailure(err, p, r.spec.Types, r.opts.LogLines)
	res.Message = trimLoaderPrefix(res.Message, p.Name)
	var ie *infraError
	if errors.As(err, &ie) {
		res.Outcome, res.Facts.Class, res.Message = outcome.InfraError, ClassKmatrix, ie.Error()
	}
	if p.Type == ebpf.LSM && p.AttachType == ebpf.AttachLSMCgroup && strings.Contains(err.Error(), "must provide btf_id") {
		lsmCgroupLoadError(res)
	}
}

// lsmCgroupLoadError reclassifies the load failure of an lsm_cgroup
// program: cilium/ebpf (v0.22) looks up the kernel's bpf_lsm_<hook> only
// for plain LSM programs, so it loads an lsm_cgroup one without the hook's
// BTF ID and the kernel refuses it ("Tracing programs must provide
// btf_id"). That is kmatrix's limit on a kernel with BPF_LSM_CGROUP
// (Linux 6.0, commit 69fd337a975c "bpf: per-cgroup lsm flavor"), and the
// kernel's before it.
func lsmCgroupLoadError(res *ProgramResult) {
	kernelSaid := strings.TrimPrefix(res.Message, "verifier rejected the program: ")
	if v, err := version.Running(); err == nil && !v.AtLeast(6, 0) {
		res.Facts.Class, res.Facts.RequiresKernel = ClassNotSupported, "6.0"
		res.Message = "lsm_cgroup programs (BPF_LSM_CGROUP) need Linux 6.0: " + kernelSaid
		return
	}
	res.Outcome, res.Facts.Class = outcome.InfraError, ClassKmatrix
	res.Message = "kmatrix cannot load lsm_cgroup programs: its BPF loader (cilium/ebpf) does not look up the LSM hook's BTF ID for them, so the kernel refused the load; this says nothing about the program (" + kernelSaid + ")"
}

// loadPass fills the result of a program that loaded: its verifier figures.
func (r *runner) loadPass(res *ProgramResult, prog *ebpf.Program) {
	res.Outcome = outcome.Pass
	insns := verifiedInsns(prog)
	res.Facts.VerifiedInsns = &insns
	res.Facts.Verifier = verifierStats(prog)
	switch {
	case res.Facts.Verifier != nil && res.Facts.Verifier.InsnsProcessed > 0:
		v := res.Facts.Verifier
		res.Message = fmt.Sprintf("loaded: the verifier processed %d instructions (%d states", v.InsnsProcessed, v.TotalStates)
		if v.VerificationUS > 0 {
			res.Message += fmt.Sprintf(", %d µs", v.VerificationUS)
		}
		res.Message += ")"
	case insns.Known:
		res.Message = fmt.Sprintf("loaded: the verifier processed %d instructions", insns.N)
	default:
		res.Message = "loaded (verified instruction count unknown: " + version.VerifiedInsns.Needs() + ")"
	}
}

// loadedObjects are what one load created.
type loadedObjects struct {
	progs   map[string]*ebpf.Program
	maps    map[string]*ebpf.Map
	closers []io.Closer
}

// usedMaps lists the maps p's instructions reference.
func (r *runner) usedMaps(p *ebpf.ProgramSpec, used []string) []string {
	iter := p.Instructions.Iterate()
	for iter.Next() {
		ref := iter.Ins.Reference()
		if iter.Ins.IsLoadFromMap() && ref != "" && r.spec.Maps[ref] != nil && !slices.Contains(used, ref) {
			used = append(used, ref)
		}
	}
	return used
}

// load loads progs with only the maps they reference (and extra maps),
// from the shared spec, through cilium/ebpf's lazy loader
// (CollectionSpec.LoadAndAssign), so that neither another program nor a
// map only another program uses can make it fail. Programs are loaded with
// the verifier's statistics (BPF_LOG_STATS, a few lines); a verifier
// rejection is loaded again with the full log, which names the reason.
func (r *runner) load(progs []*ebpf.ProgramSpec, extra []string) (loadedObjects, error) {
	used := extra
	for _, p := range progs {
		used = r.usedMaps(p, used)
	}
	if r.pinErr != nil {
		for _, m := range used {
			if r.spec.Maps[m].Pinning == ebpf.PinByName {
				return loadedObjects{}, &infraError{fmt.Errorf("map %s is pinned by name (LIBBPF_PIN_BY_NAME), and kmatrix could not make a bpffs for the run: %v", m, r.pinErr)}
			}
		}
	}
	objs, err := r.loadAssign(progs, used, ebpf.LogLevelStats)
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		// On failure the loader has closed whatever it created.
		objs, err = r.loadAssign(progs, used, 0)
	}
	return objs, err
}

func (r *runner) loadAssign(progs []*ebpf.ProgramSpec, used []string, level ebpf.LogLevel) (loadedObjects, error) {
	// LoadAndAssign wants a struct whose tagged fields name what to load;
	// build one for these programs and maps. Assigning every map they use
	// also satisfies the loader's rule that prog arrays be assigned.
	var fields []reflect.StructField
	for i, p := range progs {
		fields = append(fields, reflect.StructField{
			Name: fmt.Sprintf("Program%d", i),
			Type: reflect.TypeFor[*ebpf.Program](),
			Tag:  reflect.StructTag(fmt.Sprintf(`ebpf:%q`, p.Name)),
		})
	}
	for i, m := range used {
		fields = append(fields, reflect.StructField{
			Name: fmt.Sprintf("Map%d", i),
			Type: reflect.TypeFor[*ebpf.Map](),
			Tag:  reflect.StructTag(fmt.Sprintf(`ebpf:%q`, m)),
		})
	}
	objs := reflect.New(reflect.StructOf(fields))
	opts := &ebpf.CollectionOptions{
		Cache:    r.cache,
		Maps:     ebpf.MapOptions{PinPath: r.pinDir},
		Programs: ebpf.ProgramOptions{LogLevel: level},
	}
	if err := r.spec.LoadAndAssign(objs.Interface(), opts); err != nil {
		return loadedObjects{}, err
	}
	out := loadedObjects{progs: map[string]*ebpf.Program{}, maps: map[string]*ebpf.Map{}}
	for i := range fields {
		v := objs.Elem().Field(i).Interface()
		out.closers = append(out.closers, v.(io.Closer))
		if i < len(progs) {
			out.progs[progs[i].Name] = v.(*ebpf.Program)
		} else {
			out.maps[used[i-len(progs)]] = v.(*ebpf.Map)
		}
	}
	return out, nil
}

// noPointError is an attach that found nothing to attach to that kmatrix
// could use (an sk_msg program in an object without a sockmap).
type noPointError struct{ msg string }

func (e *noPointError) Error() string { return e.msg }

// sockmap finds the sockmap or sockhash the program being attached goes
// to: the one it uses, else the only one in the object.
func (r *runner) sockmap(p *ebpf.ProgramSpec) (*ebpf.Map, string, error) {
	l := r.current
	isSock := func(t ebpf.MapType) bool { return t == ebpf.SockMap || t == ebpf.SockHash }
	var names []string
	for name, m := range l.maps {
		if isSock(m.Type()) {
			names = append(names, name)
		}
	}
	if len(names) == 1 {
		return l.maps[names[0]], names[0], nil
	}
	if len(names) == 0 {
		for name, m := range r.spec.Maps {
			if isSock(m.Type) {
				names = append(names, name)
			}
		}
		if len(names) == 1 {
			// One instance for every program that does not name it, as
			// a loader has one per object: a stream parser and verdict
			// work together only on the same map.
			if m := r.sockmaps[names[0]]; m != nil {
				return m, names[0], nil
			}
			objs, err := r.loadAssign(nil, names, 0)
			if err != nil {
				return nil, "", fmt.Errorf("creating sockmap %s: %w", names[0], err)
			}
			r.shared = append(r.shared, objs.closers...)
			r.sockmaps[names[0]] = objs.maps[names[0]]
			return objs.maps[names[0]], names[0], nil
		}
	}
	slices.Sort(names)
	return nil, "", &noPointError{fmt.Sprintf("%s programs are attached to a sockmap or sockhash; the program uses none and the object has %d (%q), so kmatrix cannot tell which", p.Type, len(names), names)}
}

// findExtTarget finds the program an freplace program replaces a function
// of: the one --attach names, else the loaded program of the object that
// has a global function of that name.
func (r *runner) findExtTarget(p *ebpf.ProgramSpec) (extTarget, error) {
	fn := p.AttachTo
	want := r.opts.Attach[p.Name]
	for _, l := range r.live {
		if l.spec == nil || l.spec.Type == ebpf.Extension {
			continue
		}
		if want != "" {
			if l.name == want {
				return extTarget{l.runs[0].prog, l.name}, nil
			}
			continue
		}
		if p.Type == ebpf.Tracing && l.name == fn {
			// fentry/fexit may trace a program's entry; freplace
			// replaces only a global function it calls.
			return extTarget{l.runs[0].prog, l.name}, nil
		}
		if hasGlobalFunction(l.spec, fn) {
			return extTarget{l.runs[0].prog, l.name}, nil
		}
	}
	if want != "" {
		return extTarget{}, fmt.Errorf("--attach %s=%s: no loaded program of the object is named %q", p.Name, want, want)
	}
	if p.Type == ebpf.Tracing {
		return extTarget{}, fmt.Errorf("%s programs on a BPF program trace one of the object's programs, and no loaded program of the object is or has a function %q: name the target program with --attach %s=PROGRAM", sectionKind(p.SectionName), fn, p.Name)
	}
	return extTarget{}, fmt.Errorf("freplace programs replace a global function of another BPF program, and no loaded program of the object has a function %q: name the target program with --attach %s=PROGRAM", fn, p.Name)
}

func (r *runner) extTarget(p *ebpf.ProgramSpec) (*ebpf.Program, string, error) {
	t, ok := r.targets[p.Name]
	if !ok {
		return nil, "", fmt.Errorf("no target program for %s", p.Name)
	}
	return t.prog, t.name, nil
}

// runResults reports, for every attached program, how often it ran while
// the trigger workload and the check ran: never-ran when 0 times, unless
// the user said it is not expected to.
func (r *runner) runResults(statsErr error, trig triggerRun) {
	problems := trig.problems
	workload := defaultTrigger
	if len(r.opts.Check) > 0 {
		workload += ", then the check command"
	}
	for _, l := range r.live {
		if l.link == nil && !l.registered {
			continue
		}
		for _, rt := range l.runs {
			start := time.Now()
			res := ProgramResult{Program: rt.name, Section: rt.section, Type: rt.typ, Stage: StageRun}
			res.Facts.AttachPoint = l.point
			res.Facts.Trigger = workload
			if rt.typ == ebpf.Extension.String() {
				// The kernel jumps to a replacement function; it does
				// not enter it as a program, so it keeps no run count.
				continue
			}
			if statsErr != nil {
				res.Outcome, res.Facts.Class = outcome.InfraError, ClassKmatrix
				res.Message = "run count unknown: kmatrix could not turn on the kernel's BPF run statistics: " + statsErr.Error()
				r.emit(res)
				continue
			}
			st, err := rt.prog.Stats()
			if err != nil {
				res.Outcome, res.Facts.Class = outcome.InfraError, ClassKmatrix
				res.Message = "run count unknown: reading the program's statistics: " + err.Error()
				r.emit(res)
				continue
			}
			n, ns := st.RunCount, uint64(st.Runtime.Nanoseconds())
			res.Facts.RunCount, res.Facts.RunTimeNS = &n, &ns
			res.DurationMS = float64(time.Since(start).Microseconds()) / 1000
			switch {
			case n > 0:
				res.Outcome = outcome.Pass
				res.Message = fmt.Sprintf("ran %d times while attached (mean %d ns)", n, ns/n)
			case slices.Contains(r.opts.NoFire, rt.name):
				res.Outcome = outcome.Pass
				res.Message = "did not run while attached, as declared (--no-fire)"
			case untriggered(l, trig) != "":
				// kmatrix did not send what the hook sees: the zero
				// says nothing about the program.
				res.Outcome, res.Facts.Class = outcome.InfraError, ClassNotTriggered
				res.Message = fmt.Sprintf("attached to %s, but kmatrix's trigger workload did not reach it: %s; the program was not tested (kmatrix's limit, not the program's; --no-fire %s accepts 0 runs)", l.point, untriggered(l, trig), rt.name)
			default:
				res.Outcome, res.Facts.Class = outcome.NeverRan, ClassNeverRan
				res.Message = fmt.Sprintf("attached to %s, but never ran while the trigger workload ran (%s): the hook may be dead on this kernel (a function renamed, inlined or no longer called)", l.point, workload)
				if len(problems) > 0 {
					res.Message += "; the trigger workload reported: " + strings.Join(problems, "; ")
				}
			}
			r.emit(res)
		}
	}
}

// untriggered says why the trigger workload did not reach l's hook, or ""
// when it did: the attachment's own trigger failed, or the part of the
// default workload that alone reaches the hook did.
func untriggered(l *loaded, trig triggerRun) string {
	if l.fireErr != nil {
		return "sending what the hook sees failed: " + l.fireErr.Error()
	}
	if err := trig.missed[l.traffic]; l.traffic != "" && err != nil {
		return fmt.Sprintf("the hook sees only %s, which kmatrix could not send: %v", l.traffic, err)
	}
	return ""
}

// trimLoaderPrefix drops the "assign values: field Program: program X: "
// that LoadAndAssign puts before every error: the result already names the
// program, and the struct field is an artefact of how it is loaded here.
func trimLoaderPrefix(msg, name string) string {
	for _, p := range []string{"assign values: field Program0: ", "program " + name + ": "} {
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

// detachAll closes every link and unregisters every struct_ops map,
// reporting the ones that fail.
func (r *runner) detachAll() {
	for _, l := range r.live {
		var err error
		start := time.Now()
		switch {
		case l.link != nil:
			err = l.link.Close()
			l.link = nil
		case l.registered && l.unregister != nil:
			err = l.unregister()
			l.registered = false
		default:
			continue
		}
		if err == nil {
			continue
		}
		res := ProgramResult{Program: l.name, Section: l.section, Type: l.typ, Stage: StageDetach,
			DurationMS: float64(time.Since(start).Microseconds()) / 1000}
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
		if l.registered && l.unregister != nil {
			l.unregister()
		}
		closeAll(l.objects)
	}
	r.live = nil
	closeAll(r.shared)
}

func closeAll(cs []io.Closer) {
	for _, c := range cs {
		c.Close()
	}
}
