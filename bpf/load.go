package bpf

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/rlimit"
)

// ProgramStats is what the verifier reported about one loaded program.
type ProgramStats struct {
	// Name is the program's name in the BPF object, e.g. "exec_bpf_loop".
	Name string
	// ID is the kernel's id of the loaded program.
	ID ebpf.ProgramID
	// VerifiedInsns is how many instructions the verifier processed
	// ("processed N insns" in its log; every path counts, so a bounded loop
	// counts once per iteration).
	VerifiedInsns int
}

// kernelTypes holds the running kernel's BTF, decoded once per process and
// shared by every load. Without it cilium/ebpf decodes /sys/kernel/btf/vmlinux
// (5–7 MB) afresh for each collection, which was half the CPU time of the
// guest checks under TCG; the kernel's own types never change while it runs.
var kernelTypes = btf.NewCache()

// statsOnly asks the verifier for its statistics only: cheap, and enough
// for VerifierStats. fullLog asks for everything, to explain a failure.
var (
	statsOnly = ebpf.CollectionOptions{Cache: kernelTypes, Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats}}
	fullLog   = ebpf.CollectionOptions{Cache: kernelTypes, Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelBranch | ebpf.LogLevelStats}}
)

// KernelTypes is the running kernel's BTF, decoded once per process (the
// same copy Load and LoadCollection relocate against). Treat it as
// read-only.
func KernelTypes() (*btf.Spec, error) { return kernelTypes.Kernel() }

// loadAndAssign loads what objs names from spec with statsOnly, and, when
// the verifier refuses, again with fullLog so the error carries every line
// the verifier wrote (it is deterministic: it refuses again).
func loadAndAssign(spec *ebpf.CollectionSpec, objs any) error {
	err := spec.LoadAndAssign(objs, &statsOnly)
	var ve *ebpf.VerifierError
	if err == nil || !errors.As(err, &ve) {
		return err
	}
	return spec.LoadAndAssign(objs, &fullLog)
}

// LoadCollection loads every program and map of spec, which object names in
// errors (e.g. a file name), the way Load loads the tracer: on success each
// program's VerifierStats are available; on failure the error is a
// *LoadError with the complete verifier log and, for a bad CO-RE
// relocation, the relocations this kernel cannot resolve.
//
// Like ebpf.NewCollection, it memory-maps the data sections behind the
// collection's Variables; cilium/ebpf unmaps them when the garbage collector
// finalizes them, so those maps outlive Collection.Close until then.
func LoadCollection(object string, spec *ebpf.CollectionSpec) (*ebpf.Collection, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, &LoadError{Object: object, Err: err}
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, statsOnly)
	var ve *ebpf.VerifierError
	if err != nil && errors.As(err, &ve) {
		coll, err = ebpf.NewCollectionWithOptions(spec, fullLog)
	}
	if err != nil {
		return nil, loadError(object, spec, err)
	}
	return coll, nil
}

// loadError wraps a load failure, naming the unresolved CO-RE relocations
// when that is what the verifier refused.
func loadError(object string, spec *ebpf.CollectionSpec, err error) *LoadError {
	le := &LoadError{Object: object, Err: err}
	// cilium/ebpf's sentinel for this is unexported; its text is stable.
	if strings.Contains(err.Error(), "bad CO-RE relocation") {
		if fs, ferr := UnresolvedCORE(spec, nil); ferr == nil {
			le.CORE = fs
		}
	}
	return le
}

var processedRE = regexp.MustCompile(`(?m)^processed (\d+) insns`)

// VerifierStats reads what the verifier reported about a program loaded by
// Load or LoadCollection: the instruction count from its statistics line,
// which every kernel since 5.2 writes with BPF_LOG_STATS
// (bpf_prog_info.verified_insns says the same, but only since 5.16), and
// the program's id.
func VerifierStats(name string, p *ebpf.Program) (ProgramStats, error) {
	st := ProgramStats{Name: name}
	if p == nil {
		return st, fmt.Errorf("bpf: program %s was not loaded", name)
	}
	m := processedRE.FindStringSubmatch(p.VerifierLog)
	if m == nil {
		return st, fmt.Errorf("bpf: program %s: no \"processed N insns\" line in its verifier log %q: load it with ebpf.LogLevelStats (Load and LoadCollection do)", name, p.VerifierLog)
	}
	st.VerifiedInsns, _ = strconv.Atoi(m[1])
	info, err := p.Info()
	if err != nil {
		return st, fmt.Errorf("bpf: program %s: reading its info: %w", name, err)
	}
	id, ok := info.ID()
	if !ok {
		return st, fmt.Errorf("bpf: program %s: the kernel reports no program id (needs 4.13+)", name)
	}
	st.ID = id
	return st, nil
}
