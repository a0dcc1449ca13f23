package main

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/kernels/kernelstest"
	"github.com/kmatrix/kmatrix/matrix/outcome"
	"github.com/kmatrix/kmatrix/matrix/report"
)

const sampleReport = "../../report/testdata/sample.json"

// writeReport writes the sample report changed by edit and returns its path.
func writeReport(t *testing.T, edit func(r *report.Report)) string {
	t.Helper()
	r, err := report.Read(sampleReport)
	require.NoError(t, err)
	edit(r)
	dir := t.TempDir()
	require.NoError(t, r.Write(dir))
	return filepath.Join(dir, "report.json")
}

func setOutcome(r *report.Report, kernel, payload, check string, o outcome.Outcome) {
	for i, c := range r.Cells {
		if c.Kernel == kernel && c.Payload == payload && c.Check == check {
			r.Cells[i].Outcome = o
			return
		}
	}
	panic("no cell " + kernel + "/" + payload + "/" + check)
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	return p
}

// The sample's five failures, each declared with a reason.
const sampleExpect = `expectations:
  - kernel: "< 6"
    payload: bpf
    check: load
    outcome: load-error
    reason: the 5.10 verifier rejects it
  - kernel: debian-bookworm
    payload: kmod
    check: build
    outcome: build-error
    reason: gcc-12 miscompiles it
  - kernel: ">= 6.12, < 7"
    check: "Test*Events"
    reason: known trouble on 6.12
  - kernel: debian-tri*
    check: unload
    outcome: [splat, oops]
    reason: the 6.12 unload warning
  - kernel: debian-sid
    payload: kmod
    check: TestProcEntry
    outcome: kernel-panic
    reason: upstream bug 123
`

// Each exit code of the table, through the real command line.
func TestExitCodesReportDiff(t *testing.T) {
	ctx := context.Background()
	diff := func(args ...string) int { return dispatch(ctx, append([]string{"report", "diff"}, args...)) }
	missing := filepath.Join(t.TempDir(), "none", "report.json")

	// 0: an identical report, failing cells included: nothing is new.
	assert.Equal(t, exitOK, diff(sampleReport, sampleReport), "unchanged failures are not a regression")
	// 1: no baseline (first run), so the five failures are unexpected...
	assert.Equal(t, exitFailed, diff("--allow-missing-baseline", missing, sampleReport))
	// ... and 0 once each is declared.
	expectFile := writeFile(t, "expect.yml", sampleExpect)
	assert.Equal(t, exitOK, diff("--allow-missing-baseline", "--expect", expectFile, missing, sampleReport))

	// 3: a cell that passed fails now.
	regressed := writeReport(t, func(r *report.Report) { setOutcome(r, "debian-sid", "bpf", "load", outcome.LoadError) })
	assert.Equal(t, exitRegressed, diff(sampleReport, regressed))
	assert.Equal(t, exitRegressed, diff("--baseline", sampleReport, regressed))
	// An expected failure is not a regression: declared, it is fine.
	sidLoad := writeFile(t, "sid.yml", "- kernel: debian-sid\n  payload: bpf\n  check: load\n  reason: broken on 7.2, fixed in the next release\n")
	assert.Equal(t, exitOK, diff("--expect", sidLoad, sampleReport, regressed))

	// 1: a failure that changed class (fail → load-error) is new, not unchanged.
	changed := writeReport(t, func(r *report.Report) { setOutcome(r, "debian-trixie", "bpf", "TestExecEvents", outcome.LoadError) })
	assert.Equal(t, exitFailed, diff(sampleReport, changed))

	// 1: an unexpected pass, even against an identical baseline: the
	// expectation is stale and must not rot.
	stale := writeFile(t, "stale.yml", sampleExpect+"  - kernel: debian-sid\n    payload: bpf\n    check: attach\n    outcome: attach-error\n    reason: tcx needs 6.6\n")
	assert.Equal(t, exitFailed, diff("--expect", stale, sampleReport, sampleReport))

	// 4: the only failure is kmatrix's own.
	allPass := writeReport(t, func(r *report.Report) {
		for i := range r.Cells {
			r.Cells[i].Outcome = outcome.Pass
		}
	})
	infra := writeReport(t, func(r *report.Report) {
		for i := range r.Cells {
			r.Cells[i].Outcome = outcome.Pass
		}
		setOutcome(r, "debian-sid", "kmod", "build", outcome.InfraError)
	})
	assert.Equal(t, exitOK, diff(allPass, allPass))
	assert.Equal(t, exitInfra, diff(allPass, infra), "pass → infra-error is not the payload's regression")
	assert.Equal(t, exitInfra, diff("--allow-missing-baseline", missing, infra))
	// An infra-error beside a real failure: the real failure decides.
	both := writeReport(t, func(r *report.Report) { setOutcome(r, "debian-sid", "kmod", "build", outcome.InfraError) })
	assert.Equal(t, exitFailed, diff("--allow-missing-baseline", missing, both))

	// 2: usage errors, and a baseline that is not there.
	assert.Equal(t, exitUsage, diff(missing, sampleReport), "a missing baseline is an error unless allowed")
	assert.Equal(t, exitUsage, diff(sampleReport, missing))
	assert.Equal(t, exitUsage, diff("--expect", writeFile(t, "bad.yml", "- kernel: a\n"), sampleReport, sampleReport))
	assert.Equal(t, exitUsage, diff("--frob", sampleReport, sampleReport))
}

