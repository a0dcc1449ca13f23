// SPDX-License-Identifier: GPL-2.0
//
// noprograms.c is a valid BPF object with a map and no program: LoadObject
// must refuse it with an error that says so. Rebuild with `go generate`.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lonely SEC(".maps");
