// SPDX-License-Identifier: GPL-2.0
//
// cgroup.c: cgroup programs an agent attaches to its cgroup: packets in,
// socket creation, connect(2) and sysctl access.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("cgroup_skb/ingress")
int skb_ingress(struct __sk_buff *skb)
{
	return 1;
}

SEC("cgroup/sock_create")
int sock_create(struct bpf_sock *sk)
{
	return 1;
}

SEC("cgroup/connect4")
int connect4(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/sysctl")
int sysctl_read(struct bpf_sysctl *ctx)
{
	return 1;
}
