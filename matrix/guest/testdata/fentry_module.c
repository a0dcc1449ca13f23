// SPDX-License-Identifier: GPL-2.0
//
// fentry_module.c: BPF trampolines on a function of a kernel module, not
// of the kernel itself: load_misc_binary of binfmt_misc (a module in
// Debian's kernels, CONFIG_BINFMT_MISC=m), which the kernel calls on every
// exec once the module is loaded (binfmt_misc puts itself first in the
// list of binary formats). The loader finds the function in the module's
// BTF (/sys/kernel/btf/binfmt_misc, CONFIG_DEBUG_INFO_BTF_MODULES, Linux
// 5.11+), so the module must be loaded before the program is.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct linux_binprm;

SEC("fentry/load_misc_binary")
int BPF_PROG(fentry_misc, struct linux_binprm *bprm)
{
	return 0;
}

SEC("fexit/load_misc_binary")
int BPF_PROG(fexit_misc, struct linux_binprm *bprm, int ret)
{
	return 0;
}
