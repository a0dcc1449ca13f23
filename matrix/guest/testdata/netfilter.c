// SPDX-License-Identifier: GPL-2.0
//
// netfilter.c: a netfilter hook program (BPF_PROG_TYPE_NETFILTER, Linux
// 6.4+, CONFIG_NETFILTER_BPF_LINK). The section names no hook: kmatrix
// attaches it to IPv4 LOCAL_OUT.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct bpf_nf_ctx;

SEC("netfilter")
int nf_accept(struct bpf_nf_ctx *ctx)
{
	return 1; // NF_ACCEPT
}
