// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * bash_uprobe.c: uprobes whose sections name a binary by absolute path, as
 * libbpf-tools' bashreadline does (uretprobe//bin/bash:readline). On the
 * user's system /bin/bash exists; in a guest it does only if kmatrix puts
 * it there. The uprobe on initialize_shell_variables runs whenever bash
 * starts; readline runs only in an interactive shell, so with a check of
 * `/bin/bash -c true` it attaches and never runs. The third names a binary
 * no host has: the guest cannot have it either, and says how to ship one.
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

__u64 starts = 0, lines = 0;

SEC("uprobe//bin/bash:initialize_shell_variables")
int bash_start(void *ctx)
{
	__sync_fetch_and_add(&starts, 1);
	return 0;
}

SEC("uretprobe//bin/bash:readline")
int bash_readline(void *ctx)
{
	__sync_fetch_and_add(&lines, 1);
	return 0;
}

SEC("uprobe//opt/kmatrix-absent/bin/agent:main")
int absent_binary(void *ctx)
{
	return 0;
}
