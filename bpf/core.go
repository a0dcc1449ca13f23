package bpf

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

// COREFailure is a CO-RE relocation that cannot be resolved against a
// kernel's BTF: the program accesses a type, field or enum value that the
// kernel does not have.
//
// cilium/ebpf (like libbpf) does not fail the load for these: it replaces
// the instruction with a call to an invalid helper (0xbad2310), so a guarded
// access (bpf_core_field_exists) costs nothing when the verifier proves it
// dead, and an unguarded one makes the verifier refuse the program with
// "bad CO-RE relocation". The kernel's verifier log cannot say which field
// it was; UnresolvedCORE can.
type COREFailure struct {
	// Program is the program (ELF symbol) holding the relocation.
	Program string
	// Kind is the relocation kind: "byte_off", "field_exists",
	// "type_exists", "enumval_value", ...
	Kind string
	// Type is the local type's name, flavor suffix included, e.g.
	// "task_struct" or "task_struct___pre_5_14".
	Type string
	// Field is the accessed field, dotted for nested ones ("__state",
	// "se.vruntime"), or the enumerator for enum kinds; empty for type kinds.
	Field string
	// Source is the C line the relocation came from (the nearest line
	// information at or before it), when the object has line information.
	Source string
}

// Name is the relocation as a cell's core_relocation fact says it: "byte_off
// of task_struct.__state", the type without the ___flavour suffix CO-RE
// ignores when matching it against the kernel's.
func (f COREFailure) Name() string {
	typ := f.Type
	if i := strings.Index(typ, "___"); i > 0 {
		typ = typ[:i]
	}
	if f.Field != "" {
		if strings.HasPrefix(f.Kind, "enumval") {
			return fmt.Sprintf("%s of %s::%s", f.Kind, typ, f.Field)
		}
		typ += "." + f.Field
	}
	return f.Kind + " of " + typ
}

func (f COREFailure) String() string {
	what := f.Type
	if f.Field != "" {
		what += "." + f.Field
	}
	s := fmt.Sprintf("%s (%s) in program %s", what, f.Kind, f.Program)
	if f.Source != "" {
		s += fmt.Sprintf(" at %q", f.Source)
	}
	return s
}

// UnresolvedCORE lists the CO-RE relocations of spec's programs that cannot
// be resolved against kernel (nil: the running kernel's BTF), the way
// cilium/ebpf would resolve them at load time. Relocations behind a
// bpf_core_*_exists guard are listed too: they are harmless, because the
// verifier drops the code that holds them.
func UnresolvedCORE(spec *ebpf.CollectionSpec, kernel *btf.Spec) ([]COREFailure, error) {
	if kernel == nil {
		var err error
		if kernel, err = KernelTypes(); err != nil {
			return nil, fmt.Errorf("bpf: loading the kernel's BTF: %w", err)
		}
	}
	names := make([]string, 0, len(spec.Programs))
	for name := range spec.Programs {
		names = append(names, name)
	}
	slices.Sort(names)

	var failures []COREFailure
	for _, name := range names {
		ps := spec.Programs[name]
		insns := ps.Instructions
		// CORERelocate wants the very binary.ByteOrder value the BTF was
		// read with: the object's (binary.LittleEndian for bpfel), not
		// binary.NativeEndian.
		bo := ps.ByteOrder
		if bo == nil {
			bo = spec.ByteOrder
		}
		var relos []*btf.CORERelocation
		var at []int
		for i := range insns {
			if r := btf.CORERelocationMetadata(&insns[i]); r != nil {
				relos, at = append(relos, r), append(at, i)
			}
		}
		if len(relos) == 0 {
			continue
		}
		// All of a program's relocations at once: cilium/ebpf picks, per
		// local type, the kernel type that fits most of them.
		fixups, err := btf.CORERelocate(relos, []*btf.Spec{kernel}, bo, localTypeID(spec.Types))
		if err != nil {
			return nil, fmt.Errorf("bpf: program %s: computing CO-RE relocations: %w", name, err)
		}
		for j, fx := range fixups {
			if !strings.HasSuffix(fx.String(), "=poison") {
				continue
			}
			f := DescribeRelocation(relos[j], spec.Types)
			f.Program = name
			f.Source = sourceAt(insns, at[j], f.Field)
			failures = append(failures, f)
		}
	}
	return failures, nil
}

