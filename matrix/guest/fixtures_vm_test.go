package guest

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kmatrix/kmatrix/kernels/version"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
	"github.com/kmatrix/kmatrix/matrix/outcome"
	"github.com/kmatrix/kmatrix/vmtest"
)

// attachFixtures are the objects of testdata/ built the way libbpf and
// cilium/ebpf projects build theirs, one per attach mechanism.
var attachFixtures = []string{"pinned", "tcp_cc", "sched_ext", "tc", "xdp2", "kprobe_multi", "never", "iter",
	"sockmap", "cgroup", "netfilter", "freplace", "uprobe", "lsm", "fentry", "netkit", "fentry_module", "flow_dissector", "sock_addr", "lsm_cgroup"}

// guestTool is where kmatrix run puts kmatrix-guest; uprobe.c's section
// names it.
const guestTool = "/kmatrix/kmatrix-guest"

// fixtureArgs are the flags a user would give for these objects: the
// uprobe target the section lacks, and the congestion control callbacks
// that run only on loss.
var fixtureArgs = []string{
	"-attach", "uprobe_unnamed=" + guestTool + ":github.com/kmatrix/kmatrix/matrix/guest.udpTo",
	"-no-fire", "kmx_ssthresh", "-no-fire", "kmx_undo_cwnd",
}

// want is one expected result: outcome, and for failures the class.
type want struct {
	o     outcome.Outcome
	class Class
}

