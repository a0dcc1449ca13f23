package guest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kmatrix/kmatrix/kernels/version"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
	"github.com/kmatrix/kmatrix/vmtest"
)

// TestLoadObjectInGuests runs kmatrix-guest on the fixture object in every
// kernel of the default catalog and checks each program's outcome against
// what that kernel version can do; the tcx programs are the headline: they
// need Linux 6.6.
func TestLoadObjectInGuests(t *testing.T) {
	if testing.Short() {
		t.Skip("boots every catalog kernel in QEMU; -short skips it")
	}
	ks := kernelstest.Default(t)
	// Static (CGO_ENABLED=0), as the guest has no libc.
	bin, err := vmtest.BuildBinary(context.Background(), "github.com/kmatrix/kmatrix/matrix/cmd/kmatrix-guest")
	require.NoError(t, err)
	for _, k := range ks {
		t.Run(k.Name, func(t *testing.T) {
			t.Parallel() // vmtest.Run bounds how many VMs run at once
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			res, err := vmtest.Run(ctx, vmtest.Spec{
				Kernel: k.Vmlinuz,
				Files:  []vmtest.File{{Host: fixture, Guest: "/payload/programs.o"}},
				Commands: []vmtest.Command{{
					Name: "kmatrix-guest", Host: bin, Path: "/bin/kmatrix-guest",
					Args:    []string{"/payload/programs.o", "--", "/bin/kmatrix-guest", "-h"},
					Timeout: 2 * time.Minute,
				}},
				Timeout: 4 * time.Minute,
			})
			require.NoError(t, err)
			require.Len(t, res.Commands, 1)
			c := res.Commands[0]
			require.Equal(t, outcome.Pass, res.Outcome, "VM: %s %s\nstderr: %s\nexcerpt: %s", res.Err, c.Err, c.Stderr, res.Excerpt)
			rs, err := Decode(strings.NewReader(string(c.Stdout)))
			require.NoError(t, err)
			t.Logf("kmatrix-guest took %v in the guest (%s), the VM %v", c.Duration, res.Accel, res.Timings.Total)
			m := byKey(t, rs)
			for _, key := range []string{"tcx_ingress/attach", "uses_bpf_loop/load", "core_missing_field/load"} {
				t.Logf("%s on %s: %s: %s", key, k.Version, m[key].Outcome, m[key].Message)
			}
			checkGuestResults(t, k, m)
		})
	}
}

func checkGuestResults(t *testing.T, k *kernels.Kernel, m map[string]ProgramResult) {
	want := func(key string, o outcome.Outcome) ProgramResult {
		t.Helper()
		r, ok := m[key]
		if assert.True(t, ok, "no result for %s", key) {
			assert.Equal(t, o, r.Outcome, "%s: %s\n%s", key, r.Message, r.Log)
		}
		return r
	}

	// Everything that attaches on every kernel of the catalog (5.10+).
	for _, name := range []string{"socket_pass", "kprobe_pass", "kretprobe_pass", "ksyscall_pass", "tracepoint_pass",
		"raw_tracepoint_pass", "tp_btf_pass", "fentry_pass", "fexit_pass", "xdp_pass", "cgroup_skb_egress", "cgroup_sock_create", "perf_event_prog"} {
		load := want(name+"/load", outcome.Pass)
		want(name+"/attach", outcome.Pass)
		// The trigger workload reaches every one of these hooks.
		if run := want(name+"/run", outcome.Pass); assert.NotNil(t, run.Facts.RunCount, name) {
			assert.Greater(t, *run.Facts.RunCount, uint64(0), name)
		}
		if assert.NotNil(t, load.Facts.Verifier, name) {
			assert.Greater(t, load.Facts.Verifier.InsnsProcessed, uint32(0), name)
		}
		if assert.NotNil(t, load.Facts.VerifiedInsns, name) {
			// bpf_prog_info.verified_insns arrived in Linux 5.16.
			assert.Equal(t, k.Version.Has(version.VerifiedInsns), load.Facts.VerifiedInsns.Known, "%s on %s: verified_insns %s", name, k.Version, load.Facts.VerifiedInsns)
		}
	}

	for _, dir := range []string{"ingress", "egress"} {
		want("tcx_"+dir+"/load", outcome.Pass)
		if k.Version.Has(version.TCX) {
			want("tcx_"+dir+"/attach", outcome.Pass)
			continue
		}
		r := want("tcx_"+dir+"/attach", outcome.AttachError)
		assert.Equal(t, ClassNotSupported, r.Facts.Class)
		assert.Equal(t, "6.6", r.Facts.RequiresKernel)
		assert.Equal(t, fmt.Sprintf("tcx %s on lo of its own network namespace: requires Linux 6.6: tcx not supported", dir), r.Message)
	}

	// bpf_loop arrived in Linux 5.17.
	if k.Version.Has(version.BPFLoop) {
		want("uses_bpf_loop/attach", outcome.Pass)
	} else {
		r := want("uses_bpf_loop/load", outcome.LoadError)
		assert.Equal(t, ClassNotSupported, r.Facts.Class)
		assert.True(t, strings.HasPrefix(r.Message, "helper bpf_loop does not exist in this kernel: "), r.Message)
	}
	r := want("helper_wrong_type/load", outcome.LoadError)
	assert.Equal(t, ClassNotSupported, r.Facts.Class)
	assert.True(t, strings.HasPrefix(r.Message, "helper bpf_probe_write_user is not available to SocketFilter programs in this kernel: "), r.Message)

	r = want("verifier_reject/load", outcome.LoadError)
	assert.Equal(t, ClassVerifier, r.Facts.Class)
	assert.Equal(t, "EACCES", r.Facts.Errno)
	assert.Contains(t, r.Log, "map_value_or_null")

	r = want("core_missing_field/load", outcome.LoadError)
	assert.Equal(t, ClassCORE, r.Facts.Class)
	assert.Equal(t, "byte_off of task_struct.kmatrix_no_such_field", r.Facts.CORERelocation)

	r = want("uses_broken_map/load", outcome.LoadError)
	assert.Equal(t, ClassMap, r.Facts.Class)

	r = want("kprobe_missing/attach", outcome.AttachError)
	assert.Equal(t, ClassAttachTarget, r.Facts.Class, r.Message)
	assert.Equal(t, "ENOENT", r.Facts.Errno, r.Message)

	// SEC("tc") goes through tcx where the kernel has it; before 6.6 the
	// clsact/cls_bpf way needs modules the guest lacks: kmatrix's limit.
	if k.Version.Has(version.TCX) {
		r = want("tc_classifier/attach", outcome.Pass)
		assert.Equal(t, "tcx", r.Facts.Variant)
		want("tc_classifier/run", outcome.Pass)
	} else {
		r = want("tc_classifier/attach", outcome.InfraError)
		assert.Equal(t, ClassKmatrix, r.Facts.Class)
	}
	assert.Equal(t, "xdp generic", m["xdp_pass/attach"].Facts.Variant)
	want("unknown_section/load", outcome.NotAttached)

	// The check ran while everything was attached; -h makes the flag
	// package exit 0 after printing the usage.
	r = want("/check", outcome.Pass)
	assert.Contains(t, r.Log, "usage: kmatrix-guest")

	for key, r := range m {
		assert.NotEqual(t, StageDetach, r.Stage, "%s: %s", key, r.Message)
	}
}
