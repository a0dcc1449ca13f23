// SPDX-License-Identifier: GPL-2.0
//
// flow_dissector.c: a BPF flow dissector (Linux 4.20+, attached to a
// network namespace with a BPF link since 5.8), the kind that replaces the
// kernel's C dissector for the packets a site cares about, modelled on the
// kernel's selftests/bpf/progs/bpf_flow.c but short: IPv4 and IPv6 (no
// extension headers, no tunnels), with the TCP or UDP ports. The kernel
// calls it wherever it dissects a packet in the namespace: for a packet's
// hash (RPS, a fanout group's hash), tc flower, GRO of tunnelled packets.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

// header returns size bytes at off: in the packet's linear data when they
// are there, else copied into buf.
static __always_inline void *header(struct __sk_buff *skb, __u16 off, __u16 size, void *buf)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	if (off > 1500)
		return NULL;
	if (data + off + size <= data_end)
		return data + off;
	if (bpf_skb_load_bytes(skb, off, buf, size))
		return NULL;
	return buf;
}

SEC("flow_dissector")
int dissect(struct __sk_buff *skb)
{
	struct bpf_flow_keys *keys = skb->flow_keys;
	__u16 off = keys->nhoff;

	switch (keys->n_proto) {
	case bpf_htons(ETH_P_IP): {
		struct iphdr buf, *ip = header(skb, off, sizeof(buf), &buf);

		if (!ip || ip->ihl < 5)
			return BPF_DROP;
		keys->addr_proto = ETH_P_IP;
		keys->ipv4_src = ip->saddr;
		keys->ipv4_dst = ip->daddr;
		keys->ip_proto = ip->protocol;
		keys->thoff = off + ip->ihl * 4;
		if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) {
			keys->is_frag = 1;
			if (ip->frag_off & bpf_htons(IP_OFFSET))
				return BPF_OK; // no ports in a later fragment
			keys->is_first_frag = 1;
		}
		break;
	}
	case bpf_htons(ETH_P_IPV6): {
		struct ipv6hdr buf, *ip6 = header(skb, off, sizeof(buf), &buf);

		if (!ip6)
			return BPF_DROP;
		keys->addr_proto = ETH_P_IPV6;
		__builtin_memcpy(keys->ipv6_src, &ip6->saddr, 16);
		__builtin_memcpy(keys->ipv6_dst, &ip6->daddr, 16);
		keys->ip_proto = ip6->nexthdr;
		keys->thoff = off + sizeof(*ip6);
		break;
	}
	default:
		return BPF_DROP; // not dissected: no hash from its headers
	}

	if (keys->ip_proto == IPPROTO_TCP || keys->ip_proto == IPPROTO_UDP) {
		__be16 ports[2], *p = header(skb, keys->thoff, sizeof(ports), ports);

		if (!p)
			return BPF_DROP;
		keys->sport = p[0];
		keys->dport = p[1];
	}
	return BPF_OK;
}
