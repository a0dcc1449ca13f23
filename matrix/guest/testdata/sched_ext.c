// SPDX-License-Identifier: GPL-2.0
//
// sched_ext.c: the smallest sched_ext scheduler, a .struct_ops.link map
// registered through a struct_ops link. Only kernels with
// CONFIG_SCHED_CLASS_EXT (6.12+; of the defaults, sid's 7.2) have the
// sched_ext_ops type; elsewhere the load fails naming it. With no enqueue
// or dispatch callback the kernel's defaults queue every task on the
// global queue, so the guest keeps running while it is registered.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct task_struct;

struct sched_ext_ops {
	void (*enable)(struct task_struct *p);
	char name[128];
};

SEC("struct_ops/kmx_enable")
void BPF_PROG(kmx_enable, struct task_struct *p)
{
}

SEC(".struct_ops.link")
struct sched_ext_ops kmatrix_scx = {
	.enable = (void *)kmx_enable,
	.name = "kmatrix",
};
