package guest

import (
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// tracesProgram reports whether p is an fentry/fexit program on a function
// of another BPF program of the object rather than on a kernel function:
// the user names the target with --attach (as for freplace), or the
// section names a program (or a global function of one) of the object
// and the kernel has no function of that name. A loader sets the target
// program (ProgramSpec.AttachTarget) before loading, as cilium/ebpf's own
// fentry_fexit.c test object expects for SEC("fentry/target") on its
// SEC("tc") target; loaded as a kernel tracer it would fail for want of a
// kernel function "target", which is kmatrix's mistake, not the object's.
func tracesProgram(spec *ebpf.CollectionSpec, p *ebpf.ProgramSpec, attach map[string]string) bool {
	if p.Type != ebpf.Tracing || (p.AttachType != ebpf.AttachTraceFEntry && p.AttachType != ebpf.AttachTraceFExit) {
		return false
	}
	if attach[p.Name] != "" {
		return true
	}
	if !definesFunction(spec, p.AttachTo, p.Name) {
		return false
	}
	return !kernelHasFunction(p.AttachTo)
}

// definesFunction reports whether a program of spec other than self is
// named fn or has a global function fn.
func definesFunction(spec *ebpf.CollectionSpec, fn, self string) bool {
	for name, q := range spec.Programs {
		if name == self || q.Type == ebpf.Extension {
			continue
		}
		if name == fn || hasGlobalFunction(q, fn) {
			return true
		}
	}
	return false
}

// hasGlobalFunction reports whether p's instructions hold a function fn
// after its entry point (a global function it calls).
func hasGlobalFunction(p *ebpf.ProgramSpec, fn string) bool {
	iter := p.Instructions.Iterate()
	for iter.Next() {
		if iter.Offset > 0 && iter.Ins.Symbol() == fn {
			return true
		}
	}
	return false
}

// kernelHasFunction reports whether the running kernel's BTF has a
// function fn (false also when its BTF cannot be read: then no kernel
// tracer can load either).
func kernelHasFunction(fn string) bool {
	k, err := btf.LoadKernelSpec()
	if err != nil {
		return false
	}
	var f *btf.Func
	return k.TypeByName(fn, &f) == nil
}

// dropCalledFunctions removes from spec the "programs" of sections that name
// no program type but that other programs call: a function placed in a
// section of its own (`__section("other") int helper(...)`, a pattern of
// cilium/ebpf's loader tests and of hand-sectioned libraries) is not a
// program. cilium/ebpf has already copied it into each caller
// (flattenPrograms), so it is loaded and checked as part of them; reported
// on its own it would be a not-attached cell for something that was never
// meant to attach.
func dropCalledFunctions(spec *ebpf.CollectionSpec) {
	called := map[string]bool{}
	for _, p := range spec.Programs {
		for _, ins := range p.Instructions {
			if ins.IsFunctionCall() && ins.Reference() != "" && ins.Reference() != p.Name {
				called[ins.Reference()] = true
			}
		}
	}
	for name, p := range spec.Programs {
		if p.Type == ebpf.UnspecifiedProgram && called[name] {
			delete(spec.Programs, name)
		}
	}
}

// userMaps are the names of spec's maps other than the ones the compiler
// makes for global data (.rodata, .data, .bss, .kconfig and their
// .rodata.* kin), sorted.
func userMaps(spec *ebpf.CollectionSpec) []string {
	var names []string
	for name := range spec.Maps {
		if !strings.HasPrefix(name, ".") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}
