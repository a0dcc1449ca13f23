package guest

import (
	"context"
	"fmt"
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
	"sockmap", "cgroup", "netfilter", "freplace", "uprobe", "lsm", "fentry", "netkit"}

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
func expectedOutcomes(v kernels.Version, cfg map[string]string) map[string]want {
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
	if v.Has(version.TCX) && y("CONFIG_NET_XGRESS") {
		attached("tc", "tc_legacy", "classifier_legacy", "tc_ingress_tcx", "tcx_egress_only")
	} else {
		// No clsact/cls_bpf modules in the guest: kmatrix's limit.
		attachErr("tc", "tc_legacy", outcome.InfraError, ClassKmatrix)
		attachErr("tc", "classifier_legacy", outcome.InfraError, ClassKmatrix)
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
	if v.Has(version.Netkit) && y("CONFIG_NETKIT") {
		attached("netkit", "netkit_primary", "netkit_peer")
	} else {
		attachErr("netkit", "netkit_primary", outcome.AttachError, ClassNotSupported)
		attachErr("netkit", "netkit_peer", outcome.AttachError, ClassNotSupported)
	}
	return e
}

// runObjects boots k as kmatrix run boots it (BPF LSM on) and runs
// kmatrix-guest on each testdata object, one command per object.
func runObjects(k *kernels.Kernel, cfg map[string]string, bin string, objects []string) (*vmtest.Result, error) {
	spec := vmtest.Spec{Kernel: k.Vmlinuz, Timeout: 4 * time.Minute, MemoryMB: 512, CPUs: 1,
		Files: []vmtest.File{{Host: bin, Guest: guestTool, Mode: 0o755}}}
	if a := LSMBootArg(cfg); a != "" {
		spec.Append = append(spec.Append, a)
	}
	for _, f := range objects {
		gp := "/payload/" + f + ".o"
		spec.Files = append(spec.Files, vmtest.File{Host: "testdata/" + f + ".o", Guest: gp})
		spec.Commands = append(spec.Commands, vmtest.Command{Name: f, Path: guestTool,
			Args: append(append([]string(nil), fixtureArgs...), gp), Timeout: 2 * time.Minute})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return vmtest.Run(ctx, spec)
}

// BenchmarkObjects measures one kernel × objects run on the 4 default
// kernels in parallel, as kmatrix run does, for today's 2 committed
// objects (programs.o, noprograms.o: baseline-ms) and for the 17 of
// programs.o plus the attach fixtures (fixtures-ms), in the same
// iteration, so that their ratio holds on a loaded machine. Target: the
// 17-object run under 20 s on 2 cores.
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
	run := func(objects []string) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for _, k := range ks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// noprograms.o makes kmatrix-guest exit 1 (an unusable
				// object), a failed command: only the VM must be sound.
				res, err := runObjects(k, cfgs[k.Name], bin, objects)
				if err != nil {
					b.Errorf("%s: %v", k.Name, err)
				} else if o := res.Outcome; o != outcome.Pass && o != outcome.Fail {
					b.Errorf("%s: VM %s: %s", k.Name, o, res.Err)
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	run(all) // warm up: the page cache, the guest binary
	var base, fix time.Duration
	b.ResetTimer()
	for b.Loop() {
		base += run([]string{"programs", "noprograms"})
		fix += run(all)
	}
	n := float64(b.N)
	b.ReportMetric(float64(base.Milliseconds())/n, "baseline-ms")
	b.ReportMetric(float64(fix.Milliseconds())/n, "fixtures-ms")
	b.ReportMetric(float64(fix)/float64(base), "ratio")
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
			res, err := runObjects(k, cfg, bin, attachFixtures)
			require.NoError(t, err)
			require.Equal(t, outcome.Pass, res.Outcome, "VM: %s\nexcerpt: %s", res.Err, res.Excerpt)
			got := map[string]ProgramResult{}
			var table strings.Builder
			for _, c := range res.Commands {
				rs, err := Decode(strings.NewReader(string(c.Stdout)))
				require.NoError(t, err, "%s: %s", c.Name, c.Stderr)
				require.NotEmpty(t, rs, "%s reported nothing: %s %s", c.Name, c.Err, c.Stderr)
				fmt.Fprintf(&table, "%s: kmatrix-guest took %v\n", c.Name, c.Duration)
				for _, r := range rs {
					key := c.Name + "/" + r.Program + "/" + string(r.Stage)
					got[key] = r
					fmt.Fprintf(&table, "%-40s %-13s %s\n", key, r.Outcome, r.Message)
				}
			}
			t.Logf("%s (%s):\n%s", k.Name, k.Version, table.String())
			exp := expectedOutcomes(k.Version, cfg)
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
