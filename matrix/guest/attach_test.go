package guest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPlanAttach checks where each section convention is attached, and that
// sections without an attach point say why instead of passing.
func TestPlanAttach(t *testing.T) {
	e := &env{cgroupPath: "/sys/fs/cgroup"}
	for _, tc := range []struct {
		section string
		typ     ebpf.ProgramType
		at      ebpf.AttachType
		to      string
		point   string // want this attach point
		reason  string // or: not attached, for this reason
	}{
		{"kprobe/vfs_read", ebpf.Kprobe, 0, "vfs_read", "kprobe vfs_read", ""},
		{"kprobe/vfs_read+0x10", ebpf.Kprobe, 0, "vfs_read+0x10", "kprobe vfs_read+0x10", ""},
		{"kretprobe/vfs_read", ebpf.Kprobe, 0, "vfs_read", "kretprobe vfs_read", ""},
		{"ksyscall/getpid", ebpf.Kprobe, 0, "getpid", "ksyscall getpid", ""},
		{"kprobe.multi/vfs_*", ebpf.Kprobe, ebpf.AttachTraceKprobeMulti, "vfs_*", "kprobe.multi vfs_*", ""},
		{"uprobe//bin/true:main", ebpf.Kprobe, 0, "/bin/true:main", "uprobe /bin/true:main", ""},
		{"?tracepoint/syscalls/sys_enter_getpid", ebpf.TracePoint, 0, "syscalls/sys_enter_getpid", "tracepoint syscalls/sys_enter_getpid", ""},
		{"raw_tp/sys_enter", ebpf.RawTracepoint, 0, "sys_enter", "raw tracepoint sys_enter", ""},
		{"fentry/vfs_read", ebpf.Tracing, ebpf.AttachTraceFEntry, "vfs_read", "fentry vfs_read", ""},
		{"tp_btf/sched_switch", ebpf.Tracing, ebpf.AttachTraceRawTp, "sched_switch", "tp_btf sched_switch", ""},
		{"iter/task", ebpf.Tracing, ebpf.AttachTraceIter, "task", "iterator task", ""},
		{"lsm/file_open", ebpf.LSM, ebpf.AttachLSMMac, "file_open", "LSM hook file_open", ""},
		{"xdp", ebpf.XDP, ebpf.AttachXDP, "", "xdp on lo of its own network namespace", ""},
		{"tcx/ingress", ebpf.SchedCLS, ebpf.AttachTCXIngress, "", "tcx ingress on lo of its own network namespace", ""},
		{"tc/egress", ebpf.SchedCLS, ebpf.AttachTCXEgress, "", "tcx egress on lo of its own network namespace", ""},
		{"tc", ebpf.SchedCLS, 0, "", "tc ingress on lo of its own network namespace (tcx, or clsact and cls_bpf)", ""},
		{"classifier", ebpf.SchedCLS, 0, "", "tc ingress on lo of its own network namespace (tcx, or clsact and cls_bpf)", ""},
		{"sk_msg", ebpf.SkMsg, ebpf.AttachSkMsgVerdict, "", "SkMsgVerdict on the object's sockmap", ""},
		{"sk_skb", ebpf.SkSKB, 0, "", "SkSKBStreamVerdict on the object's sockmap", ""},
		{"perf_event", ebpf.PerfEvent, 0, "", "perf event cpu-clock on CPU 0", ""},
		{"freplace/f", ebpf.Extension, 0, "f", "freplace f", ""},
		{"netfilter", ebpf.Netfilter, ebpf.AttachNetfilter, "", "netfilter ipv4 local_out priority 0", ""},
		{"cgroup_skb/ingress", ebpf.CGroupSKB, ebpf.AttachCGroupInetIngress, "", "cgroup_skb/ingress on cgroup /sys/fs/cgroup", ""},
		{"cgroup/connect4", ebpf.CGroupSockAddr, ebpf.AttachCGroupInet4Connect, "", "cgroup/connect4 on cgroup /sys/fs/cgroup", ""},
		{"socket", ebpf.SocketFilter, 0, "", "socket filter on a UDP socket", ""},
		{"sk_lookup", ebpf.SkLookup, ebpf.AttachSkLookup, "", "sk_lookup in its own network namespace", ""},

		{"kprobe", ebpf.Kprobe, 0, "", "", "names no kernel function"},
		{"ksyscall", ebpf.Kprobe, 0, "", "", "names no system call"},
		{"uprobe", ebpf.Kprobe, 0, "", "", "names no binary and function"},
		{"usdt/lib:prov:name", ebpf.Kprobe, 0, "lib:prov:name", "", "need a target process or binary"},
		{"tracepoint/syscalls", ebpf.TracePoint, 0, "syscalls", "", "want tracepoint/<group>/<name>"},
		{"raw_tp", ebpf.RawTracepoint, 0, "", "", "want raw_tracepoint/<name>"},
		{"netkit/primary", ebpf.SchedCLS, ebpf.AttachNetkitPrimary, "", "netkit primary of a pair in its own network namespace", ""},
		{"action", ebpf.SchedACT, 0, "", "", "tc action"},
		{"xdp/devmap", ebpf.XDP, ebpf.AttachXDPDevMap, "", "", "run from a map"},
		{"cgroup/skb", ebpf.CGroupSKB, 0, "", "", "does not say ingress or egress"},
		{"struct_ops/x", ebpf.StructOps, 0, "", "", "struct_ops map"},
		{"syscall", ebpf.Syscall, 0, "", syscallRunPoint, ""},
		{"lwt_xmit", ebpf.LWTXmit, 0, "", "", "encap bpf"},
		{"lirc_mode2", ebpf.LircMode2, ebpf.AttachLircMode2, "", "", "knows no attach point"},
	} {
		t.Run(tc.section, func(t *testing.T) {
			p := planAttach(&ebpf.ProgramSpec{SectionName: tc.section, Type: tc.typ, AttachType: tc.at, AttachTo: tc.to}, e)
			if tc.reason == "" {
				assert.NotNil(t, p.attach, "not attached: %s", p.reason)
				assert.Equal(t, tc.point, p.point)
				return
			}
			assert.Nil(t, p.attach)
			assert.Contains(t, p.reason, tc.reason)
			assert.NotEmpty(t, p.point)
		})
	}
}

func TestFindCgroup2(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "mountinfo")
		require.NoError(t, os.WriteFile(p, []byte(s), 0o644))
		return p
	}
	got, err := findCgroup2(write(
		"22 1 0:21 / /sys rw,nosuid shared:7 - sysfs sysfs rw\n" +
			"35 22 0:30 / /sys/fs/cgroup ro shared:9 - tmpfs tmpfs ro,mode=755\n" +
			"41 35 0:35 / /sys/fs/cgroup/my\\040unified rw shared:10 - cgroup2 cgroup2 rw\n"))
	require.NoError(t, err)
	assert.Equal(t, "/sys/fs/cgroup/my unified", got)

	_, err = findCgroup2(write("22 1 0:21 / /sys rw - sysfs sysfs rw\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no cgroup2 file system is mounted")
	assert.Contains(t, err.Error(), "mount one")

	_, err = findCgroup2(filepath.Join(dir, "absent"))
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestExpandSymbolsLiteral(t *testing.T) {
	// A literal name is passed through: the kernel says if it is missing.
	got, err := expandSymbols("vfs_read")
	require.NoError(t, err)
	assert.Equal(t, []string{"vfs_read"}, got)
}
