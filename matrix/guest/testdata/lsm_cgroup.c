// SPDX-License-Identifier: GPL-2.0
//
// lsm_cgroup.c: a per-cgroup LSM program (BPF_LSM_CGROUP, Linux 6.0+), the
// way a container runtime restricts binds for one cgroup: 1 allows.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

__u64 binds = 0;

SEC("lsm_cgroup/socket_bind")
int cgroup_bind(void *ctx)
{
	__sync_fetch_and_add(&binds, 1);
	return 1;
}
