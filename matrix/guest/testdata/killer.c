// SPDX-License-Identifier: GPL-2.0
//
// killer.c: an object whose program kills the process that loaded it, as
// enforcement agents do with bpf_send_signal (Linux 5.3+): a kprobe on
// proc_sys_read that sends SIGKILL to any kmatrix-guest process reading a
// sysctl, which kmatrix-guest's trigger workload does. No agent survives
// it; kmatrix must report it on its own and lose none of the other objects
// run with it. Only for kmatrix's own tests.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define SIGKILL 9

static __always_inline int is_agent(void)
{
	char comm[16] = {};
	const char want[] = "kmatrix-guest";

	bpf_get_current_comm(comm, sizeof(comm));
#pragma unroll
	for (int i = 0; i < sizeof(want); i++)
		if (comm[i] != want[i])
			return 0;
	return 1;
}

SEC("kprobe/proc_sys_read")
int kill_agent(void *ctx)
{
	if (is_agent())
		bpf_send_signal(SIGKILL);
	return 0;
}
