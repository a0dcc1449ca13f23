// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * socket_hooks.c: hooks that run only when a program's loader or traffic of
 * a particular shape reaches them, each of which kmatrix must set up and
 * fire itself: an sk_reuseport selector (a socket with SO_REUSEPORT), a
 * cgroup sendmsg4 hook (unconnected UDP sendto only), a syscall
 * program (BPF_PROG_TYPE_SYSCALL, Linux 5.14+, run with BPF_PROG_RUN), and
 * an sk_lookup program (Linux 5.9+: runs when the kernel looks up the
 * listening or receiving socket of a TCP SYN or a UDP datagram, in the
 * network namespace it is attached to).
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct sk_reuseport_md;
struct bpf_sock_addr;
struct bpf_sk_lookup;

__u64 selects = 0, sends = 0, syscalls = 0, lookups = 0;

SEC("sk_reuseport")
int select_any(struct sk_reuseport_md *ctx)
{
	__sync_fetch_and_add(&selects, 1);
	return 1; /* SK_PASS: the kernel picks the socket */
}

SEC("cgroup/sendmsg4")
int udp_sendto(struct bpf_sock_addr *ctx)
{
	__sync_fetch_and_add(&sends, 1);
	return 1; /* allow */
}

SEC("syscall")
int from_loader(void *ctx)
{
	__sync_fetch_and_add(&syscalls, 1);
	return 0;
}

SEC("sk_lookup")
int lookup_any(struct bpf_sk_lookup *ctx)
{
	__sync_fetch_and_add(&lookups, 1);
	return 1; /* SK_PASS: no socket chosen, the kernel's own lookup goes on */
}
