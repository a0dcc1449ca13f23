//go:build linux

package bpf

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Under TCG a guest is some 50 times slower than the host; these bound
// waits for things that normally take milliseconds.
const (
	eventTimeout   = 60 * time.Second
	releaseTimeout = 10 * time.Second
)

func TestLoad(t *testing.T) {
	requireBPF(t)
	// With a filter, as in use: without one, filter_tgid is a frozen 0 and
	// the verifier prunes the ancestor walk, the part the variants differ in.
	tr := load(t, Options{FilterTgid: uint32(os.Getpid())})
	evidence(t, "variant", tr.Variant())
	_, err := tr.Tasks()
	assert.EqualError(t, err, "bpf: Tasks needs an attached tracer: call Attach first")
	progs := tr.Programs()
	require.Len(t, progs, 2, "the variant's exec program and the task iterator")
	assert.Equal(t, tr.Variant().Program(), progs[0].Name)
	assert.Equal(t, iterProgram, progs[1].Name)
	for _, p := range progs {
		evidence(t, "verified_insns."+p.Name, p.VerifiedInsns)
		assert.Positive(t, p.VerifiedInsns, p.Name)
		assert.NotZero(t, p.ID, p.Name)
		// Since 5.16 the kernel also reports the count in bpf_prog_info:
		// it must agree with the verifier log we parsed.
		prog, err := ebpf.NewProgramFromID(p.ID)
		require.NoError(t, err)
		info, err := prog.Info()
		require.NoError(t, err)
		if n, ok := info.VerifiedInstructions(); ok {
			assert.EqualValues(t, n, p.VerifiedInsns, "%s: bpf_prog_info.verified_insns vs the verifier log", p.Name)
		}
		prog.Close()
	}
}

func TestAttach(t *testing.T) {
	requireBPF(t)
	tr := load(t, Options{})
	err := tr.Attach()
	var ae *AttachError
	if errors.As(err, &ae) {
		t.Fatalf("attaching %s to %s: %v", ae.Program, ae.Point, ae.Err)
	}
	require.NoError(t, err)
	evidence(t, "attach_point", execAttachPoint)
	assert.EqualError(t, tr.Attach(), "bpf: Tracer.Attach called twice")
	res, err := tr.Resources()
	require.NoError(t, err)
	assert.Len(t, res.Links, 2, "the exec link and the iterator link")
}

// wantExec describes one exec our test causes.
type wantExec struct {
	pid, parent, depth uint32
}

// TestExecEvents execs kmatrix-child 5 times, plus once as a child that
// execs a grandchild, and expects exactly those 7 events, each with the
// right pid, parent, depth, comm and filename, and nothing else.
func TestExecEvents(t *testing.T) {
	requireBPF(t)
	// The kernel's run statistics (BPF_ENABLE_STATS, Linux 5.8+): the
	// exec program's run count is evidence that the hook fired, beside
	// the events it sent.
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	require.NoError(t, err)
	defer stats.Close()
	tr := loadAttached(t, Options{FilterTgid: uint32(os.Getpid())})
	checkExecEvents(t, tr, 5)
	st, err := tr.exec.Stats()
	require.NoError(t, err)
	// Every exec in the guest runs it (the filter is in the program), at
	// least our 7.
	assert.GreaterOrEqual(t, st.RunCount, uint64(7), "run count of %s", tr.variant.program())
	evidence(t, "run_count."+tr.variant.program(), st.RunCount)
	if st.RunCount > 0 {
		evidence(t, "mean_run_ns."+tr.variant.program(), st.Runtime.Nanoseconds()/int64(st.RunCount))
	}
}

// TestFallbackVariant loads the bounded-loop variant on every kernel, even
// those that have bpf_loop, and checks its events the same way, so the
// fallback is proven where it is not the default too.
func TestFallbackVariant(t *testing.T) {
	requireBPF(t)
	tr := loadAttached(t, Options{Variant: VariantBoundedLoop, FilterTgid: uint32(os.Getpid())})
	exec := tr.Programs()[0]
	require.Equal(t, VariantBoundedLoop.Program(), exec.Name)
	evidence(t, "verified_insns."+exec.Name, exec.VerifiedInsns)
	checkExecEvents(t, tr, 2)
}

