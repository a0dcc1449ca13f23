package report

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// shard splits a whole report the way `--shard i/n` splits a run: by
// kernel, round robin over the version-ordered kernels.
func shard(whole *Report, i, n int) *Report {
	s := *whole
	s.Shard = ""
	s.Kernels, s.Cells = nil, nil
	mine := make(map[string]bool)
	for j, k := range whole.Kernels {
		if j%n == i-1 {
			s.Kernels = append(s.Kernels, k)
			mine[k.Name] = true
		}
	}
	for _, c := range whole.Cells {
		if mine[c.Kernel] {
			s.Cells = append(s.Cells, cloneCell(c))
		}
	}
	s.Shard = ""
	if n > 1 {
		s.Shard = string(rune('0'+i)) + "/" + string(rune('0'+n))
	}
	s.Finalize()
	return &s
}

// throughDisk writes r with Write and reads its report.json back, as CI
// does between the shard jobs and the merge job.
func throughDisk(t *testing.T, r *Report) *Report {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, r.Write(dir))
	back, err := Read(filepath.Join(dir, JSONFile))
	require.NoError(t, err)
	return back
}

func TestMergeOfShardsEqualsUnshardedReport(t *testing.T) {
	whole := sample(t)
	for _, n := range []int{1, 2, 3, 4} {
		var shards []*Report
		// Reversed, as a command line may list them: the order must not matter.
		for i := n; i >= 1; i-- {
			shards = append(shards, throughDisk(t, shard(whole, i, n)))
		}
		merged, err := Merge(shards...)
		require.NoError(t, err, "%d shards", n)
		assert.Empty(t, merged.MissingShards)
		require.Equal(t, whole, merged, "merge of %d shards", n)

		// And byte for byte, in every rendering.
		for _, render := range []func(*Report, *bytes.Buffer) error{
			func(r *Report, b *bytes.Buffer) error { return r.WriteJSON(b) },
			func(r *Report, b *bytes.Buffer) error { return r.WriteMarkdown(b) },
			func(r *Report, b *bytes.Buffer) error { return r.WriteHTML(b) },
			func(r *Report, b *bytes.Buffer) error { return r.WriteJUnit(b) },
		} {
			var a, b bytes.Buffer
			require.NoError(t, render(whole, &a))
			require.NoError(t, render(merged, &b))
			require.Equal(t, a.String(), b.String())
		}
	}
}

func TestMergeDoesNotModifyInputs(t *testing.T) {
	whole := sample(t)
	a, b := shard(whole, 1, 2), shard(whole, 2, 2)
	a0, b0 := *a, *b
	_, err := Merge(b, a)
	require.NoError(t, err)
	assert.Equal(t, a0, *a)
	assert.Equal(t, b0, *b)
}

func TestMergeListsMissingShards(t *testing.T) {
	whole := sample(t)
	partial, err := Merge(shard(whole, 1, 4), shard(whole, 3, 4))
	require.NoError(t, err)
	assert.Equal(t, []string{"2/4", "4/4"}, partial.MissingShards)
	assert.Empty(t, partial.Shard)
	assert.Len(t, partial.Kernels, 2)
	assert.Contains(t, partial.Markdown(), "Incomplete matrix: shards 2/4, 4/4 missing")
	var h bytes.Buffer
	require.NoError(t, partial.WriteHTML(&h))
	has(t, h.String(), "Incomplete matrix: shard(s) 2/4, 4/4 missing")
	var txt bytes.Buffer
	require.NoError(t, partial.WriteText(&txt, false))
	assert.Contains(t, txt.String(), "incomplete: shards 2/4, 4/4 missing")

	// Merging the partial merge with the rest completes it, and equals the whole.
	done, err := Merge(throughDisk(t, partial), shard(whole, 2, 4), shard(whole, 4, 4))
	require.NoError(t, err)
	assert.Empty(t, done.MissingShards)
	assert.Equal(t, whole, done)
}

func TestMergeOverlappingIdenticalCellsIsFine(t *testing.T) {
	// The same report twice (a retried upload) merges into itself.
	whole := sample(t)
	m, err := Merge(whole, throughDisk(t, whole))
	require.NoError(t, err)
	assert.Equal(t, whole, m)
}

func TestMergeConflicts(t *testing.T) {
	whole := sample(t)
	t.Run("cell", func(t *testing.T) {
		other := throughDisk(t, whole)
		other.Cells[0].Outcome = outcome.Pass
		_, err := Merge(whole, other)
		require.ErrorIs(t, err, ErrConflict)
		for _, w := range []string{"cell debian-bullseye/bpf/load", "load-error in report 1", "pass in report 2", "merge the shards of one run"} {
			assert.Contains(t, err.Error(), w)
		}
	})
	t.Run("evidence", func(t *testing.T) {
		other := throughDisk(t, whole)
		other.Cells[0].DurationMS++
		_, err := Merge(whole, other)
		require.ErrorIs(t, err, ErrConflict)
		assert.Contains(t, err.Error(), "load-error in both report 1 and report 2, with different evidence or timing")
	})
	t.Run("kernel", func(t *testing.T) {
		a, b := shard(whole, 1, 2), throughDisk(t, shard(whole, 2, 2))
		b.Kernels = append(b.Kernels, a.Kernels[0])
		b.Kernels[len(b.Kernels)-1].PackageVersion = "5.10.261-1"
		_, err := Merge(a, b)
		require.ErrorIs(t, err, ErrConflict)
		assert.Contains(t, err.Error(), `kernel "debian-bullseye"`)
		assert.Contains(t, err.Error(), `report 1 (shard 1/2) has package_version "5.10.262-1", report 2 (shard 2/2) has "5.10.261-1"`)
	})
	t.Run("shard count", func(t *testing.T) {
		_, err := Merge(shard(whole, 1, 2), shard(whole, 2, 3))
		require.ErrorIs(t, err, ErrConflict)
		assert.Contains(t, err.Error(), "shard 2/3 is of 3 shards, another report of 2")
	})
	t.Run("invalid input", func(t *testing.T) {
		bad := throughDisk(t, whole)
		bad.Cells[3].Outcome = "nope"
		_, err := Merge(whole, bad)
		require.ErrorIs(t, err, ErrInvalid)
		assert.Contains(t, err.Error(), "merge: report 2: cells[3].outcome")
	})
	t.Run("nothing", func(t *testing.T) {
		_, err := Merge()
		require.Error(t, err)
		assert.Contains(t, err.Error(), "no reports given")
	})
}

func TestMergeHostsAndTime(t *testing.T) {
	whole := sample(t)
	a, b := shard(whole, 1, 2), shard(whole, 2, 2)
	b.Host.Accel, b.Host.CPUs = "kvm", 8
	b.GeneratedAt = a.GeneratedAt.Add(time.Minute)
	m, err := Merge(a, b)
	require.NoError(t, err)
	assert.Equal(t, "kvm, tcg", m.Host.Accel)
	assert.Equal(t, 0, m.Host.CPUs, "hosts with different CPU counts have no one count")
	assert.Equal(t, "7.2.15", m.Host.QEMU)
	assert.Equal(t, b.GeneratedAt, m.GeneratedAt, "the merge is as new as its newest shard")
}
