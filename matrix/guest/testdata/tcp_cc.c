// SPDX-License-Identifier: GPL-2.0
//
// tcp_cc.c: a TCP congestion control written in BPF: a struct_ops map
// whose function pointers are struct_ops programs; the object's only
// payload is the map. It is a .struct_ops.link map, registered through a
// struct_ops link (Linux 6.4+): cilium/ebpf, kmatrix's loader, reads no
// plain .struct_ops sections. The local tcp_congestion_ops names only the members set here:
// the loader matches them by name against the kernel's type.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct sock;

struct tcp_congestion_ops {
	__u32 (*ssthresh)(struct sock *sk);
	void (*cong_avoid)(struct sock *sk, __u32 ack, __u32 acked);
	__u32 (*undo_cwnd)(struct sock *sk);
	void (*init)(struct sock *sk);
	char name[16];
};

SEC("struct_ops/kmx_ssthresh")
__u32 BPF_PROG(kmx_ssthresh, struct sock *sk)
{
	return 10;
}

SEC("struct_ops/kmx_cong_avoid")
void BPF_PROG(kmx_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
}

SEC("struct_ops/kmx_undo_cwnd")
__u32 BPF_PROG(kmx_undo_cwnd, struct sock *sk)
{
	return 10;
}

SEC("struct_ops/kmx_init")
void BPF_PROG(kmx_init, struct sock *sk)
{
}

SEC(".struct_ops.link")
struct tcp_congestion_ops kmatrix_cc = {
	.ssthresh = (void *)kmx_ssthresh,
	.cong_avoid = (void *)kmx_cong_avoid,
	.undo_cwnd = (void *)kmx_undo_cwnd,
	.init = (void *)kmx_init,
	.name = "kmatrix_cc",
};
