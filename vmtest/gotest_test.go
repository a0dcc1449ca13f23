package vmtest

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// A -test.v run with subtests, parallel tests (=== PAUSE/CONT/NAME) and
// every result kind, as Go 1.26 prints it.
const goTestOutput = `=== RUN   TestLoad
=== RUN   TestLoad/kprobe
    load_test.go:10: loaded kprobe
=== RUN   TestLoad/fentry
    load_test.go:12: fentry needs 5.5
--- PASS: TestLoad (0.25s)
    --- PASS: TestLoad/kprobe (0.10s)
    --- SKIP: TestLoad/fentry (0.00s)
=== RUN   TestPar
=== PAUSE TestPar
=== RUN   TestBroken
    broken_test.go:5: want 2, got 3
--- FAIL: TestBroken (0.00s)
=== CONT  TestPar
    par_test.go:7: in parallel
=== NAME  TestPar
    par_test.go:8: still TestPar
--- PASS: TestPar (1.50s)
FAIL
`

// frame marks the testing package's own lines as -test.v=test2json does.
func frame(out string) string {
	lines := strings.SplitAfter(out, "\n")
	for i, l := range lines {
		t := strings.TrimLeft(l, " ")
		if strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- ") || t == "PASS\n" || t == "FAIL\n" {
			lines[i] = "\x16" + l
		}
	}
	return strings.Join(lines, "")
}

func byName(rs []TestResult) map[string]TestResult {
	m := map[string]TestResult{}
	for _, r := range rs {
		m[r.Name] = r
	}
	return m
}

func TestParseGoTest(t *testing.T) {
	rs := ParseGoTest([]byte(frame(goTestOutput)), nil)
	var names []string
	for _, r := range rs {
		names = append(names, r.Name)
	}
	assert.Equal(t, []string{"TestLoad", "TestLoad/kprobe", "TestLoad/fentry", "TestPar", "TestBroken"}, names, "in the order they started")
	m := byName(rs)
	assert.Equal(t, TestResult{Name: "TestLoad", Outcome: outcome.Pass, Elapsed: 250 * time.Millisecond, Ended: true}, m["TestLoad"])
	assert.Equal(t, TestResult{Name: "TestLoad/kprobe", Outcome: outcome.Pass, Output: "    load_test.go:10: loaded kprobe\n", Elapsed: 100 * time.Millisecond, Ended: true}, m["TestLoad/kprobe"])
	assert.Equal(t, outcome.Skip, m["TestLoad/fentry"].Outcome)
	assert.Equal(t, "    load_test.go:12: fentry needs 5.5\n", m["TestLoad/fentry"].Output)
	assert.Equal(t, TestResult{Name: "TestBroken", Outcome: outcome.Fail, Output: "    broken_test.go:5: want 2, got 3\n", Ended: true}, m["TestBroken"])
	assert.Equal(t, "    par_test.go:7: in parallel\n    par_test.go:8: still TestPar\n", m["TestPar"].Output)
	assert.Equal(t, 1500*time.Millisecond, m["TestPar"].Elapsed)
}

func TestParseGoTestCrash(t *testing.T) {
	out := `=== RUN   TestA
--- PASS: TestA (0.00s)
=== RUN   TestCrash
=== RUN   TestCrash/sub
    crash_test.go:9: about to crash
--- FAIL: TestCrash (0.00s)
    --- FAIL: TestCrash/sub (0.00s)
`
	stderr := `panic: assignment to entry in nil map [recovered, repanicked]

goroutine 22 [running]:
testing.tRunner.func1.2({0x59c220, 0x74d0a0})
`
	m := byName(ParseGoTest([]byte(frame(out)), []byte(stderr)))
	assert.Equal(t, outcome.Pass, m["TestA"].Outcome)
	assert.Equal(t, outcome.Fail, m["TestCrash/sub"].Outcome)
	// The testing package prints the FAIL lines of the panicking test and
	// its parents, innermost last, then the panic.
	assert.Contains(t, m["TestCrash/sub"].Output, "panic: assignment to entry in nil map")
	assert.Contains(t, m["TestCrash/sub"].Output, "goroutine 22 [running]:")
	assert.NotContains(t, m["TestA"].Output, "panic")
}

func TestParseGoTestTruncated(t *testing.T) {
	// The kernel died under the test binary: no result lines, no panic text.
	out := "=== RUN   TestA\n--- PASS: TestA (0.00s)\n=== RUN   TestB\n=== RUN   TestB/x\n    b_test.go:3: loading\n"
	m := byName(ParseGoTest([]byte(frame(out)), nil))
	assert.Equal(t, outcome.Pass, m["TestA"].Outcome)
	for _, n := range []string{"TestB", "TestB/x"} {
		assert.Equal(t, outcome.Fail, m[n].Outcome, n)
		assert.Contains(t, m[n].Output, "the test binary ended without a result for this test", n)
	}
	assert.True(t, strings.HasPrefix(m["TestB/x"].Output, "    b_test.go:3: loading\n"))
	assert.Empty(t, ParseGoTest(nil, nil))
	assert.Empty(t, ParseGoTest([]byte(frame("PASS\n")), nil))
}

// TestParseGoTestOwnOutput: what a test prints is its output, even when it
// looks like the testing package's lines; only the marked lines are events.
func TestParseGoTestOwnOutput(t *testing.T) {
	out := frame("=== RUN   TestLoadBalancer\n--- PASS: TestLoadBalancer (0.01s)\n") // framed
	out = strings.Replace(out, "\x16--- PASS", "--- FAIL: TestOther (0.00s)\n=== RUN   TestGhost\n\x16--- PASS", 1)
	rs := ParseGoTest([]byte(out), nil)
	require.Len(t, rs, 1)
	assert.Equal(t, outcome.Pass, rs[0].Outcome)
	assert.Equal(t, "--- FAIL: TestOther (0.00s)\n=== RUN   TestGhost\n", rs[0].Output)
}

