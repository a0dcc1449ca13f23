// SPDX-License-Identifier: GPL-2.0
//
// freplace.c: an extension program (freplace, Linux 5.6+) that replaces
// the global function decide() of the socket filter freplace_target in the
// same object, as a dispatcher (libxdp's, say) is extended.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

__attribute__((noinline)) int decide(struct __sk_buff *skb)
{
	return skb->len;
}

SEC("socket")
int freplace_target(struct __sk_buff *skb)
{
	return decide(skb);
}

SEC("freplace/decide")
int new_decide(struct __sk_buff *skb)
{
	return 0;
}
