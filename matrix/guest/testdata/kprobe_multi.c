// SPDX-License-Identifier: GPL-2.0
//
// kprobe_multi.c: kprobe.multi links (Linux 5.18+, and only with
// CONFIG_FPROBE, which bookworm's 6.1 lacks), on an exact name and on a
// pattern.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("kprobe.multi/vfs_read")
int multi_vfs_read(void *ctx)
{
	return 0;
}

SEC("kretprobe.multi/vfs_rea*")
int multi_ret_pattern(void *ctx)
{
	return 0;
}