// expectedOutcomes is what each kernel really supports, derived from its
// version and config: the table the fixtures are checked against.
func expectedOutcomes(v kernels.Version, cfg map[string]string, hasModules bool) map[string]want {
	y := func(opt string) bool { return cfg[opt] == "y" }
	ok := want{o: outcome.Pass}
	e := map[string]want{}
	attached := func(obj string, progs ...string) {
		for _, p := range progs {
			e[obj+"/"+p+"/load"], e[obj+"/"+p+"/attach"], e[obj+"/"+p+"/run"] = ok, ok, ok
		}
	}
	attachErr := func(obj, p string, o outcome.Outcome, c Class) {
		e[obj+"/"+p+"/load"], e[obj+"/"+p+"/attach"] = ok, want{o, c}
	}
	loadErr := func(obj, p string, c Class) { e[obj+"/"+p+"/load"] = want{outcome.LoadError, c} }

	attached("pinned", "pinned_count", "pinned_read")
	// struct_ops links: Linux 6.4.
	if v.Has(version.StructOpsLink) {
		e["tcp_cc/kmatrix_cc/load"], e["tcp_cc/kmatrix_cc/attach"] = ok, ok
		for _, p := range []string{"kmx_init", "kmx_cong_avoid", "kmx_ssthresh", "kmx_undo_cwnd"} {
			e["tcp_cc/"+p+"/load"], e["tcp_cc/"+p+"/run"] = ok, ok
		}
	} else {
		loadErr("tcp_cc", "kmatrix_cc", ClassNotSupported)
	}
	if y("CONFIG_SCHED_CLASS_EXT") {
		e["sched_ext/kmatrix_scx/load"], e["sched_ext/kmatrix_scx/attach"] = ok, ok
		e["sched_ext/kmx_enable/load"], e["sched_ext/kmx_enable/run"] = ok, ok
	} else {
		loadErr("sched_ext", "kmatrix_scx", ClassNotSupported)
	}
	// "tc" and "classifier" attach everywhere: tcx where the kernel has
	// it, else a clsact qdisc and a cls_bpf filter (the modules kmatrix
	// ships); the sections that ask for tcx need it.
	attached("tc", "tc_legacy", "classifier_legacy")
	if v.Has(version.TCX) && y("CONFIG_NET_XGRESS") {
		attached("tc", "tc_ingress_tcx", "tcx_egress_only")
	} else {
		attachErr("tc", "tc_ingress_tcx", outcome.AttachError, ClassNotSupported)
		attachErr("tc", "tcx_egress_only", outcome.AttachError, ClassNotSupported)
	}
	attached("xdp2", "xdp_first", "xdp_second")
	if v.Has(version.KprobeMulti) && y("CONFIG_FPROBE") {
		attached("kprobe_multi", "multi_vfs_read", "multi_ret_pattern")
	} else {
		attachErr("kprobe_multi", "multi_vfs_read", outcome.AttachError, ClassNotSupported)
		attachErr("kprobe_multi", "multi_ret_pattern", outcome.AttachError, ClassNotSupported)
	}
	for _, p := range []string{"never_vhangup", "never_sync"} {
		e["never/"+p+"/load"], e["never/"+p+"/attach"], e["never/"+p+"/run"] = ok, ok, want{outcome.NeverRan, ClassNeverRan}
	}
	attached("iter", "dump_task")
	attached("sockmap", "sockops_prog", "msg_verdict", "skb_parser", "skb_verdict")
	attached("cgroup", "skb_ingress", "sock_create", "connect4", "sysctl_read")
	if v.Has(version.NetfilterLink) && y("CONFIG_NETFILTER_BPF_LINK") {
		attached("netfilter", "nf_accept")
	} else {
		loadErr("netfilter", "nf_accept", ClassNotSupported)
	}
	attached("freplace", "freplace_target")
	// The kernel keeps no run count for a replacement function.
	e["freplace/new_decide/load"], e["freplace/new_decide/attach"] = ok, ok
	attached("uprobe", "uprobe_named", "uprobe_unnamed")
	if y("CONFIG_BPF_LSM") {
		attached("lsm", "lsm_file_open", "lsm_bprm_check")
	}
	attached("fentry", "fentry_connect", "fexit_open")
	// A module's function: the module's BTF (CONFIG_DEBUG_INFO_BTF_MODULES,
	// 5.11+) and the module, which kmatrix has where the image package
	// holds the modules (not sid's split linux-modules-* package).
	switch {
	case !y("CONFIG_DEBUG_INFO_BTF_MODULES"):
		loadErr("fentry_module", "fentry_misc", ClassNotSupported)
		loadErr("fentry_module", "fexit_misc", ClassNotSupported)
	case !hasModules:
		e["fentry_module/fentry_misc/load"] = want{outcome.InfraError, ClassKmatrix}
		e["fentry_module/fexit_misc/load"] = want{outcome.InfraError, ClassKmatrix}
	default:
		attached("fentry_module", "fentry_misc", "fexit_misc")
	}
	// A flow dissector runs wherever the kernel dissects a packet of its
	// namespace: kmatrix's trigger makes it hash one on every kernel.
	attached("flow_dissector", "dissect")
	// IPv6 socket address hooks everywhere, unix ones from Linux 6.7:
	// kmatrix's trigger sends both kinds.
	attached("sock_addr", sockAddr6...)
	if v.AtLeast(6, 7) {
		attached("sock_addr", sockAddrUnix...)
	} else {
		// A kernel that does not know the attach type rejects the load:
		// not supported, not a verifier rejection.
		for _, p := range sockAddrUnix {
			loadErr("sock_addr", p, ClassNotSupported)
		}
	}
	// lsm_cgroup: Linux 6.0+, which kmatrix's loader cannot load yet
	// (kmatrix's infra-error, not the program's load-error).
	if v.AtLeast(6, 0) {
		e["lsm_cgroup/cgroup_bind/load"] = want{outcome.InfraError, ClassKmatrix}
	} else {
		loadErr("lsm_cgroup", "cgroup_bind", ClassNotSupported)
	}
	if v.Has(version.Netkit) && y("CONFIG_NETKIT") {
		attached("netkit", "netkit_primary", "netkit_peer")
	} else {
		attachErr("netkit", "netkit_primary", outcome.AttachError, ClassNotSupported)
		attachErr("netkit", "netkit_peer", outcome.AttachError, ClassNotSupported)
	}
	return e
}

// The programs of sock_addr.c, by the traffic that reaches them.
var (
	sockAddr6    = []string{"connect6", "sendmsg6", "recvmsg6", "getpeername6", "getsockname6"}
	sockAddrUnix = []string{"connect_unix", "sendmsg_unix", "recvmsg_unix", "getpeername_unix", "getsockname_unix"}
)

