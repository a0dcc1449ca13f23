package matrix

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// TestRunKernelFindingsArm64 is TestRunKernelFindings on Debian's arm64
// kernels (bookworm 6.1, sid 7.2; the shipped arm64 catalog): the WARN and
// oops fixtures are cross-built for each (kmod/build, aarch64-linux-gnu-gcc
// of the kernel's major), loaded in a real arm64 guest, and the kernel's
// arm64 reports ("pc : ", "Call trace:", "Unable to handle kernel NULL
// pointer dereference", "Internal error: Oops: <ESR>") are classified from
// its console: a splat with the module loaded, an oops in the load cell.
func TestRunKernelFindingsArm64(t *testing.T) {
	if os.Getenv("KMATRIX_ARM64") == "" {
		t.Skip("boots the arm64 kernels under TCG and cross-builds modules for them: set KMATRIX_ARM64=1 (make arm64) to run it")
	}
	kernels := []string{"debian-bookworm-arm64", "debian-sid-arm64"}
	for _, tc := range []struct {
		fixture  string
		want     outcome.Outcome
		excerpts []string
		load     outcome.Outcome
	}{
		{"warnonload", outcome.Splat, []string{"kmatrix fixture: a deliberate WARN at load", "pc : warnonload_init+", "Call trace:"}, outcome.Pass},
		{"oopsonload", outcome.Oops, []string{"Unable to handle kernel NULL pointer dereference", "Internal error: Oops: ", "pc : oopsonload_init+"}, outcome.Oops},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			payload := "kmod:" + tc.fixture
			rep, err := Run(context.Background(), Options{Catalog: "arm64", KmodDirs: []string{"../kmod/testdata/" + tc.fixture}, Timeout: 8 * time.Minute})
			require.NoError(t, err, "a finding is no infra error")
			for _, k := range kernels {
				build := cellsOf(rep, k, payload, "build")
				require.Len(t, build, 1, k)
				assert.Equal(t, outcome.Pass, build[0].Outcome, "%s: %s\n%s", k, build[0].Evidence.Message, build[0].Evidence.Log)

				boot := cellsOf(rep, k, PayloadKernel, "boot")
				require.Len(t, boot, 1, k)
				assert.Equal(t, tc.want, boot[0].Outcome, "%s: %s\n%s", k, boot[0].Evidence.Message, boot[0].Evidence.Log)
				assert.Contains(t, boot[0].Evidence.Message, "during command "+payload, k)
				for _, ex := range tc.excerpts {
					assert.Contains(t, boot[0].Evidence.Log, ex, k)
				}
				load := cellsOf(rep, k, payload, "load")
				require.Len(t, load, 1, k)
				assert.Equal(t, tc.load, load[0].Outcome, "%s: %s", k, load[0].Evidence.Message)
				if tc.load == outcome.Oops {
					assert.Contains(t, load[0].Evidence.Log, tc.excerpts[0], "%s: the module's cell carries the kernel's report", k)
				}
				t.Logf("kmatrix-evidence %s %s boot=%s load=%s", k, tc.fixture, boot[0].Outcome, load[0].Outcome)
			}
		})
	}
}
