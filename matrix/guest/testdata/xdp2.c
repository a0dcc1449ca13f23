// SPDX-License-Identifier: GPL-2.0
//
// xdp2.c: two XDP programs in one object. An interface takes one XDP
// program, so attaching both to one interface would fail the second with
// EBUSY; each must get an interface of its own.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int xdp_first(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int xdp_second(struct xdp_md *ctx)
{
	return XDP_PASS;
}
