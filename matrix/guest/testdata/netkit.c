// SPDX-License-Identifier: GPL-2.0
//
// netkit.c: programs for both sides of a netkit pair (Linux 6.7+,
// CONFIG_NETKIT): what a CNI like Cilium attaches instead of tc on veth.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("netkit/primary")
int netkit_primary(struct __sk_buff *skb)
{
	return -1; // NETKIT_NEXT
}

SEC("netkit/peer")
int netkit_peer(struct __sk_buff *skb)
{
	return -1; // NETKIT_NEXT
}
