// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * kconfig.c: a program that reads the kernel's configuration through
 * `__kconfig` externs, as agents do to pick code paths (CONFIG_HZ for
 * jiffies arithmetic, whether a feature is built in). The loader resolves
 * them from /boot/config-$(uname -r) (or /proc/config.gz) before loading;
 * Debian kernels have no /proc/config.gz, so this loads in a guest only
 * when kmatrix puts the kernel's config where a Debian system has it.
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

extern int CONFIG_HZ __kconfig;
extern _Bool CONFIG_BPF_SYSCALL __kconfig;

__u64 hz = 0;
__u64 calls = 0;

SEC("tracepoint/syscalls/sys_enter_openat")
int read_config(void *ctx)
{
	if (CONFIG_BPF_SYSCALL)
		hz = CONFIG_HZ;
	__sync_fetch_and_add(&calls, 1);
	return 0;
}
