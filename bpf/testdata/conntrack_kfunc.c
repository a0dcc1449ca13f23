// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * conntrack_kfunc.c: an XDP program that calls kfuncs a module provides,
 * modelled on the kernel selftests' test_bpf_nf.c: bpf_xdp_ct_lookup and
 * bpf_ct_release are nf_conntrack's (net/netfilter/nf_conntrack_bpf.c,
 * Linux 5.18+), not the kernel's own, so the loader finds them only once
 * nf_conntrack is loaded (/sys/kernel/btf/nf_conntrack). A kernel without
 * them (5.10) must fail the load saying it has no kfunc of that name.
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

/* Complete types, not declarations: the loader checks the kfunc's
 * prototype against the module's BTF, where a forward declaration does not
 * match a struct. CO-RE compares structs by name, not by members. */
struct xdp_md {
	__u32 data;
} __attribute__((preserve_access_index));

struct nf_conn {
	unsigned long status;
} __attribute__((preserve_access_index));

struct bpf_sock_tuple {
	union {
		struct {
			__be32 saddr;
			__be32 daddr;
			__be16 sport;
			__be16 dport;
		} ipv4;
		struct {
			__be32 saddr[4];
			__be32 daddr[4];
			__be16 sport;
			__be16 dport;
		} ipv6;
	};
};

/* The 12-byte options every kernel since 5.18 takes (NF_BPF_CT_OPTS_SZ
 * before 6.8 grew it with a zone). */
struct bpf_ct_opts {
	__s32 netns_id;
	__s32 error;
	__u8 l4proto;
	__u8 dir;
	__u8 reserved[2];
};

extern struct nf_conn *bpf_xdp_ct_lookup(struct xdp_md *xdp_ctx, struct bpf_sock_tuple *bpf_tuple,
					 __u32 tuple__sz, struct bpf_ct_opts *opts, __u32 opts__sz) __ksym;
extern void bpf_ct_release(struct nf_conn *ct) __ksym;

__u64 lookups = 0, found = 0;

SEC("xdp")
int ct_lookup(struct xdp_md *ctx)
{
	struct bpf_sock_tuple tup = {};
	struct bpf_ct_opts opts = { .netns_id = -1, .l4proto = 6 /* IPPROTO_TCP */ };
	struct nf_conn *ct;

	tup.ipv4.saddr = 0x0100007f; /* 127.0.0.1, network order */
	tup.ipv4.daddr = 0x0100007f;
	tup.ipv4.sport = 0x5000;     /* 80 */
	tup.ipv4.dport = 0x5000;
	__sync_fetch_and_add(&lookups, 1);
	ct = bpf_xdp_ct_lookup(ctx, &tup, sizeof(tup.ipv4), &opts, sizeof(opts));
	if (ct) {
		__sync_fetch_and_add(&found, 1);
		bpf_ct_release(ct);
	}
	return 2; /* XDP_PASS */
}
