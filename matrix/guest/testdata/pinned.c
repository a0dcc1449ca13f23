// SPDX-License-Identifier: GPL-2.0
//
// pinned.c: a map pinned by name (LIBBPF_PIN_BY_NAME), shared by two
// programs as libbpf shares it: the loader needs a PinPath on a bpffs.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kmatrix_pinned SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpid")
int pinned_count(void *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&kmatrix_pinned, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("socket")
int pinned_read(struct __sk_buff *skb)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&kmatrix_pinned, &k);
	return v && *v ? 0 : 0;
}