func localTypeID(types *btf.Spec) func(btf.Type) (btf.TypeID, error) {
	return func(t btf.Type) (btf.TypeID, error) {
		if types == nil {
			return 0, fmt.Errorf("the object has no BTF")
		}
		return types.TypeID(t)
	}
}

// reloRE parses btf.CORERelocation's String(): the type and the accessor
// are not exported. TestUnresolvedCORE pins this format.
var reloRE = regexp.MustCompile(`^CORERelocation\((\w+), (.*)\[([0-9:]*)\], local_id=(\d+)\)$`)

// DescribeRelocation names a relocation's kind, type and field by walking
// its accessor ("0:2": the first element of the pointer, then member 2)
// through the object's own BTF. It is kmatrix's one CO-RE relocation
// decoder: UnresolvedCORE uses it before a load, the guest's classifier
// after one (on the instruction the verifier refused).
func DescribeRelocation(r *btf.CORERelocation, types *btf.Spec) COREFailure {
	m := reloRE.FindStringSubmatch(r.String())
	if m == nil {
		return COREFailure{Kind: "unknown", Type: r.String()}
	}
	f := COREFailure{Kind: m[1], Type: m[2]}
	id, _ := strconv.Atoi(m[4])
	if types == nil {
		return f
	}
	typ, err := types.TypeByID(btf.TypeID(id))
	if err != nil {
		return f
	}
	f.Type = typ.TypeName()
	var acc []int
	for _, s := range strings.Split(m[3], ":") {
		n, err := strconv.Atoi(s)
		if err != nil {
			return f
		}
		acc = append(acc, n)
	}
	switch {
	case strings.HasPrefix(f.Kind, "enumval"):
		if e, ok := btf.UnderlyingType(typ).(*btf.Enum); ok && len(acc) == 1 && acc[0] < len(e.Values) {
			f.Field = e.Values[acc[0]].Name
		}
	case strings.HasPrefix(f.Kind, "type") || strings.HasSuffix(f.Kind, "type_id"):
		// Type relocations name no field.
	default:
		f.Field = fieldPath(typ, acc[1:])
	}
	return f
}

// members returns the members of a struct or a union.
func members(t btf.Type) ([]btf.Member, bool) {
	switch u := t.(type) {
	case *btf.Struct:
		return u.Members, true
	case *btf.Union:
		return u.Members, true
	}
	return nil, false
}

// fieldPath follows member (struct, union) and element (array) indices.
func fieldPath(t btf.Type, acc []int) string {
	var parts []string
	for _, i := range acc {
		under := btf.UnderlyingType(t)
		if ms, ok := members(under); ok {
			if i >= len(ms) {
				return strings.Join(parts, ".")
			}
			if ms[i].Name != "" {
				parts = append(parts, ms[i].Name)
			}
			t = ms[i].Type
			continue
		}
		switch u := under.(type) {
		case *btf.Array:
			if len(parts) > 0 {
				parts[len(parts)-1] += fmt.Sprintf("[%d]", i)
			}
			t = u.Type
		default:
			return strings.Join(parts, ".")
		}
	}
	return strings.Join(parts, ".")
}

// sourceAt is the C line of the relocation at instruction i. clang often
// hoists the relocated constant and attributes it to an earlier line (even
// the function's signature), ahead of the instructions that carry the
// access's own line (BPF_CORE_READ's helper call). So prefer a line a little
// ahead that mentions the field; else the nearest line at or before i.
func sourceAt(insns asm.Instructions, i int, field string) string {
	line := func(j int) string {
		if src := insns[j].Source(); src != nil {
			return strings.TrimSpace(src.String())
		}
		return ""
	}
	if leaf := field[strings.LastIndex(field, ".")+1:]; leaf != "" {
		for j := i; j < len(insns) && j <= i+sourceLookahead; j++ {
			if s := line(j); strings.Contains(s, leaf) {
				return s
			}
		}
	}
	for j := i; j >= 0; j-- {
		if s := line(j); s != "" {
			return s
		}
	}
	return ""
}

// sourceLookahead bounds how far ahead sourceAt looks: BPF_CORE_READ's
// relocated offset, pointer add, stack address and size precede its call.
const sourceLookahead = 8
