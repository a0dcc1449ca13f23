// SPDX-License-Identifier: GPL-2.0
//
// fentry.c: BPF trampolines (fentry/fexit, Linux 5.5+) on functions the
// trigger workload calls: TCP connect and file open.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct sock;
struct path;
struct file;

SEC("fentry/tcp_v4_connect")
int BPF_PROG(fentry_connect, struct sock *sk)
{
	return 0;
}

SEC("fexit/vfs_open")
int BPF_PROG(fexit_open, const struct path *path, struct file *file, int ret)
{
	return 0;
}