// report merge: 4 when a shard is missing (the merge is still written).
func TestExitCodesReportMerge(t *testing.T) {
	ctx := context.Background()
	whole, err := report.Read(sampleReport)
	require.NoError(t, err)
	var shards []string
	for i, k := range whole.Kernels {
		s := &report.Report{Schema: report.Schema, GeneratedAt: whole.GeneratedAt, Shard: strconv.Itoa(i+1) + "/4", Kernels: []report.Kernel{k}}
		for _, c := range whole.Cells {
			if c.Kernel == k.Name {
				s.Cells = append(s.Cells, c)
			}
		}
		dir := t.TempDir()
		require.NoError(t, s.Write(dir))
		shards = append(shards, filepath.Join(dir, "report.json"))
	}
	out := t.TempDir()
	assert.Equal(t, exitOK, dispatch(ctx, append([]string{"report", "merge", "--out", out}, shards...)))
	assert.Equal(t, exitInfra, dispatch(ctx, append([]string{"report", "merge", "--out", out}, shards[0], shards[1], shards[3])))
	merged, err := report.Read(filepath.Join(out, "report.json"))
	require.NoError(t, err)
	assert.Equal(t, []string{"3/4"}, merged.MissingShards)
	assert.Equal(t, exitInfra, dispatch(ctx, []string{"report", "diff", "--expect", writeFile(t, "e.yml", sampleExpect), sampleReport, filepath.Join(out, "report.json")}),
		"an incomplete merge with its failures declared: retry the lost shard")

	// Expectations applied at merge time are in the merged report.
	assert.Equal(t, exitOK, dispatch(ctx, append([]string{"report", "merge", "--out", out, "--expect", writeFile(t, "e.yml", sampleExpect)}, shards...)))
	merged, err = report.Read(filepath.Join(out, "report.json"))
	require.NoError(t, err)
	assert.Equal(t, 5, merged.Expectations().Expected)
}

