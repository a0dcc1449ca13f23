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