// runObjects boots k as kmatrix run boots it (BPF LSM on, the kernel's
// modules in /kmatrix/modules) and runs kmatrix-guest on the testdata
// objects: all in one -batch command (named "objects", what kmatrix run
// does), or one command per object (the way before batches).
func runObjects(k *kernels.Kernel, cfg map[string]string, bin string, objects []string, batch bool, extra ...string) (*vmtest.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return vmtest.Run(ctx, objectsSpec(k, cfg, bin, objects, batch, extra...))
}

// objectsSpec is the VM runObjects boots.
func objectsSpec(k *kernels.Kernel, cfg map[string]string, bin string, objects []string, batch bool, extra ...string) vmtest.Spec {
	spec := vmtest.Spec{Kernel: k.Vmlinuz, Timeout: 4 * time.Minute, MemoryMB: 512, CPUs: 1,
		Files: []vmtest.File{{Host: bin, Guest: guestTool, Mode: 0o755}}}
	if a := LSMBootArg(cfg); a != "" {
		spec.Append = append(spec.Append, a)
	}
	args := append([]string(nil), fixtureArgs...)
	if len(k.Modules) > 0 {
		args = append(args, "-modules", "/kmatrix/modules")
	}
	for _, m := range k.Modules {
		spec.Files = append(spec.Files, vmtest.File{Host: m, Guest: "/kmatrix/modules/" + filepath.Base(m)})
	}
	args = append(args, extra...)
	var paths []string
	for _, f := range objects {
		gp := "/payload/" + f + ".o"
		paths = append(paths, gp)
		spec.Files = append(spec.Files, vmtest.File{Host: "testdata/" + f + ".o", Guest: gp})
		if !batch {
			spec.Commands = append(spec.Commands, vmtest.Command{Name: f, Path: guestTool,
				Args: append(append([]string(nil), args...), gp), Timeout: 2 * time.Minute})
		}
	}
	if batch {
		spec.Commands = []vmtest.Command{{Name: "objects", Path: guestTool,
			Args: append(append([]string{"-batch"}, args...), paths...), Timeout: 3 * time.Minute}}
	}
	return spec
}

// batchRuns decodes the batch command of runObjects by object name.
func batchRuns(t *testing.T, res *vmtest.Result) map[string]*ObjectRun {
	t.Helper()
	require.Len(t, res.Commands, 1)
	c := res.Commands[0]
	runs, err := DecodeBatch(strings.NewReader(string(c.Stdout)))
	require.NoError(t, err, "%s", c.Stderr)
	byName := map[string]*ObjectRun{}
	for path, r := range runs {
		byName[strings.TrimSuffix(strings.TrimPrefix(path, "/payload/"), ".o")] = r
	}
	return byName
}

