/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * task_state.h: read a task's scheduler state on every kernel since 5.8.
 */
#pragma once

#include "kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

/* Set in a record's flags when the state came from task_struct::__state. */
#define STATE_FROM___STATE (1u << 0)

/*
 * task_state returns the raw task state bits (TASK_INTERRUPTIBLE, ...) and
 * says in *flags which field it read.
 *
 * bpf_core_field_exists is resolved by the loader against the running
 * kernel's BTF and becomes a constant 0 or 1; the verifier then drops the
 * branch that can never run, so the read of the field that this kernel lacks
 * is never verified (its relocation is poisoned, harmlessly). Without the
 * guard, one of the two reads fails to relocate on every kernel: see
 * testdata/broken_core.c.
 */
static __always_inline __u32 task_state(struct task_struct *task, __u32 *flags)
{
	if (bpf_core_field_exists(task->__state)) {
		*flags |= STATE_FROM___STATE;
		return BPF_CORE_READ(task, __state);
	}
	struct task_struct___pre_5_14 *old = (void *)task;
	return (__u32)BPF_CORE_READ(old, state);
}
