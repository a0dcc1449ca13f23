// SPDX-License-Identifier: GPL-2.0
//
// sock_addr.c: what a service mesh or a socket-level policy agent attaches
// to a cgroup for IPv6 and unix sockets: connect, sendmsg and recvmsg
// rewrites and the getsockname/getpeername reverse mapping. Each hook runs
// only for its address family, so the trigger must send IPv6 and unix
// traffic too; the unix hooks arrived in Linux 6.7.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

__u64 calls = 0;

#define ALLOW { __sync_fetch_and_add(&calls, 1); return 1; }

SEC("cgroup/connect6") int connect6(struct bpf_sock_addr *ctx) ALLOW
SEC("cgroup/sendmsg6") int sendmsg6(struct bpf_sock_addr *ctx) ALLOW
SEC("cgroup/recvmsg6") int recvmsg6(struct bpf_sock_addr *ctx) ALLOW
SEC("cgroup/getpeername6") int getpeername6(struct bpf_sock_addr *ctx) ALLOW
SEC("cgroup/getsockname6") int getsockname6(struct bpf_sock_addr *ctx) ALLOW
SEC("cgroup/connect_unix") int connect_unix(struct bpf_sock_addr *ctx) ALLOW
SEC("cgroup/sendmsg_unix") int sendmsg_unix(struct bpf_sock_addr *ctx) ALLOW
SEC("cgroup/recvmsg_unix") int recvmsg_unix(struct bpf_sock_addr *ctx) ALLOW
SEC("cgroup/getpeername_unix") int getpeername_unix(struct bpf_sock_addr *ctx) ALLOW
SEC("cgroup/getsockname_unix") int getsockname_unix(struct bpf_sock_addr *ctx) ALLOW
