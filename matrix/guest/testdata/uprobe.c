// SPDX-License-Identifier: GPL-2.0
//
// uprobe.c: uprobes on functions of kmatrix-guest itself, the binary that
// runs in every guest at /kmatrix/kmatrix-guest and calls them while the
// trigger workload runs. uprobe_named names its target in the section;
// uprobe_unnamed does not, and is attached where --attach says.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("uprobe//kmatrix/kmatrix-guest:github.com/kmatrix/kmatrix/matrix/guest.loopback")
int uprobe_named(void *ctx)
{
	return 0;
}

SEC("uprobe")
int uprobe_unnamed(void *ctx)
{
	return 0;
}
