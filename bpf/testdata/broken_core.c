// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * broken_core.c: DELIBERATELY BROKEN test data. It reads task_struct::__state
 * without a bpf_core_field_exists guard. The field exists only since 5.14
 * (commit 2f064a59a11f renamed `state` to `__state`), so on 5.10 the CO-RE
 * relocation cannot be resolved, the loader poisons the instruction and the
 * kernel refuses the program. On 5.14+ it loads. kmatrix's tests assert both,
 * which is how we know a CO-RE failure is reported and not hidden.
 * Compare c/task_state.h, which guards the same read.
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

__u32 last_state = 0;

SEC("tp_btf/sched_process_exec")
int BPF_PROG(unguarded_state, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	last_state = BPF_CORE_READ(p, __state);
	return 0;
}
