package report

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDiffFlagsVerifierGrowth: a program whose processed instructions grew
// by more than 20 %, and one within 10 % of the limit, are flagged; growth
// below the threshold is not, and neither is a regression.
func TestDiffFlagsVerifierGrowth(t *testing.T) {
	base, cur := sample(t), sample(t)
	set := func(r *Report, id string, facts map[string]string) {
		c := cell(t, r, id)
		c.Evidence.Facts = facts
	}
	set(base, "debian-bookworm/bpf/load", map[string]string{"insns_processed": "1000"})
	set(cur, "debian-bookworm/bpf/load", map[string]string{"insns_processed": "1201"})
	set(base, "debian-trixie/bpf/load", map[string]string{"insns_processed": "1000"})
	set(cur, "debian-trixie/bpf/load", map[string]string{"insns_processed": "1200"}) // exactly 20 %: not flagged
	set(cur, "debian-sid/bpf/load", map[string]string{"insns_processed": "950000", "insn_limit": "1000000"})

	d := Diff(base, cur)
	require.Len(t, d.Verifier, 2, "%+v", d.Verifier)
	assert.Equal(t, "debian-bookworm", d.Verifier[0].Kernel)
	assert.Equal(t, uint64(1000), d.Verifier[0].Was)
	assert.Contains(t, d.Verifier[0].Why, "grew 1000 → 1201 (+20 %")
	assert.Equal(t, "debian-sid", d.Verifier[1].Kernel)
	assert.Contains(t, d.Verifier[1].Why, "within 10 % of its limit of 1000000")
	assert.False(t, d.Regressed(), "a flag is not a regression: the program still loads")
	assert.Contains(t, d.Headline(), "2 verifier flags")

	var text strings.Builder
	require.NoError(t, d.WriteText(&text))
	assert.Contains(t, text.String(), "verifier: debian-bookworm/bpf/load: processed instructions grew")
	assert.Contains(t, d.Markdown(), "### 🧮 Verifier (2")
}
