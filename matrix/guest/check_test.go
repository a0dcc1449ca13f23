package guest

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// The check commands are this test binary re-executed in helper mode, so the
// tests need nothing but themselves (like the guest, which has no shell).
func TestMain(m *testing.M) {
	switch os.Getenv("KMATRIX_GUEST_TEST_HELPER") {
	case "exit3":
		os.Stdout.WriteString("counter was 0, want 1\n")
		os.Exit(3)
	case "hang":
		time.Sleep(time.Hour)
	case "chatty":
		os.Stdout.WriteString(strings.Repeat("x", 2*maxCheckOutput) + "\nthe end\n")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func helper(t *testing.T, mode string) []string {
	t.Helper()
	t.Setenv("KMATRIX_GUEST_TEST_HELPER", mode)
	bin, err := os.Executable()
	require.NoError(t, err)
	return []string{bin}
}

func TestRunCheck(t *testing.T) {
	t.Run("fail", func(t *testing.T) {
		r := runCheck(helper(t, "exit3"), time.Minute)
		assert.Equal(t, outcome.Fail, r.Outcome)
		assert.Equal(t, StageCheck, r.Stage)
		require.NotNil(t, r.Facts.ExitCode)
		assert.Equal(t, 3, *r.Facts.ExitCode)
		assert.Contains(t, r.Message, "exit status 3")
		assert.Equal(t, "counter was 0, want 1\n", r.Log)
	})
	t.Run("timeout", func(t *testing.T) {
		r := runCheck(helper(t, "hang"), 200*time.Millisecond)
		assert.Equal(t, outcome.Timeout, r.Outcome)
		assert.Contains(t, r.Message, "did not finish within 200ms and was killed")
	})
	t.Run("output keeps its end", func(t *testing.T) {
		r := runCheck(helper(t, "chatty"), time.Minute)
		assert.Equal(t, outcome.Pass, r.Outcome, r.Message)
		assert.True(t, strings.HasSuffix(r.Log, "the end\n"))
		assert.True(t, strings.HasPrefix(r.Log, "[output truncated to its last 65536 bytes]\n"))
		assert.Less(t, len(r.Log), maxCheckOutput+100)
	})
	t.Run("missing command", func(t *testing.T) {
		r := runCheck([]string{"/no/such/check"}, time.Minute)
		assert.Equal(t, outcome.InfraError, r.Outcome)
		assert.Contains(t, r.Message, `check command "/no/such/check" could not be run`)
		assert.Contains(t, r.Message, "the guest has no shell")
		assert.Equal(t, "ENOENT", r.Facts.Errno)
	})
}
