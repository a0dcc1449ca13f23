// Package guest loads a user's BPF object inside a guest kernel and reports,
// for each program in it on its own, whether it loaded (and if not, why:
// verifier rejection, CO-RE relocation failure, missing BTF, unsupported
// feature) and whether it attached where its ELF section says.
//
// It is the library half of `kmatrix run --bpf obj.o`: the kmatrix-guest
// command (matrix/cmd/kmatrix-guest) runs LoadObject in every guest VM and
// prints one ProgramResult per line as JSON; the host decodes them with
// Decode. Every program is loaded from its own copy of the collection spec
// with only the maps it references, so one program's failure never hides
// another's result, and a program that loads but does not attach is never
// a pass: it is attach-error, or not-attached when its section names no
// attach point kmatrix knows.
//
// All BPF operations go through github.com/cilium/ebpf and its link
// package, so the kernel differences it already handles (syscall symbol
// prefixes for kprobes, perf-event versus bpf_link attachment, feature
// probes that name the kernel version a feature needs) are handled here.
package guest

//go:generate clang-14 -target bpf -O2 -g -Wall -I/usr/include/x86_64-linux-gnu -c testdata/programs.c -o testdata/programs.o
//go:generate llvm-strip-14 -g testdata/programs.o
//go:generate clang-14 -target bpf -O2 -g -Wall -I/usr/include/x86_64-linux-gnu -c testdata/noprograms.c -o testdata/noprograms.o
//go:generate llvm-strip-14 -g testdata/noprograms.o
//go:generate sh -c "for f in pinned tcp_cc sched_ext tc xdp2 kprobe_multi never iter sockmap cgroup netfilter freplace uprobe lsm fentry netkit fentry_module flow_dissector sock_addr lsm_cgroup killer stopper; do clang-14 -target bpf -O2 -g -Wall -I/usr/include/x86_64-linux-gnu -D__TARGET_ARCH_x86 -c testdata/${DOLLAR}f.c -o testdata/${DOLLAR}f.o && llvm-strip-14 -g testdata/${DOLLAR}f.o || exit 1; done"
//go:generate sh -c "cd testdata && sha256sum *.c *.o > fixtures.sha256"
