// SPDX-License-Identifier: GPL-2.0
//
// never.c: kprobes that attach on every kernel but whose functions the
// guest never calls (vhangup(2) and sync(2) are not in the trigger
// workload): the "attached, never ran" case, a probe on a dead hook.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("ksyscall/vhangup")
int never_vhangup(void *ctx)
{
	return 0;
}

SEC("kprobe/ksys_sync")
int never_sync(void *ctx)
{
	return 0;
}
