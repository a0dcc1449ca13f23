package vmtest

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
)

// TestPrestartedCommand runs a prestarted command twice from one snapshot
// and once cold, on the oldest and the newest default kernel: restored,
// it is the process the snapshot holds (the same pid both times, its
// warm-up's output, which only the snapshot's boot printed), yet with each
// run's own arguments, environment and directory, its own random bytes
// and the host's clock; a second command of the same executable and a
// cold boot start it fresh.
func TestPrestartedCommand(t *testing.T) {
	noQEMULeft(t)
	ks := kernelstest.Default(t)
	for _, kern := range []*kernels.Kernel{ks[0], ks[len(ks)-1]} {
		k := kern.Vmlinuz
		t.Run(kern.Name, func(t *testing.T) {
			t.Parallel()
			const exe = "/usr/local/bin/guestprog-prestarted"
			spec := func(run string, cold bool) Spec {
				return Spec{Kernel: k, Cold: cold,
					Files: []File{{Host: guestprog(t), Guest: exe, Shared: true}},
					Commands: []Command{
						{Name: "pre", Path: exe, Args: []string{"whoami", run}, Env: []string{"RUN=" + run}, Dir: "/work/" + run, Prestart: true},
						{Name: "again", Path: exe, Args: []string{"whoami", "again"}, Prestart: true},
					}}
			}
			who := regexp.MustCompile(`^(warmed up\n)?prestarted=(true|false) pid=(\d+) args=(\S*) cwd=(\S*) RUN=(\S*) random=(\S+) now=(\d+)\n$`)
			type timedRun struct {
				*Result
				before, after time.Time
			}
			runTimed := func(s Spec) timedRun {
				before := time.Now()
				res := run(t, s)
				return timedRun{res, before, time.Now()}
			}
			parse := func(res timedRun, i int) []string {
				require.Equal(t, outcome.Pass, res.Outcome, "%s\n%s", res.Err, res.Console)
				m := who.FindStringSubmatch(string(res.Commands[i].Stdout))
				require.NotNil(t, m, "%q", res.Commands[i].Stdout)
				assertHostClock(t, res.before, res.after, m[8])
				return m
			}
			r1 := runTimed(spec("one", false))
			r2 := runTimed(spec("two", false))
			require.NotEmpty(t, r2.Snapshot, "restored (cold because: %s)", r2.ColdReason)
			assert.Equal(t, r1.Snapshot, r2.Snapshot)
			a, b := parse(r1, 0), parse(r2, 0)
			for _, m := range [][]string{a, b} {
				assert.Equal(t, "warmed up\n", m[1], "the warm-up's output is the command's")
				assert.Equal(t, "true", m[2], "released from the snapshot")
			}
			assert.Equal(t, a[3], b[3], "one process, the snapshot's")
			assert.NotEqual(t, a[7], b[7], "two runs from one snapshot read different random bytes")
			assert.Equal(t, []string{"one", "/work/one", "one"}, a[4:7])
			assert.Equal(t, []string{"two", "/work/two", "two"}, b[4:7], "the run's own arguments, directory, environment")
			again := parse(r2, 1)
			assert.Equal(t, []string{"", "false"}, again[1:3], "the second command of one executable starts it")
			assert.NotEqual(t, b[3], again[3])

			cold := parse(runTimed(spec("cold", true)), 0)
			assert.Equal(t, []string{"", "false"}, cold[1:3], "a cold boot starts it as any command")
			assert.Equal(t, []string{"cold", "/work/cold", "cold"}, cold[4:7])
		})
	}
}

// TestPrestartThatDoesNotWait: an executable that ignores the protocol
// (kmatrix-child exits at once) costs a warning, and its command runs as
// usual.
func TestPrestartThatDoesNotWait(t *testing.T) {
	noQEMULeft(t)
	const exe = "/usr/local/bin/kmatrix-child-prestarted"
	res := run(t, Spec{Kernel: newest(t).Vmlinuz,
		Files:    []File{{Host: "execchild/kmatrix-child", Guest: exe, Shared: true}},
		Commands: []Command{{Path: exe, Args: []string{"exit"}, Prestart: true}}})
	require.Equal(t, outcome.Pass, res.Outcome, "%s\n%s", res.Err, res.Console)
	require.NotEmpty(t, res.Snapshot, "restored (cold because: %s)", res.ColdReason)
	assert.Equal(t, 0, res.Commands[0].ExitCode)
	assert.Contains(t, strings.Join(res.Warnings, "\n"), "prestart "+exe+": it did not wait for its run")
}

// TestPrestartNeedsASharedExecutable: the snapshot holds only Shared
// files, so a prestarted command of any other file is a spec error.
func TestPrestartNeedsASharedExecutable(t *testing.T) {
	k := newest(t).Vmlinuz
	for name, spec := range map[string]Spec{
		"not shared": {Kernel: k, Files: []File{{Data: []byte("x"), Guest: "/bin/x", Mode: 0o755}},
			Commands: []Command{{Path: "/bin/x", Prestart: true}}},
		"not a file": {Kernel: k, Commands: []Command{{Path: "/bin/x", Prestart: true}}},
		"stdin": {Kernel: k, Files: []File{{Data: []byte("x"), Guest: "/bin/x", Mode: 0o755, Shared: true}},
			Commands: []Command{{Path: "/bin/x", Prestart: true, Stdin: strings.NewReader("in")}}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Run(context.Background(), spec)
			var se *SpecError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, "Commands[0].Prestart", se.Field)
		})
	}
}
