package version

import "fmt"

// Feature is a kernel change that kmatrix's payloads, classifier and tests
// depend on, with the release that brought it. Each is stated here once:
// the checks that expect a kernel to have it, and the messages that explain
// why a kernel does not, use the same value.
type Feature struct {
	// Name is how messages name it, e.g. "tcx".
	Name string
	// Since is the first release that has it (major.minor).
	Since Version
}

// The features, oldest first.
var (
	// BPFStats is BPF_ENABLE_STATS: per-program run counts and run time.
	BPFStats = Feature{"BPF run statistics (BPF_ENABLE_STATS)", Version{5, 8, 0}}
	// TaskStateRename renamed task_struct's state field to __state.
	TaskStateRename = Feature{"task_struct.__state", Version{5, 14, 0}}
	// VerifiedInsns is bpf_prog_info.verified_insns.
	VerifiedInsns = Feature{"verified instruction counts (bpf_prog_info.verified_insns)", Version{5, 16, 0}}
	// BPFLoop is the bpf_loop helper.
	BPFLoop = Feature{"the bpf_loop helper", Version{5, 17, 0}}
	// KprobeMulti is BPF_TRACE_KPROBE_MULTI links (fprobe).
	KprobeMulti = Feature{"kprobe.multi links", Version{5, 18, 0}}
	// StructOpsLink is BPF_F_LINK on struct_ops maps (.struct_ops.link).
	StructOpsLink = Feature{"struct_ops links (.struct_ops.link)", Version{6, 4, 0}}
	// NetfilterLink is BPF_PROG_TYPE_NETFILTER and its links.
	NetfilterLink = Feature{"netfilter programs", Version{6, 4, 0}}
	// TCX is tcx links (CONFIG_NET_XGRESS).
	TCX = Feature{"tcx", Version{6, 6, 0}}
	// Netkit is netkit devices (CONFIG_NETKIT).
	Netkit = Feature{"netkit", Version{6, 7, 0}}
	// SchedExt is sched_ext (CONFIG_SCHED_CLASS_EXT).
	SchedExt = Feature{"sched_ext", Version{6, 12, 0}}
)

// Has reports whether a kernel of version v has f.
func (v Version) Has(f Feature) bool { return v.AtLeast(f.Since.Major, f.Since.Minor) }

// Needs is how messages say what f needs: "tcx needs Linux 6.6".
func (f Feature) Needs() string {
	return fmt.Sprintf("%s needs Linux %d.%d", f.Name, f.Since.Major, f.Since.Minor)
}

// SinceString is the release that brought f, "6.6".
func (f Feature) SinceString() string { return fmt.Sprintf("%d.%d", f.Since.Major, f.Since.Minor) }