// BenchmarkObjects measures one kernel × objects run on the 4 default
// kernels in parallel, as kmatrix run does, for programs.o and the attach
// fixtures (18 objects), run the way kmatrix run runs them (one -batch
// command: one agent process for all, batch-ms) and the way it did before
// (one kmatrix-guest process per object, perprocess-ms), in the same
// iteration (alternating which goes first), so that their ratio holds on a
// loaded machine; the -guest-ms figures are the guests' command time
// summed over the kernels. Target: the batch run under 20 s on 2 cores.
func BenchmarkObjects(b *testing.B) {
	ks := kernelstest.Default(b)
	bin, err := vmtest.BuildBinary(context.Background(), "github.com/kmatrix/kmatrix/matrix/cmd/kmatrix-guest")
	if err != nil {
		b.Fatal(err)
	}
	cfgs := map[string]map[string]string{}
	for _, k := range ks {
		if cfgs[k.Name], err = kernels.ReadConfig(k.Config); err != nil {
			b.Fatal(err)
		}
	}
	all := append([]string{"programs"}, attachFixtures...)
	// run returns the wall time and the guests' command time (summed over
	// the kernels: what batching saves, less exposed to boot noise).
	run := func(batch bool) (time.Duration, time.Duration) {
		start := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var guest time.Duration
		for _, k := range ks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := runObjects(k, cfgs[k.Name], bin, all, batch)
				if err != nil {
					b.Errorf("%s: %v", k.Name, err)
					return
				} else if o := res.Outcome; o != outcome.Pass {
					b.Errorf("%s: VM %s: %s", k.Name, o, res.Err)
				}
				mu.Lock()
				for _, c := range res.Commands {
					guest += c.Duration
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		return time.Since(start), guest
	}
	run(true) // warm up: the page cache, the guest binary
	var per, batch, perGuest, batchGuest time.Duration
	b.ResetTimer()
	i := 0
	for b.Loop() {
		// Alternate which goes first, so that a drift of the machine's
		// load favours neither.
		for _, mode := range [][]bool{{false, true}, {true, false}}[i%2] {
			w, g := run(mode)
			if mode {
				batch, batchGuest = batch+w, batchGuest+g
			} else {
				per, perGuest = per+w, perGuest+g
			}
		}
		i++
	}
	n := float64(b.N)
	b.ReportMetric(float64(len(all)), "objects")
	b.ReportMetric(float64(per.Milliseconds())/n, "perprocess-ms")
	b.ReportMetric(float64(batch.Milliseconds())/n, "batch-ms")
	b.ReportMetric(float64(batch)/float64(per), "ratio")
	b.ReportMetric(float64(perGuest.Milliseconds())/n, "perprocess-guest-ms")
	b.ReportMetric(float64(batchGuest.Milliseconds())/n, "batch-guest-ms")
	b.ReportMetric(float64(batchGuest)/float64(perGuest), "guest-ratio")
}

// TestFixturesInGuests runs every attach fixture on every default kernel,
// in one VM per kernel booted as kmatrix run boots it (BPF LSM on), and
// checks each program's outcome against the kernel's expected table:
// nothing kmatrix could attach is left not-attached, and every program on
// a hook the trigger workload reaches has a run count above 0.
func TestFixturesInGuests(t *testing.T) {
	if testing.Short() {
		t.Skip("boots every catalog kernel in QEMU; -short skips it")
	}
	ks := kernelstest.Default(t)
	bin, err := vmtest.BuildBinary(context.Background(), "github.com/kmatrix/kmatrix/matrix/cmd/kmatrix-guest")
	require.NoError(t, err)
	for _, k := range ks {
		t.Run(k.Name, func(t *testing.T) {
			t.Parallel()
			cfg, err := kernels.ReadConfig(k.Config)
			require.NoError(t, err)
			res, err := runObjects(k, cfg, bin, attachFixtures, true)
			require.NoError(t, err)
			require.Len(t, res.Commands, 1)
			require.Equal(t, outcome.Pass, res.Outcome, "VM: %s\nexcerpt: %s\nkmatrix-guest: %s %s", res.Err, res.Excerpt, res.Commands[0].Err, res.Commands[0].Stderr)
			got := map[string]ProgramResult{}
			var table strings.Builder
			runs := batchRuns(t, res)
			for _, name := range attachFixtures {
				or := runs[name]
				require.NotNil(t, or, "%s: no results: %s", name, res.Commands[0].Stderr)
				require.NotNil(t, or.End, "%s did not end: %s", name, res.Commands[0].Stderr)
				assert.Empty(t, or.End.Died, name)
				assert.Equal(t, 1, or.Attempts, "%s ran in the shared worker, once", name)
				fmt.Fprintf(&table, "%s: took %.0f ms\n", name, or.End.DurationMS)
				for _, r := range or.Results {
					key := name + "/" + r.Program + "/" + string(r.Stage)
					got[key] = r
					fmt.Fprintf(&table, "%-40s %-13s %s\n", key, r.Outcome, r.Message)
				}
			}
			t.Logf("%s (%s):\n%s", k.Name, k.Version, table.String())
			exp := expectedOutcomes(k.Version, cfg, len(k.Modules) > 0)
			// The classic classifiers say how they were attached.
			tcVariant := "clsact/cls_bpf"
			if k.Version.Has(version.TCX) && cfg["CONFIG_NET_XGRESS"] == "y" {
				tcVariant = "tcx"
			}
			for _, p := range []string{"tc_legacy", "classifier_legacy"} {
				assert.Equal(t, tcVariant, got["tc/"+p+"/attach"].Facts.Variant, p)
			}
			for key, w := range exp {
				r, ok := got[key]
				if !assert.True(t, ok, "%s on %s: no result", key, k.Version) {
					continue
				}
				assert.Equal(t, w.o, r.Outcome, "%s on %s: %s\n%s", key, k.Version, r.Message, r.Log)
				if w.class != "" {
					assert.Equal(t, w.class, r.Facts.Class, "%s: %s", key, r.Message)
				}
				if r.Stage == StageRun && w.o == outcome.Pass && !strings.HasPrefix(key, "tcp_cc/kmx_ssthresh") && !strings.HasPrefix(key, "tcp_cc/kmx_undo_cwnd") {
					if assert.NotNil(t, r.Facts.RunCount, key) {
						assert.Greater(t, *r.Facts.RunCount, uint64(0), key)
					}
				}
				if r.Stage == StageLoad && r.Outcome == outcome.Pass && !strings.HasPrefix(r.Type, "StructOps map") {
					if assert.NotNil(t, r.Facts.Verifier, key) {
						assert.Greater(t, r.Facts.Verifier.InsnsProcessed, uint32(0), key)
					}
				}
			}
			for key, r := range got {
				if _, ok := exp[key]; !ok {
					// Everything reported is in the table (no surprise
					// detach failures, no run result where none belongs).
					assert.Fail(t, "unexpected result", "%s on %s: %s %s", key, k.Version, r.Outcome, r.Message)
				}
			}
		})
	}
}

// TestUntriggeredHooks boots the newest default kernel with IPv6 turned off
// (ipv6.disable=1), so that kmatrix's trigger cannot send the IPv6
// traffic the cgroup/*6 hooks alone see: their programs, attached and at
// 0 runs, are kmatrix's infra-error (class not-triggered, naming the
// traffic), never the program's never-ran; the unix hooks, which the
// trigger does reach, still run.
func TestUntriggeredHooks(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a catalog kernel in QEMU; -short skips it")
	}
	ks := kernelstest.Default(t)
	k := ks[len(ks)-1]
	if !k.Version.AtLeast(6, 7) {
		t.Skipf("the newest default kernel, %s, has no unix socket hooks (Linux 6.7+)", k.Version)
	}
	bin, err := vmtest.BuildBinary(context.Background(), "github.com/kmatrix/kmatrix/matrix/cmd/kmatrix-guest")
	require.NoError(t, err)
	cfg, err := kernels.ReadConfig(k.Config)
	require.NoError(t, err)
	spec := objectsSpec(k, cfg, bin, []string{"sock_addr"}, true)
	spec.Append = append(spec.Append, "ipv6.disable=1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := vmtest.Run(ctx, spec)
	require.NoError(t, err)
	require.Equal(t, outcome.Pass, res.Outcome, "VM: %s\n%s", res.Err, res.Excerpt)
	or := batchRuns(t, res)["sock_addr"]
	require.NotNil(t, or, "%s", res.Commands[0].Stderr)
	got := map[string]ProgramResult{}
	for _, r := range or.Results {
		got[r.Program+"/"+string(r.Stage)] = r
		t.Logf("%-24s %-12s %s", r.Program+"/"+string(r.Stage), r.Outcome, r.Message)
	}
	for _, p := range sockAddr6 {
		r := got[p+"/run"]
		assert.Equal(t, outcome.InfraError, r.Outcome, "%s: %s", p, r.Message)
		assert.Equal(t, ClassNotTriggered, r.Facts.Class, p)
		assert.Contains(t, r.Message, "the hook sees only IPv6 over loopback, which kmatrix could not send", p)
		assert.Contains(t, r.Message, "kmatrix's limit, not the program's", p)
	}
	for _, p := range sockAddrUnix {
		r := got[p+"/run"]
		assert.Equal(t, outcome.Pass, r.Outcome, "%s: %s", p, r.Message)
	}
}
