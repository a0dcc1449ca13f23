// SPDX-License-Identifier: GPL-2.0
//
// sockmap.c: what a socket-level proxy loads: a sockops program (on the
// cgroup), and sk_msg and sk_skb parser/verdict programs on the object's
// sockmap. The sk_* programs do not name the map: it is the one the
// object has, as the program's user attaches them.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} sock_map SEC(".maps");

SEC("sockops")
int sockops_prog(struct bpf_sock_ops *ops)
{
	return 1;
}

SEC("sk_msg")
int msg_verdict(struct sk_msg_md *msg)
{
	return SK_PASS;
}

SEC("sk_skb/stream_parser")
int skb_parser(struct __sk_buff *skb)
{
	return skb->len;
}

SEC("sk_skb/stream_verdict")
int skb_verdict(struct __sk_buff *skb)
{
	return SK_PASS;
}
