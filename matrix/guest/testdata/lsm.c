// SPDX-License-Identifier: GPL-2.0
//
// lsm.c: BPF LSM programs (Linux 5.7+, CONFIG_BPF_LSM, and "bpf" in the
// active LSM list: 5.10's built-in CONFIG_LSM lacks it, so kmatrix boots
// each kernel with lsm= its list plus bpf).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct file;
struct linux_binprm;

SEC("lsm/file_open")
int BPF_PROG(lsm_file_open, struct file *file)
{
	return 0;
}

SEC("lsm/bprm_check_security")
int BPF_PROG(lsm_bprm_check, struct linux_binprm *bprm)
{
	return 0;
}