// TestStreamRealBinary runs a real test binary (this package's guest
// tests, which skip outside a guest and fail on purpose) with TestFlags on
// the host and decodes its live output.
func TestStreamRealBinary(t *testing.T) {
	bin, err := BuildTestBinary(context.Background(), "./internal/guesttest")
	require.NoError(t, err)
	var events []TestEvent
	st := &TestStream{Event: func(e TestEvent) { events = append(events, e) }}
	cmd := exec.Command(bin, append(TestFlags, "-test.run", "TestFailsOnPurpose|TestSkipsOnPurpose")...)
	cmd.Env = append(os.Environ(), "VMTEST_GUEST=1")
	cmd.Stdout = st
	require.Error(t, cmd.Run(), "a test fails on purpose")
	st.Flush()
	ends := map[string]string{}
	for _, e := range events {
		if e.Action == "pass" || e.Action == "fail" || e.Action == "skip" {
			ends[e.Test] = e.Action
		}
	}
	assert.Equal(t, map[string]string{"TestFailsOnPurpose": "fail", "TestSkipsOnPurpose": "skip"}, ends)
}

// TestReplayHelper is run by TestReplay in a child process: replayed
// failures fail the test that replays them, so they cannot run in ours.
func TestReplayHelper(t *testing.T) {
	if os.Getenv("VMTEST_REPLAY_HELPER") != "1" {
		t.Skip("run by TestReplay in a child process")
	}
	Replay(t, ParseGoTest([]byte(frame(goTestOutput)), nil))
}

func TestReplay(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run", "^TestReplayHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "VMTEST_REPLAY_HELPER=1")
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "a replayed failure fails the replaying test:\n%s", out)
	s := string(out)
	for _, want := range []string{
		"--- PASS: TestReplayHelper/TestLoad/kprobe",
		"--- SKIP: TestReplayHelper/TestLoad/fentry",
		"--- PASS: TestReplayHelper/TestLoad ",
		"--- FAIL: TestReplayHelper/TestBroken",
		"--- PASS: TestReplayHelper/TestPar",
		"broken_test.go:5: want 2, got 3",
		"TestBroken failed in the guest",
		"par_test.go:8: still TestPar",
	} {
		assert.Contains(t, s, want)
	}
}

// TestGoTestInGuest builds a real test package, runs it in a guest, and
// parses what it printed: the BuildTestBinary → Run → ParseGoTest path
// the matrix takes.
func TestGoTestInGuest(t *testing.T) {
	noQEMULeft(t)
	k := newest(t)
	bin, err := BuildTestBinary(context.Background(), "./internal/guesttest")
	require.NoError(t, err)
	again, err := BuildTestBinary(context.Background(), "./internal/guesttest")
	require.NoError(t, err)
	assert.Equal(t, bin, again, "the binary has one place in the cache")

	env := []string{"VMTEST_GUEST=1", "WANT_RELEASE=" + k.Release}
	res := run(t, Spec{Kernel: k.Vmlinuz, Commands: []Command{
		{Name: "tests", Host: bin, Path: "/test/guesttest.test", Args: TestFlags, Env: env},
		{Name: "crash", Path: "/test/guesttest.test", Args: append(TestFlags, "-test.run", "TestKernelRelease|TestCrashesOnPurpose"),
			Env: append(env, "VMTEST_CRASH=1")},
	}})
	assert.Equal(t, outcome.Fail, res.Outcome, "the tests fail on purpose")

	c := res.Commands[0]
	assert.Equal(t, 1, c.ExitCode)
	m := byName(ParseGoTest(c.Stdout, c.Stderr))
	want := map[string]outcome.Outcome{
		"TestKernelRelease":       outcome.Pass,
		"TestGuestSetup":          outcome.Pass,
		"TestGuestSetup/memlock":  outcome.Pass,
		"TestGuestSetup/bpffs":    outcome.Pass,
		"TestGuestSetup/loopback": outcome.Pass,
		"TestFailsOnPurpose":      outcome.Fail,
		"TestSkipsOnPurpose":      outcome.Skip,
		"TestCrashesOnPurpose":    outcome.Skip,
	}
	for name, o := range want {
		assert.Equal(t, o, m[name].Outcome, "%s: %s", name, m[name].Output)
	}
	assert.Len(t, m, len(want))
	assert.Contains(t, m["TestKernelRelease"].Output, "release "+k.Release)
	assert.Contains(t, m["TestFailsOnPurpose"].Output, "failing on purpose")

	c = res.Commands[1]
	assert.Equal(t, 2, c.ExitCode, "a panicking test binary exits 2")
	m = byName(ParseGoTest(c.Stdout, c.Stderr))
	assert.Equal(t, outcome.Pass, m["TestKernelRelease"].Outcome)
	assert.Equal(t, outcome.Fail, m["TestCrashesOnPurpose"].Outcome)
	assert.Contains(t, m["TestCrashesOnPurpose"].Output, "panic: runtime error: invalid memory address or nil pointer dereference")
}

func TestBuildErrors(t *testing.T) {
	_, err := BuildTestBinary(context.Background(), "")
	assert.ErrorIs(t, err, ErrInvalidSpec)
	_, err = BuildBinary(context.Background(), "./no/such/package")
	assert.ErrorContains(t, err, "BuildBinary: go build ./no/such/package")
	_, err = BuildTestBinary(context.Background(), "./internal/wire/../../vminit/../internal/guestprog")
	assert.ErrorContains(t, err, "no binary was written (a package without _test.go files?)")
}
