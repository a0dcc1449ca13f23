// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * tracer.c: kmatrix's CO-RE exec tracer, compiled once and loaded unchanged
 * on every kernel from 5.10 to 7.x.
 *
 * exec_bpf_loop / exec_bounded: on every successful exec (tp_btf
 * sched_process_exec, 5.5+) emit pid, tgid, parent tgid, comm, filename and
 * the task state through a BPF ring buffer (5.8+). When filter_tgid is set,
 * only descendants of that process are reported: finding out needs a walk up
 * the real_parent chain, and that walk is the feature-dependent part. The
 * loader loads exactly one of the two programs:
 *   - exec_bpf_loop walks with the bpf_loop helper (5.17+): the verifier
 *     checks the callback once, whatever the depth;
 *   - exec_bounded walks with a plain bounded loop (5.3+): the verifier
 *     walks every iteration, so it costs more verified instructions.
 * Both report the same events; each event says which walk produced it.
 *
 * task_states: a task iterator (iter/task, 5.8+) that dumps every task's
 * pid, tgid and state, read through CO-RE across the 5.14 state -> __state
 * rename, so userspace can compare it with /proc/<pid>/stat.
 */
#include "kernel.h"
#include "task_state.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define FILENAME_LEN 256
/* How many generations up the real_parent chain the filter looks. */
#define MAX_DEPTH 32

/* Set in event.flags when the ancestor walk ran through bpf_loop. */
#define EVENT_VIA_BPF_LOOP (1u << 1)

struct event {
	__u32 pid;        /* task->pid of the task that exec'd */
	__u32 tgid;       /* task->tgid */
	__u32 ppid;       /* task->real_parent->tgid */
	__u32 state;      /* raw task state at exec time */
	__u32 depth;      /* generations from filter_tgid (1 = child); 0 if no filter */
	__u32 flags;      /* STATE_FROM___STATE | EVENT_VIA_BPF_LOOP */
	char comm[TASK_COMM_LEN];
	char filename[FILENAME_LEN];
};

struct task_record {
	__u32 pid;
	__u32 tgid;
	__u32 state;      /* raw task state bits */
	__s32 exit_state; /* EXIT_ZOMBIE, EXIT_DEAD or 0 */
	__u32 flags;      /* STATE_FROM___STATE */
};

/*
 * clang emits BTF only for types that globals or function signatures use;
 * these two unused globals put struct event and struct task_record in the
 * object's BTF, where bpf2go -type finds them to generate their Go twins.
 */
const struct event *unused_event __attribute__((unused));
const struct task_record *unused_task_record __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Set by the loader before load; frozen in .rodata, so the verifier prunes on it. */
const volatile __u32 filter_tgid = 0;

/* Events lost because the ring buffer was full. */
__u64 dropped = 0;

struct walk {
	struct task_struct *task;
	__u32 target;
	__u32 depth;
};

/* One generation of the walk; returns 1 to stop. */
static __always_inline int walk_step(__u32 i, struct walk *w)
{
	/*
	 * Not BPF_CORE_READ(w->task, ...): the macro makes every access in its
	 * argument relocatable, and struct walk is ours, not the kernel's, so
	 * that relocation would fail (and be poisoned).
	 */
	struct task_struct *task = w->task;
	struct task_struct *parent = BPF_CORE_READ(task, real_parent);
	if (!parent)
		return 1;
	__u32 tgid = BPF_CORE_READ(parent, tgid);
	if (tgid == w->target) {
		w->depth = i + 1;
		return 1;
	}
	/* pid 1's parent is the idle task (0): the chain ends there. */
	if (tgid == 0 || parent == task)
		return 1;
	w->task = parent;
	return 0;
}

static int walk_cb(__u32 i, void *ctx)
{
	return walk_step(i, ctx);
}

static __always_inline int emit(struct task_struct *task, struct linux_binprm *bprm, bool use_bpf_loop)
{
	struct walk w = { .task = task, .target = filter_tgid };

	if (filter_tgid) {
		if (use_bpf_loop) {
			bpf_loop(MAX_DEPTH, walk_cb, &w, 0);
		} else {
#pragma clang loop unroll(disable)
			for (__u32 i = 0; i < MAX_DEPTH; i++) {
				if (walk_step(i, &w))
					break;
			}
		}
		if (!w.depth)
			return 0;
	}

	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&dropped, 1);
		return 0;
	}
	e->pid = BPF_CORE_READ(task, pid);
	e->tgid = BPF_CORE_READ(task, tgid);
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->depth = w.depth;
	e->flags = use_bpf_loop ? EVENT_VIA_BPF_LOOP : 0;
	e->state = task_state(task, &e->flags);
	BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(exec_bpf_loop, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return emit(p, bprm, true);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(exec_bounded, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return emit(p, bprm, false);
}

SEC("iter/task")
int task_states(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	if (!task)
		return 0;

	struct task_record r = {};
	r.pid = BPF_CORE_READ(task, pid);
	r.tgid = BPF_CORE_READ(task, tgid);
	r.state = task_state(task, &r.flags);
	r.exit_state = BPF_CORE_READ(task, exit_state);
	bpf_seq_write(seq, &r, sizeof(r));
	return 0;
}
