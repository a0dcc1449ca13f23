/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * kernel.h: the kernel types kmatrix's BPF programs use, written by hand.
 *
 * Why not a generated vmlinux.h: a vmlinux.h is several megabytes dumped from
 * ONE kernel, and it hides which fields a program really depends on. CO-RE
 * does not need the kernel's layout at compile time, only the names of the
 * types and fields we touch: every struct below carries
 * preserve_access_index, so clang records each access as a relocation that
 * the loader (cilium/ebpf) resolves against the running kernel's BTF. Listing
 * only the fields we read makes the program's kernel dependencies reviewable
 * in one screen, and a field that disappears fails loudly at load time.
 * Field order and offsets here are irrelevant; names and types matter.
 */
#pragma once

typedef signed char __s8;
typedef unsigned char __u8;
typedef short __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef int pid_t;
typedef _Bool bool;
#define true 1
#define false 0

/* UAPI constants (include/uapi/linux/bpf.h); stable ABI, so plain values. */
enum bpf_map_type {
	BPF_MAP_TYPE_RINGBUF = 27, /* 5.8 */
};

#define TASK_COMM_LEN 16

/*
 * struct task_struct, as of 5.14+: the task state is `unsigned int __state`.
 * Commit 2f064a59a11f ("sched: Change task_struct::state", 5.14) renamed
 * `volatile long state` to `unsigned int __state` so that every access goes
 * through READ_ONCE/WRITE_ONCE. See task_struct___pre_5_14 below.
 */
struct task_struct {
	pid_t pid;
	pid_t tgid;
	unsigned int __state;
	int exit_state;
	struct task_struct *real_parent;
	char comm[TASK_COMM_LEN];
} __attribute__((preserve_access_index));

/*
 * The same struct before 5.14. The "___pre_5_14" suffix is a CO-RE flavor:
 * libbpf and cilium/ebpf strip everything from "___" on when matching local
 * types against kernel types, so this still relocates against the kernel's
 * task_struct, but lets us name the old field next to the new one.
 */
struct task_struct___pre_5_14 {
	long state;
} __attribute__((preserve_access_index));

struct linux_binprm {
	const char *filename;
} __attribute__((preserve_access_index));

/* Context of an "iter/task" program (kernel/bpf/task_iter.c, 5.8+). */
struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
} __attribute__((preserve_access_index));

struct bpf_iter__task {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
} __attribute__((preserve_access_index));
