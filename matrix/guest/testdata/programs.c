// SPDX-License-Identifier: GPL-2.0
//
// programs.c is the fixture object of matrix/guest: one ELF holding programs
// that pass, fail to load, fail to attach, or name no attach point, so the
// tests can check that every program is reported on its own and that one
// program's failure does not hide the others. Rebuild with `go generate`.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void count(void)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&counts, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
}

// Loads and attaches everywhere: a socket filter on a fresh socket.
SEC("socket")
int socket_pass(struct __sk_buff *skb)
{
	count();
	return 0;
}

// Only verifier_reject uses it: loading the other programs must not need it.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} reject_values SEC(".maps");

// The verifier rejects it on every kernel: a hash map lookup may return
// NULL, and the value is dereferenced without a check ("R0 invalid mem
// access 'map_value_or_null'"). (An array lookup with a constant key would
// not do: newer kernels know that one cannot fail.)
SEC("socket")
int verifier_reject(struct __sk_buff *skb)
{
	__u32 k = skb->len;
	__u64 *v = bpf_map_lookup_elem(&reject_values, &k);
	return *v;
}

// No kernel creates a hash map without entries (EINVAL): only the program
// that uses it may fail because of it.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 0);
	__type(key, __u32);
	__type(value, __u64);
} broken_map SEC(".maps");

SEC("socket")
int uses_broken_map(struct __sk_buff *skb)
{
	__u32 k = 0;
	return bpf_map_lookup_elem(&broken_map, &k) != 0;
}

// Socket filters may not call bpf_probe_write_user (tracing programs only):
// the verifier rejects it on every kernel, and kmatrix says which helper.
SEC("socket")
int helper_wrong_type(struct __sk_buff *skb)
{
	return bpf_probe_write_user((void *)0, (void *)0, 0);
}

static long loop_body(__u32 i, void *ctx)
{
	return 0;
}

// bpf_loop arrived in Linux 5.17: older kernels know no such helper.
SEC("socket")
int uses_bpf_loop(struct __sk_buff *skb)
{
	return bpf_loop(4, loop_body, 0, 0) == 4;
}

// A local flavour of task_struct with a field no kernel has: the CO-RE
// relocation cannot be resolved, so the instruction is poisoned and the
// verifier rejects the program. kmatrix must name the type and the field.
struct task_struct___kmatrix {
	int kmatrix_no_such_field;
} __attribute__((preserve_access_index));

SEC("kprobe/vfs_read")
int core_missing_field(void *ctx)
{
	struct task_struct___kmatrix *t = (void *)bpf_get_current_task();
	int v = 0;

	bpf_core_read(&v, sizeof(v), &t->kmatrix_no_such_field);
	return v;
}

SEC("kprobe/vfs_read")
int kprobe_pass(void *ctx)
{
	count();
	return 0;
}

SEC("kretprobe/vfs_read")
int kretprobe_pass(void *ctx)
{
	count();
	return 0;
}

// Loads, but no kernel has this function: attach fails with ENOENT.
SEC("kprobe/kmatrix_no_such_function")
int kprobe_missing(void *ctx)
{
	return 0;
}

// ksyscall/getpid attaches to the syscall's arch-specific symbol
// (__x64_sys_getpid since 4.17).
SEC("ksyscall/getpid")
int ksyscall_pass(void *ctx)
{
	count();
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int tracepoint_pass(void *ctx)
{
	count();
	return 0;
}

SEC("raw_tracepoint/sys_enter")
int raw_tracepoint_pass(void *ctx)
{
	return 0;
}

SEC("tp_btf/sched_switch")
int tp_btf_pass(void *ctx)
{
	return 0;
}

SEC("fentry/vfs_read")
int fentry_pass(void *ctx)
{
	return 0;
}

SEC("fexit/vfs_read")
int fexit_pass(void *ctx)
{
	return 0;
}

// Attaches only where "bpf" is in the kernel's active LSM list.
SEC("lsm/file_open")
int lsm_file_open(void *ctx)
{
	return 0;
}

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

// tcx (bpf_link for tc) arrived in Linux 6.6: attach fails before that.
SEC("tcx/ingress")
int tcx_ingress(struct __sk_buff *skb)
{
	count();
	return -1; // TCX_NEXT
}

SEC("tcx/egress")
int tcx_egress(struct __sk_buff *skb)
{
	return -1; // TCX_NEXT
}

SEC("cgroup_skb/egress")
int cgroup_skb_egress(struct __sk_buff *skb)
{
	return 1;
}

SEC("cgroup/sock_create")
int cgroup_sock_create(struct bpf_sock *sk)
{
	return 1;
}

// Plain "tc" is a cls_bpf classifier: it is attached through a qdisc over
// netlink, which kmatrix does not do, so it loads but is not attached.
SEC("tc")
int tc_classifier(struct __sk_buff *skb)
{
	return 0;
}

// perf_event programs need a perf event the section does not name.
SEC("perf_event")
int perf_event_prog(void *ctx)
{
	return 0;
}

// No loader knows this section: there is no program type to load it as.
SEC("kmatrix/unknown")
int unknown_section(void *ctx)
{
	return 0;
}