// Usage errors exit 2, help exits 0, on every command.
func TestExitCodesUsage(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{
		{"run", "--parallel", "-1"},
		{"run", "--timeout", "-5s"},
		{"run", "--timeout", "0s"},
		{"run", "--frob"},
		{"run", "extra"},
		{"run", "--shard", "5/4"},
		{"run", "--expect", writeFile(t, "bad.yml", "- kernel: a\n  reason: r\n  colour: red\n")},
		{"run", "--baseline", filepath.Join(t.TempDir(), "missing.json")},
		{"run", "--kernels", "no-such-kernel"},
		{"run", "--bpf", filepath.Join(t.TempDir(), "missing.o")},
		{"exec", "--kernel", "debian-sid", "--timeout", "0s", "--", "true"},
		{"exec", "--kernel", "debian-sid", "--cpus", "0", "--", "true"},
		{"exec", "--kernel", "debian-sid", "--memory", "-1", "--", "true"},
		{"kernels", "--frob"},
		{"fetch", "--frob"},
		{"fetch", "no-such-kernel"},
		{"mirrors", "extra"},
		{"report"},
		{"report", "frob"},
		{"help", "frob"},
		{},
		{"frob"},
	} {
		assert.Equal(t, exitUsage, dispatch(ctx, args), "%q", args)
	}
	for _, args := range [][]string{
		{"-h"}, {"--help"}, {"help"}, {"help", "exit-codes"}, {"help", "run"},
		{"run", "-h"}, {"exec", "-h"}, {"kernels", "-h"}, {"fetch", "-h"}, {"mirrors", "-h"},
		{"report", "-h"}, {"report", "--help"}, {"report", "merge", "-h"}, {"report", "diff", "-h"},
	} {
		assert.Equal(t, exitOK, dispatch(ctx, args), "%q", args)
	}
	for name := range commands {
		assert.Equal(t, exitOK, dispatch(ctx, []string{name, "-h"}), "every command has -h: %s", name)
	}
}

// The README's table and `kmatrix help exit-codes` list every code.
func TestExitCodesDocumented(t *testing.T) {
	b, err := os.ReadFile("../../../README.md")
	require.NoError(t, err)
	_, sec, ok := strings.Cut(string(b), "## Exit codes")
	require.True(t, ok, "README.md has no '## Exit codes' section")
	sec, _, _ = strings.Cut(sec, "\n## ")
	for _, code := range []int{exitOK, exitFailed, exitUsage, exitRegressed, exitInfra, exitInterrupted, exitTerminated} {
		n := strconv.Itoa(code)
		assert.Contains(t, sec, "| "+n+" |", "README's table has exit code %d", code)
		assert.Regexp(t, "(?m)^  "+n+" ", exitCodesHelp, "kmatrix help exit-codes has exit code %d", code)
	}
}

// 130 and 143: a run stopped by SIGINT or SIGTERM says so in its exit code.
func TestExitCodesSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("builds kmatrix and starts a run on a real kernel; -short skips it")
	}
	ks := kernelstest.Default(t)
	bin := buildKmatrix(t)
	for _, tc := range []struct {
		sig  syscall.Signal
		want int
	}{{syscall.SIGINT, exitInterrupted}, {syscall.SIGTERM, exitTerminated}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			// A check that sleeps until killed keeps the run busy; the
			// signal comes once the guest boots, well before the check ends (a warm run is
			// otherwise over in about 2 s, before a fixed delay's signal).
			child, err := filepath.Abs("../../../vmtest/execchild/kmatrix-child")
			require.NoError(t, err)
			cmd := exec.Command(bin, "run", "--project", "none", "--kernels", ks[0].Name, "--out", t.TempDir(),
				"--bpf", "../../../bpf/testdata/tcx_kprobe_x86_bpfel.o", "--check", child+" sleep")
			stderr, err := cmd.StderrPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			running := make(chan struct{})
			go func() {
				sc := bufio.NewScanner(stderr)
				seen := false
				for sc.Scan() {
					if !seen && strings.Contains(sc.Text(), " boot ") {
						seen = true
						close(running)
					}
				}
			}()
			select {
			case <-running:
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				t.Fatal("the run never booted its kernel")
			}
			time.Sleep(2 * time.Second) // into the check, which sleeps until killed
			require.NoError(t, cmd.Process.Signal(tc.sig))
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				var ee *exec.ExitError
				require.True(t, errors.As(err, &ee), "want an exit status, got %v", err)
				assert.Equal(t, tc.want, ee.ExitCode())
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("kmatrix run did not stop within 60 s of %v", tc.sig)
			}
		})
	}
}

