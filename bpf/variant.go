package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
)

// Variant names which of the tracer's two exec programs is loaded. They
// differ only in how they walk up the real_parent chain to filter by
// ancestor; the events they emit are the same.
type Variant string

const (
	// VariantBPFLoop walks with the bpf_loop helper (kernel 5.17+, commit
	// e6f2dd0f8067 "bpf: Add bpf_loop helper"). The verifier checks the
	// callback once, so the program costs few verified instructions.
	VariantBPFLoop Variant = "bpf_loop"
	// VariantBoundedLoop walks with a plain bounded loop (kernel 5.3+,
	// commit 2589726d12a1 "bpf: introduce bounded loops"), which the
	// verifier unrolls while it checks it: the fallback for kernels
	// without bpf_loop, such as 5.10.
	VariantBoundedLoop Variant = "bounded_loop"
)

// Variants lists every variant, preferred first.
var Variants = []Variant{VariantBPFLoop, VariantBoundedLoop}

// program is the name, in c/tracer.c, of the exec program of v.
func (v Variant) program() string {
	switch v {
	case VariantBPFLoop:
		return "exec_bpf_loop"
	case VariantBoundedLoop:
		return "exec_bounded"
	}
	return ""
}

// Program is the name of v's exec program in the BPF object (and in the
// verified-instructions evidence); empty for an unknown variant.
func (v Variant) Program() string { return v.program() }

// ProbeVariant asks the running kernel whether it has the bpf_loop helper
// and returns the variant Load picks by default.
//
// The probe loads a tiny kprobe program that calls bpf_loop: the helper is
// in bpf_base_func_proto, offered to every program type that can trace, so
// what kprobe programs may call, the tp_btf exec program may call too.
// (cilium/ebpf cannot probe helpers for tracing programs directly: those need
// an attach target at load time.)
func ProbeVariant() (Variant, error) {
	err := features.HaveProgramHelper(ebpf.Kprobe, asm.FnLoop)
	switch {
	case err == nil:
		return VariantBPFLoop, nil
	case errors.Is(err, ebpf.ErrNotSupported):
		return VariantBoundedLoop, nil
	default:
		return "", fmt.Errorf("bpf: probing the kernel for the bpf_loop helper: %w", err)
	}
}
