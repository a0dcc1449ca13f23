// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * strcasecmp.c: test data for `kmatrix bisect`: a program that loads only
 * on kernels that have the bpf_strcasecmp kfunc, which Linux 6.18 added
 * (commit "bpf: Add bpf_strcasecmp kfunc"; Debian: trixie-backports'
 * 6.17.13 lacks it, its 6.18 kernels have it). Before that the verifier
 * refuses the call, so the load cell flips at a known version among the
 * archive's kernels. It runs on every syscall (raw tracepoint sys_enter)
 * and counts the calls in which the kfunc compared as expected.
 *
 * Rebuild: clang -O2 -g -Wall -Werror -target bpf -I../../../../bpf/c -c strcasecmp.c -o strcasecmp.o
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

extern int bpf_strcasecmp(const char *s1__ign, const char *s2__ign) __ksym;

__u64 equal_calls = 0;

SEC("raw_tracepoint/sys_enter")
int case_insensitive(void *ctx)
{
	if (bpf_strcasecmp("KMatrix", "kmatrix") == 0)
		__sync_fetch_and_add(&equal_calls, 1);
	return 0;
}
