package guest

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The verifier's statistics lines (BPF_LOG_STATS, kernel/bpf/verifier.c
// print_verification_stats):
//
//	processed 12 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 0
//	verification time 23 usec            (Linux 5.12+)
//	stack depth 0+8
var (
	processedRE  = regexp.MustCompile(`processed (\d+) insns \(limit (\d+)\) max_states_per_insn \d+ total_states (\d+) peak_states (\d+)`)
	verifyTimeRE = regexp.MustCompile(`verification time (\d+) usec`)
	stackDepthRE = regexp.MustCompile(`stack depth ([\d+]+)`)
)

// parseVerifierStats reads the statistics lines of a verifier log; ok is
// false when the log has none.
func parseVerifierStats(log string) (VerifierStats, bool) {
	var s VerifierStats
	m := processedRE.FindStringSubmatch(log)
	if m == nil {
		return s, false
	}
	u32 := func(v string) uint32 { n, _ := strconv.ParseUint(v, 10, 32); return uint32(n) }
	s.InsnsProcessed, s.InsnLimit, s.TotalStates, s.PeakStates = u32(m[1]), u32(m[2]), u32(m[3]), u32(m[4])
	if m := verifyTimeRE.FindStringSubmatch(log); m != nil {
		s.VerificationUS, _ = strconv.ParseUint(m[1], 10, 64)
	}
	if m := stackDepthRE.FindStringSubmatch(log); m != nil {
		s.StackDepth = m[1]
	}
	return s, true
}

// verifierStats combines the log's statistics with the sizes the kernel
// reports in bpf_prog_info.
func verifierStats(p *ebpf.Program) *VerifierStats {
	s, ok := parseVerifierStats(p.VerifierLog)
	if info, err := p.Info(); err == nil {
		if n, err := info.JitedSize(); err == nil {
			s.JitedBytes, ok = n, true
		}
		if n, err := info.TranslatedSize(); err == nil {
			s.XlatedBytes, ok = uint32(n), true
		}
	}
	if !ok {
		return nil
	}
	return &s
}

// enableRunStats turns the kernel's BPF run statistics on (run count and
// run time per program, off by default because they cost a little on every
// run): BPF_ENABLE_STATS (Linux 5.8+) keeps them on while the returned
// closer is open; the kernel.bpf_stats_enabled sysctl (5.1+) is the
// fallback, set back to its old value on close.
func enableRunStats() (io.Closer, error) {
	c, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err == nil {
		return c, nil
	}
	const sysctl = "/proc/sys/kernel/bpf_stats_enabled"
	old, rerr := os.ReadFile(sysctl)
	if rerr != nil {
		return nil, fmt.Errorf("BPF_ENABLE_STATS: %v; %s: %w", err, sysctl, rerr)
	}
	if werr := os.WriteFile(sysctl, []byte("1"), 0); werr != nil {
		return nil, fmt.Errorf("BPF_ENABLE_STATS: %v; %s: %w", err, sysctl, werr)
	}
	return sysctlRestore{sysctl, strings.TrimSpace(string(old))}, nil
}

type sysctlRestore struct{ path, old string }

func (s sysctlRestore) Close() error { return os.WriteFile(s.path, []byte(s.old), 0) }
