// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * tcx_kprobe.c: test data for `kmatrix run --bpf`: one object with a program
 * whose attach point is new and one whose attach point is old.
 *
 * count_ingress attaches through tcx (BPF_TCX_INGRESS links, 6.6+, commit
 * e420bed02507 "bpf: Add fd-based tcx multi-prog infra with link support"). It
 * loads on older kernels too (sched_cls programs do not check their expected
 * attach type at load time), so on 5.10 and 6.1 it is the ATTACH that fails.
 * count_getpid is an ordinary kprobe on the getpid syscall, which attaches on
 * every kernel kmatrix knows. Both count what they see in globals (.bss), so
 * a driver can check behaviour, not just attachment.
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define TCX_NEXT (-1)

struct __sk_buff;
struct pt_regs;

__u64 ingress_packets = 0;
__u64 getpid_calls = 0;

SEC("tcx/ingress")
int count_ingress(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&ingress_packets, 1);
	return TCX_NEXT;
}

/* __x64_sys_getpid: the x86-64 syscall entry point since 4.17 (pt_regs-based syscall wrappers). */
SEC("kprobe/__x64_sys_getpid")
int BPF_KPROBE(count_getpid)
{
	__sync_fetch_and_add(&getpid_calls, 1);
	return 0;
}