func checkExecEvents(t *testing.T, tr *Tracer, n int) {
	t.Helper()
	exe, comm := childExecutable(t)
	me := uint32(os.Getpid())
	var want []wantExec
	for range n {
		cmd, err := childCommand(childExit)
		require.NoError(t, err)
		require.NoError(t, cmd.Run())
		want = append(want, wantExec{pid: uint32(cmd.Process.Pid), parent: me, depth: 1})
	}
	cmd, err := childCommand(childSpawn)
	require.NoError(t, err)
	out, err := cmd.Output()
	require.NoError(t, err)
	grandchild, err := strconv.Atoi(strings.TrimSpace(string(out)))
	require.NoError(t, err, "spawn child's output %q", out)
	spawner := uint32(cmd.Process.Pid)
	want = append(want,
		wantExec{pid: spawner, parent: me, depth: 1},
		wantExec{pid: uint32(grandchild), parent: spawner, depth: 2})

	// Every exec happened before its process exited and we waited for it,
	// so all events are in the ring buffer by now; the deadline only
	// guards against a program that never submits.
	got := readEvents(t, tr, len(want), time.Now().Add(eventTimeout))
	require.Len(t, got, len(want), "one event per exec: got %+v", got)

	// Nothing more: drain whatever is already waiting.
	extra := readEvents(t, tr, 1<<20, time.Now())
	assert.Empty(t, extra, "events from processes that are not our descendants")

	wantLoop := tr.Variant() == VariantBPFLoop
	for _, w := range want {
		i := slices.IndexFunc(got, func(e Event) bool { return e.Pid == w.pid })
		if !assert.GreaterOrEqual(t, i, 0, "no exec event for pid %d (got %+v)", w.pid, got) {
			continue
		}
		e := got[i]
		assert.Equal(t, w.pid, e.Tgid, "tgid of pid %d", w.pid)
		assert.Equal(t, w.parent, e.ParentTgid, "parent tgid of pid %d", w.pid)
		assert.Equal(t, w.depth, e.Depth, "generations below us of pid %d", w.pid)
		assert.Equal(t, comm, e.Comm, "comm of pid %d", w.pid)
		assert.Equal(t, exe, e.Filename, "filename of pid %d", w.pid)
		assert.Zero(t, e.State, "a task that is exec'ing is running: state of pid %d", w.pid)
		assert.Equal(t, wantLoop, e.ViaBPFLoop, "event of pid %d came from the %s program", w.pid, tr.Variant())
	}
	dropped, err := tr.Dropped()
	require.NoError(t, err)
	assert.Zero(t, dropped, "events dropped by a full ring buffer")
	evidence(t, "exec_events", len(got))
}

// readEvents reads up to n events, stopping at the deadline.
func readEvents(t *testing.T, tr *Tracer, n int, deadline time.Time) []Event {
	t.Helper()
	tr.SetDeadline(deadline)
	var got []Event
	for len(got) < n {
		e, err := tr.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		require.NoError(t, err)
		got = append(got, e)
	}
	return got
}

// TestDetach closes an attached, used tracer and checks with the kernel's
// id iterators that none of its programs, maps or links survive.
func TestDetach(t *testing.T) {
	requireBPF(t)
	tr := loadAttached(t, Options{FilterTgid: uint32(os.Getpid())})
	// Use every part once, so that readers and iterator files are opened.
	cmd, err := childCommand(childExit)
	require.NoError(t, err)
	require.NoError(t, cmd.Run())
	require.Len(t, readEvents(t, tr, 1, time.Now().Add(eventTimeout)), 1)
	_, err = tr.Tasks()
	require.NoError(t, err)

	res, err := tr.Resources()
	require.NoError(t, err)
	require.NotEmpty(t, res.Programs)
	require.NotEmpty(t, res.Maps)
	require.Len(t, res.Links, 2)
	// The iteration must see them while they exist, or its silence after
	// Close would prove nothing.
	progs, maps, links := liveIDs(t)
	require.Subset(t, progs, res.Programs, "live program ids")
	require.Subset(t, maps, res.Maps, "live map ids")
	require.Subset(t, links, res.Links, "live link ids")

	require.NoError(t, tr.Close())
	_, err = tr.Read()
	assert.ErrorIs(t, err, ErrClosed)

	// The kernel frees ids when the last reference goes; some references
	// (a link's program, an mmap'd ring buffer) are dropped a little later
	// than close(2), so poll briefly.
	deadline := time.Now().Add(releaseTimeout)
	for {
		progs, maps, links = liveIDs(t)
		leaked := intersect(progs, res.Programs) + intersect(maps, res.Maps) + intersect(links, res.Links)
		if leaked == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after Close, still alive: programs %v, maps %v, links %v (ours were %+v)",
				common(progs, res.Programs), common(maps, res.Maps), common(links, res.Links), res)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// liveIDs iterates the kernel's program, map and link ids.
func liveIDs(t *testing.T) (progs []ebpf.ProgramID, maps []ebpf.MapID, links []link.ID) {
	t.Helper()
	for id := ebpf.ProgramID(0); ; {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		require.NoError(t, err)
		progs, id = append(progs, next), next
	}
	for id := ebpf.MapID(0); ; {
		next, err := ebpf.MapGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		require.NoError(t, err)
		maps, id = append(maps, next), next
	}
	links = liveLinks(t)
	return progs, maps, links
}

// liveLinks iterates link ids. The kernel answers EAGAIN for a link that
// another process is still creating (its id is reserved but not yet
// settled), so an iteration that meets one starts over.
func liveLinks(t *testing.T) []link.ID {
	t.Helper()
	for attempt := 0; ; attempt++ {
		var links []link.ID
		var it link.Iterator
		for it.Next() {
			links = append(links, it.ID)
		}
		it.Close()
		err := it.Err()
		if err == nil {
			return links
		}
		if !errors.Is(err, unix.EAGAIN) || attempt == 50 {
			require.NoError(t, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func common[T comparable](a, b []T) []T {
	var c []T
	for _, x := range a {
		if slices.Contains(b, x) {
			c = append(c, x)
		}
	}
	return c
}

func intersect[T comparable](a, b []T) int { return len(common(a, b)) }