// kmatrix mirrors prints the mirrors a run would download from (here the
// variables'), and is among the commands the workflows run first.
func TestMirrors(t *testing.T) {
	t.Setenv("KMATRIX_DEBIAN_MIRROR", "file:///srv/debian")
	t.Setenv("KMATRIX_DEBIAN_SECURITY_MIRROR", "file:///srv/debian-security")
	var out, errb strings.Builder
	assert.Equal(t, exitOK, mirrorsMain(nil, &out, &errb), errb.String())
	assert.Equal(t, "archive\tfile:///srv/debian\nsecurity\tfile:///srv/debian-security\n", out.String())
	assert.Equal(t, exitOK, dispatch(context.Background(), []string{"mirrors"}))
}

var built struct {
	once sync.Once
	bin  string
	err  error
	out  []byte
}

// buildKmatrix builds the kmatrix command once per test process, static
// as its guest agent must be.
func buildKmatrix(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "kmatrix-cli-test-")
		if err != nil {
			built.err = err
			return
		}
		built.bin = filepath.Join(dir, "kmatrix")
		cmd := exec.Command("go", "build", "-o", built.bin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		built.out, built.err = cmd.CombinedOutput()
	})
	require.NoError(t, built.err, "%s", built.out)
	return built.bin
}

// On a host whose apt sources name no Debian mirror (here: an empty
// /etc/apt, in a private mount namespace) and KMATRIX_DEBIAN_MIRROR unset,
// run, fetch and mirrors stop before downloading anything, exit 2, and
// name the variable with the format of its value. A warm cache needs no
// mirror: fetch of a cached kernel still works.
func TestNoMirrorStopsBeforeDownloading(t *testing.T) {
	if testing.Short() {
		t.Skip("builds kmatrix; -short skips it")
	}
	if os.Getuid() != 0 {
		t.Skip("needs root for a private mount namespace (unshare --mount) to hide /etc/apt")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare(1) (util-linux) to hide /etc/apt in a private mount namespace")
	}
	ks := kernelstest.Default(t) // warm the default cache first
	bin := buildKmatrix(t)
	emptyApt := t.TempDir()
	cache := t.TempDir()
	noMirror := func(cacheDir string, args ...string) (int, string) {
		script := `mount --bind "$1" /etc/apt && shift && exec "$@"`
		cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "sh", emptyApt, bin}, args...)...)
		var env []string
		for _, e := range os.Environ() {
			if !strings.HasPrefix(e, "KMATRIX_DEBIAN_") && !strings.HasPrefix(e, "KMATRIX_CACHE_DIR=") {
				env = append(env, e)
			}
		}
		if cacheDir != "" {
			env = append(env, "KMATRIX_CACHE_DIR="+cacheDir)
		}
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}
	for _, args := range [][]string{
		{"run", "--kernels", ks[0].Name, "--out", t.TempDir()},
		{"fetch", ks[0].Name},
		{"mirrors"},
	} {
		code, out := noMirror(cache, args...)
		assert.Equal(t, exitUsage, code, "%v:\n%s", args, out)
		assert.Contains(t, out, "no Debian mirror configured", args)
		assert.Contains(t, out, "KMATRIX_DEBIAN_MIRROR=https://<your Debian mirror>/debian", args)
	}
	left, _ := filepath.Glob(filepath.Join(cache, "*", "*"))
	assert.Empty(t, left, "nothing was downloaded into the empty cache")

	code, out := noMirror("", "fetch", ks[0].Name)
	assert.Equal(t, exitOK, code, "a cached kernel needs no mirror:\n%s", out)
}
