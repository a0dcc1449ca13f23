//go:build linux

package bpf

import (
	"bytes"
	_ "embed"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"

	"github.com/kmatrix/kmatrix/kernels/version"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tcxKprobe is testdata/tcx_kprobe.c compiled, the object the matrix's
// `kmatrix run --bpf` demonstration loads.
//
//go:embed testdata/tcx_kprobe_x86_bpfel.o
var tcxKprobe []byte

// TestTCXObject checks that the test object does what the matrix relies on:
// both programs load everywhere; the kprobe attaches and counts getpid
// calls everywhere; the tcx program attaches on 6.6+ and fails to attach
// with ebpf.ErrNotSupported before.
func TestTCXObject(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skipf("testdata/tcx_kprobe.c is built for x86-64 (its kprobe reads x86 registers); this is %s", runtime.GOARCH)
	}
	requireBPF(t)
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(tcxKprobe))
	require.NoError(t, err)
	coll, err := LoadCollection("testdata/tcx_kprobe_x86_bpfel.o", spec)
	require.NoError(t, err)
	defer coll.Close()
	for _, name := range []string{"count_ingress", "count_getpid"} {
		st, err := VerifierStats(name, coll.Programs[name])
		require.NoError(t, err)
		evidence(t, "verified_insns."+name, st.VerifiedInsns)
	}

	t.Run("tcx", func(t *testing.T) {
		lo, err := net.InterfaceByName("lo")
		require.NoError(t, err)
		l, err := link.AttachTCX(link.TCXOptions{Interface: lo.Index, Program: coll.Programs["count_ingress"], Attach: ebpf.AttachTCXIngress})
		kv := runningKernel(t)
		if kv.Has(version.TCX) {
			require.NoError(t, err, "kernel %s has tcx (6.6+)", kv)
			l.Close()
			evidence(t, "tcx_attach", "ok")
			return
		}
		require.ErrorIs(t, err, ebpf.ErrNotSupported, "kernel %s has no tcx (6.6+)", kv)
		evidence(t, "tcx_attach", "not-supported")
		t.Logf("expected on %s: %v", kv, err)
	})

	t.Run("kprobe", func(t *testing.T) {
		if _, err := os.Stat("/sys/bus/event_source/devices/kprobe"); err != nil {
			t.Skip("this kernel cannot attach kprobes: it has no kprobe PMU (/sys/bus/event_source/devices/kprobe; CONFIG_KPROBE_EVENTS, every Debian kernel has it)")
		}
		kp, err := link.Kprobe("__x64_sys_getpid", coll.Programs["count_getpid"], nil)
		require.NoError(t, err, "the kprobe must attach on every kernel")
		defer kp.Close()
		const calls = 3
		for range calls {
			syscall.Getpid()
		}
		var n uint64
		require.NoError(t, coll.Variables["getpid_calls"].Get(&n))
		assert.GreaterOrEqual(t, n, uint64(calls), "getpid calls the kprobe counted")
	})
}
