package report

import (
	"fmt"
	"strconv"
)

// VerifierLimit is the verifier's default budget of processed instructions
// (BPF_COMPLEXITY_LIMIT_INSNS, Linux 5.2+), used when a cell does not say.
const VerifierLimit = 1_000_000

// Thresholds of a verifier flag: processed instructions grew by more than
// VerifierGrowth against the baseline, or are within VerifierHeadroom of
// the limit. A program that loads today stops loading on the next kernel
// this way; libbpf's CI diffs the same figures for the same reason.
const (
	VerifierGrowth   = 0.20
	VerifierHeadroom = 0.10
)

// VerifierFlag is a program whose verifier figures deserve a look: it still
// loads, so it is no regression, but it is on its way to not loading.
type VerifierFlag struct {
	Kernel, Payload, Check string
	// Was is the baseline's processed instructions (0: no baseline);
	// Now the current's, Limit the limit the verifier named.
	Was, Now, Limit uint64
	Why             string
}

// factUint reads a numeric fact; 0 when absent or not a number.
func factUint(c *Cell, name string) uint64 {
	n, _ := strconv.ParseUint(c.Evidence.Facts[name], 10, 64)
	return n
}

// verifierFlags compares the insns_processed facts of the current cells
// with the baseline's.
func verifierFlags(old map[cellKey]*Cell, current []Cell) []VerifierFlag {
	var out []VerifierFlag
	for i := range current {
		c := &current[i]
		now := factUint(c, "insns_processed")
		if now == 0 {
			continue
		}
		limit := factUint(c, "insn_limit")
		if limit == 0 {
			limit = VerifierLimit
		}
		f := VerifierFlag{Kernel: c.Kernel, Payload: c.Payload, Check: c.Check, Now: now, Limit: limit}
		if b, ok := old[c.key()]; ok {
			f.Was = factUint(b, "insns_processed")
		}
		switch {
		case float64(now) >= float64(limit)*(1-VerifierHeadroom):
			f.Why = fmt.Sprintf("the verifier processed %d instructions, within %.0f %% of its limit of %d", now, VerifierHeadroom*100, limit)
		case f.Was > 0 && float64(now) > float64(f.Was)*(1+VerifierGrowth):
			f.Why = fmt.Sprintf("processed instructions grew %d → %d (+%.0f %%, more than %.0f %%)", f.Was, now, (float64(now)/float64(f.Was)-1)*100, VerifierGrowth*100)
		default:
			continue
		}
		out = append(out, f)
	}
	return out
}
