package guest

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
	"github.com/kmatrix/kmatrix/matrix/outcome"
	"github.com/kmatrix/kmatrix/vmtest"
)

// TestBatchIsolation runs a batch in which two objects take the agent down
// for real, on every default kernel: killer.o's program SIGKILLs the
// kmatrix-guest process that reads a sysctl (its trigger workload does),
// stopper.o's SIGSTOPs it, so that only its object's time limit ends it.
// Nothing may be lost or misattributed: the object before them keeps the
// shared worker's results, the killer's death is its own (again when run
// alone, last), the stopper is a timeout, and the objects after the first
// death run one worker process each with the outcomes of the kernel's
// table.
func TestBatchIsolation(t *testing.T) {
	if testing.Short() {
		t.Skip("boots every catalog kernel in QEMU; -short skips it")
	}
	ks := kernelstest.Default(t)
	bin, err := vmtest.BuildBinary(context.Background(), "github.com/kmatrix/kmatrix/matrix/cmd/kmatrix-guest")
	require.NoError(t, err)
	objects := []string{"pinned", "killer", "iter", "stopper", "never"}
	for _, k := range ks {
		t.Run(k.Name, func(t *testing.T) {
			t.Parallel()
			cfg, err := kernels.ReadConfig(k.Config)
			require.NoError(t, err)
			res, err := runObjects(k, cfg, bin, objects, true, "-object-timeout", "20s")
			require.NoError(t, err)
			require.Equal(t, outcome.Pass, res.Outcome, "VM: %s\nexcerpt: %s", res.Err, res.Excerpt)
			runs := batchRuns(t, res)
			for _, o := range objects {
				require.NotNil(t, runs[o], "%s: no results\n%s", o, res.Commands[0].Stdout)
				require.NotNil(t, runs[o].End, "%s: no end\n%s", o, res.Commands[0].Stdout)
				require.NotNil(t, runs[o].Begin, o)
			}

			// Before the first death: the shared worker, once.
			shared := runs["pinned"]
			assert.Equal(t, 1, shared.Attempts)
			assert.False(t, shared.Begin.Alone)
			assert.False(t, shared.Begin.Spare, "not prestarted: no spare")
			assert.Empty(t, shared.End.Died)

			// The killer died in the shared worker and again alone.
			kr := runs["killer"]
			assert.Equal(t, 2, kr.Attempts)
			if assert.Len(t, kr.Earlier, 1) {
				assert.Contains(t, kr.Earlier[0].Died, "signal 9")
				assert.True(t, kr.Earlier[0].Rerun)
			}
			assert.True(t, kr.Begin.Alone)
			assert.Contains(t, kr.End.Died, "signal 9")
			assert.NotEqual(t, shared.Begin.Worker, kr.Begin.Worker)
			stages := map[string]outcome.Outcome{}
			for _, r := range kr.Results {
				stages[r.Program+"/"+string(r.Stage)] = r.Outcome
			}
			// It loaded and attached (the evidence), then killed the
			// agent in the trigger workload: no run result.
			assert.Equal(t, map[string]outcome.Outcome{"kill_agent/load": outcome.Pass, "kill_agent/attach": outcome.Pass}, stages)

			// The stopper overran its limit, once (a timeout is not
			// run again).
			sr := runs["stopper"]
			assert.Equal(t, 1, sr.Attempts)
			assert.True(t, sr.Begin.Alone)
			assert.True(t, sr.End.TimedOut, "%+v", sr.End)

			// The others: each in a worker of its own, as the table says.
			exp := expectedOutcomes(k.Version, cfg, len(k.Modules) > 0)
			workers := map[int]string{shared.Begin.Worker: "pinned", kr.Begin.Worker: "killer"}
			for _, o := range []string{"pinned", "iter", "never"} {
				or := runs[o]
				if o != "pinned" {
					assert.True(t, or.Begin.Alone, o)
					assert.Empty(t, workers[or.Begin.Worker], "%s shares worker %d", o, or.Begin.Worker)
					workers[or.Begin.Worker] = o
				}
				n := 0
				for key, w := range exp {
					if !strings.HasPrefix(key, o+"/") {
						continue
					}
					n++
					var got *ProgramResult
					for i, r := range or.Results {
						if o+"/"+r.Program+"/"+string(r.Stage) == key {
							got = &or.Results[i]
						}
					}
					if assert.NotNil(t, got, "%s: no result", key) {
						assert.Equal(t, w.o, got.Outcome, "%s: %s", key, got.Message)
					}
				}
				assert.Equal(t, n, len(or.Results), "%s: results %+v", o, or.Results)
			}
		})
	}
}

// TestPrestartedBatch runs a batch twice from one snapshot with
// kmatrix-guest prestarted (vmtest.Command.Prestart), as kmatrix run
// does, on the oldest and the newest default kernel: the shared worker is
// the spare the snapshot holds (ObjectBegin.Spare), it has the batch's
// flags and gives the objects their results, and a death in it is still
// the killer's own, run again alone in a fresh worker.
func TestPrestartedBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("boots kernels in QEMU; -short skips it")
	}
	ks := kernelstest.Default(t)
	bin, err := vmtest.BuildBinary(context.Background(), "github.com/kmatrix/kmatrix/matrix/cmd/kmatrix-guest")
	require.NoError(t, err)
	for _, k := range []*kernels.Kernel{ks[0], ks[len(ks)-1]} {
		t.Run(k.Name, func(t *testing.T) {
			t.Parallel()
			cfg, err := kernels.ReadConfig(k.Config)
			require.NoError(t, err)
			spec := objectsSpec(k, cfg, bin, []string{"pinned", "killer", "iter"}, true)
			spec.Files[0].Shared = true
			spec.Commands[0].Prestart = true
			var workers []int
			for i := 0; i < 2; i++ {
				res, err := vmtest.Run(context.Background(), spec)
				require.NoError(t, err)
				require.Equal(t, outcome.Pass, res.Outcome, "VM: %s\nexcerpt: %s", res.Err, res.Excerpt)
				require.NotEmpty(t, res.Snapshot, "restored (cold because: %s)", res.ColdReason)
				assert.Empty(t, res.Warnings, "the prestart worked")
				runs := batchRuns(t, res)
				pinned, killer, iter := runs["pinned"], runs["killer"], runs["iter"]
				require.True(t, pinned != nil && killer != nil && iter != nil, "%s", res.Commands[0].Stdout)
				require.NotNil(t, pinned.End, "%s", res.Commands[0].Stdout)
				assert.Empty(t, pinned.End.Died)
				assert.NotEmpty(t, pinned.Results)
				for _, r := range pinned.Results {
					assert.Equal(t, outcome.Pass, r.Outcome, "%+v", r)
				}
				assert.True(t, pinned.Begin.Spare, "the shared worker is the snapshot's spare")
				workers = append(workers, pinned.Begin.Worker)
				if assert.Len(t, killer.Earlier, 1) {
					assert.Contains(t, killer.Earlier[0].Died, "signal 9")
				}
				assert.True(t, killer.Begin.Alone)
				assert.False(t, killer.Begin.Spare)
				assert.NotEqual(t, pinned.Begin.Worker, killer.Begin.Worker)
				require.NotNil(t, iter.End)
				assert.True(t, iter.Begin.Alone)
			}
			assert.Equal(t, workers[0], workers[1], "one spare, the snapshot's")
		})
	}
}
