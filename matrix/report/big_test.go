package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// big builds a passing report of k kernels × n checks (half bpf, half
// kmod), for size limits and benchmarks.
func big(k, n int) *Report {
	r := &Report{GeneratedAt: time.Date(2026, 5, 4, 9, 30, 0, 0, time.UTC), Host: Host{Accel: "tcg"}}
	for i := range k {
		name := fmt.Sprintf("kernel-%02d", i)
		r.Kernels = append(r.Kernels, Kernel{Name: name, Release: fmt.Sprintf("6.%d.0-1-cloud-amd64", i), Version: fmt.Sprintf("6.%d.7", i), Compiler: "gcc-12", BTF: true})
		for j := range n {
			p := "bpf"
			if j%2 == 1 {
				p = "kmod"
			}
			r.Cells = append(r.Cells, Cell{Kernel: name, Payload: p, Check: fmt.Sprintf("TestCheck%02d", j), Outcome: outcome.Pass, Stage: "behave", DurationMS: int64(10 + j),
				Evidence: Evidence{Facts: map[string]string{"verified_insns": "412"}}})
		}
	}
	r.Finalize()
	return r
}

// withLogs makes every cell fail with a long log.
func withLogs(r *Report, lines int) *Report {
	log := strings.Repeat("[    1.234567] some console line that goes on for a while, like oops traces do\n", lines)
	for i := range r.Cells {
		r.Cells[i].Outcome = outcome.Oops
		r.Cells[i].Evidence.Message = "BUG: unable to handle page fault for address: ffffffffc0201000"
		r.Cells[i].Evidence.Log = log
	}
	r.Finalize()
	return r
}

// wide builds the report of a run whose checks far outnumber its kernels:
// 30 checks (the built-in payloads, a user object, a user module, a Go
// test package and the boot check) on the 4 default kernels, with the
// failures, skips and not-run cells such a run has, and check names as
// long as real ones ("count_ingress/attach", Go subtests).
func wide() *Report {
	r := &Report{GeneratedAt: time.Date(2026, 12, 1, 21, 5, 0, 0, time.UTC), Host: Host{Accel: "tcg", QEMU: "7.2.15", Go: "go1.26.8", CPUs: 2, Kmatrix: "v0.3.0 (abc123def456)"}}
	for _, k := range []struct{ name, rel, ver, cc string }{
		{"debian-bullseye", "5.10.0-46-cloud-amd64", "5.10.262", "gcc-10"},
		{"debian-bookworm", "6.1.0-56-cloud-amd64", "6.1.192", "gcc-12"},
		{"debian-trixie", "6.12.118+deb13-cloud-amd64", "6.12.118", "gcc-14"},
		{"debian-sid", "7.2.13+deb14-cloud-amd64", "7.2.13", "gcc-16"},
	} {
		r.Kernels = append(r.Kernels, Kernel{Name: k.name, Release: k.rel, Version: k.ver, PackageVersion: k.ver + "-1", Compiler: k.cc, BTF: true})
	}
	checks := []struct{ payload, check, stage string }{
		{"bpf", "Load", "load"}, {"bpf", "Attach", "attach"}, {"bpf", "ExecEvents", "behave"}, {"bpf", "TaskState", "behave"},
		{"bpf", "Variant", "behave"}, {"bpf", "FallbackVariant", "behave"}, {"bpf", "Detach", "unload"},
		{"kernel", "boot", "load"},
		{"kmod", "Build", "build"}, {"kmod", "Load", "load"}, {"kmod", "ExecRecords", "behave"}, {"kmod", "KernelLog", "behave"},
		{"kmod", "Taint", "behave"}, {"kmod", "TaskState", "behave"}, {"kmod", "WritePath", "behave"}, {"kmod", "Unload", "unload"},
		{"bpf:tcx_kprobe_x86_bpfel", "count_getpid/load", "load"}, {"bpf:tcx_kprobe_x86_bpfel", "count_ingress/load", "load"},
		{"bpf:tcx_kprobe_x86_bpfel", "count_getpid/attach", "attach"}, {"bpf:tcx_kprobe_x86_bpfel", "count_ingress/attach", "attach"},
		{"bpf:tcx_kprobe_x86_bpfel", "count_getpid/detach", "unload"}, {"bpf:tcx_kprobe_x86_bpfel", "count_ingress/detach", "unload"},
		{"kmod:versionerror", "Build", "build"}, {"kmod:versionerror", "Load", "load"}, {"kmod:versionerror", "Unload", "unload"},
		{"gotest:./probe", "TestLoad", "behave"}, {"gotest:./probe", "TestAttach/kprobe", "behave"},
		{"gotest:./probe", "TestAttach/tcx_ingress", "behave"}, {"gotest:./probe", "TestCounts/exec_events_are_counted_per_pid", "behave"},
		{"gotest:./probe", "TestRingBuffer", "behave"},
	}
	for ki, k := range r.Kernels {
		old := ki < 2 // 5.10 and 6.1: no tcx
		for _, ch := range checks {
			c := Cell{Kernel: k.Name, Payload: ch.payload, Check: ch.check, Outcome: outcome.Pass, Stage: outcome.Stage(ch.stage), DurationMS: int64(20 + 7*len(ch.check))}
			switch id := ch.payload + "/" + ch.check; {
			case old && id == "bpf:tcx_kprobe_x86_bpfel/count_ingress/attach":
				c.Outcome, c.Evidence.Message = outcome.AttachError, "tcx ingress on lo: requires Linux 6.6: tcx not supported"
			case old && id == "bpf:tcx_kprobe_x86_bpfel/count_ingress/detach":
				continue // not run: it never attached
			case old && id == "gotest:./probe/TestAttach/tcx_ingress":
				c.Outcome, c.Evidence.Message = outcome.Skip, "probe_test.go:41: tcx needs Linux 6.6; this kernel is "+k.Version
			case ki == 0 && id == "kmod:versionerror/Build":
				c.Outcome, c.Evidence.Message = outcome.BuildError, "versionerror.c:15:10: expected expression before ';' token"
				c.Evidence.Log = "versionerror.c: In function 'versionerror_init':\nversionerror.c:15:10: error: expected expression before ';' token"
			case ki == 0 && id == "kmod:versionerror/Load":
				c.Outcome, c.Stage, c.Evidence.Message = outcome.BuildError, "build", "not run: the module did not build: versionerror.c:15:10: expected expression before ';' token"
			case ki == 0 && id == "kmod:versionerror/Unload":
				continue
			case ki == 0 && id == "gotest:./probe/TestRingBuffer":
				c.Outcome, c.Stage, c.Evidence.Message = outcome.LoadError, "load", "probe_test.go:88: load ring buffer map: map create: invalid argument (BPF_MAP_TYPE_RINGBUF needs Linux 5.8)"
			case ki == 2 && id == "bpf/ExecEvents":
				c.Outcome, c.Evidence.Message = outcome.Fail, "exec_test.go:48: expected 3 exec events for /bin/true, got 2"
			}
			r.Cells = append(r.Cells, c)
		}
	}
	r.Finalize()
	return r
}
