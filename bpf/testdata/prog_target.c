// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * prog_target.c: programs whose attach point is another program of the
 * same object, as agents use them to observe their own programs
 * (fentry/fexit on a BPF program, Linux 5.5+), plus a function that lives
 * in a section of its own and is only called. The loader must set the
 * target program before loading the tracers; the called function is part
 * of its caller, not a program to attach. Modelled on cilium/ebpf's
 * testdata/fentry_fexit.c and loader.c.
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

__u64 target_runs = 0, entries = 0, exits = 0;

/* A global function (verified on its own, so scalar arguments only: 5.10
 * takes no pointers to memory in them) in a section that names no program
 * type. */
__attribute__((noinline)) SEC("kmatrix_helpers") int next_count(int n)
{
	return n + 1;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int target(void *ctx)
{
	target_runs = next_count((int)target_runs);
	return 0;
}

SEC("fentry/target")
int BPF_PROG(on_target_entry)
{
	__sync_fetch_and_add(&entries, 1);
	return 0;
}

SEC("fexit/target")
int BPF_PROG(on_target_exit)
{
	__sync_fetch_and_add(&exits, 1);
	return 0;
}
