//go:build linux

package bpf

import (
	"os"
	"testing"
)

// BenchmarkLoad measures Load+Close per variant: CO-RE relocation against
// the kernel's BTF plus the verifier, the cost a matrix cell pays.
func BenchmarkLoad(b *testing.B) {
	if !canLoadBPF() {
		b.Skip("loading BPF programs needs root (CAP_SYS_ADMIN, or CAP_BPF and CAP_PERFMON)")
	}
	probe, err := ProbeVariant()
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range Variants {
		b.Run(string(v), func(b *testing.B) {
			if v == VariantBPFLoop && probe != VariantBPFLoop {
				b.Skip("this kernel has no bpf_loop (5.17+)")
			}
			for b.Loop() {
				tr, err := Load(Options{Variant: v, FilterTgid: uint32(os.Getpid())})
				if err != nil {
					b.Fatal(err)
				}
				tr.Close()
			}
		})
	}
}
