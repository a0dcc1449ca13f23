// probe.c: the example's CO-RE program. count_execve counts execve calls
// and remembers the tgid of the last caller (read from task_struct through
// a CO-RE relocation, so one object loads on every kernel); count_ingress
// counts packets arriving on an interface through tcx, which Linux 6.6
// introduced.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

// Only the fields we read: CO-RE finds them in the running kernel's BTF.
struct task_struct {
	int tgid;
} __attribute__((preserve_access_index));

enum { EXECS, LAST_TGID, PACKETS, NSTATS };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NSTATS);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static void add(__u32 key, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &key);
	if (v)
		__sync_fetch_and_add(v, n);
}

SEC("tracepoint/syscalls/sys_enter_execve")
int count_execve(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	__u32 key = LAST_TGID;
	__u64 tgid = BPF_CORE_READ(task, tgid);

	add(EXECS, 1);
	bpf_map_update_elem(&stats, &key, &tgid, BPF_ANY);
	return 0;
}

SEC("tcx/ingress")
int count_ingress(struct __sk_buff *skb)
{
	add(PACKETS, 1);
	return -1; // TCX_NEXT: let the packet through
}

char LICENSE[] SEC("license") = "GPL";
