// SPDX-License-Identifier: GPL-2.0
//
// tc.c: the tc sections real objects use. "tc" and "classifier" name no
// mechanism (loaders use tcx on 6.6+, a clsact qdisc and cls_bpf before);
// "tc/ingress" (libbpf 1.3's name) and "tcx/egress" ask for tcx itself.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tc")
int tc_legacy(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

SEC("classifier")
int classifier_legacy(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

SEC("tc/ingress")
int tc_ingress_tcx(struct __sk_buff *skb)
{
	return -1; // TCX_NEXT
}

SEC("tcx/egress")
int tcx_egress_only(struct __sk_buff *skb)
{
	return -1; // TCX_NEXT
}
