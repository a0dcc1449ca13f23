package matrix

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/matrix/report"
)

// ErrRegression is returned by Run (wrapped) when Options.Baseline is set
// and a cell that passed there fails now.
var ErrRegression = report.ErrRegression

// Run resolves and fetches the selected kernels, runs every payload on each
// (Parallel kernels at a time), and writes the report to OutDir. It returns
// the report even when kernels fail: the error aggregates every infra
// failure across kernels (each is also a cell), so one broken kernel never
// hides the others' results.
func Run(ctx context.Context, opts Options) (*report.Report, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, usageError{err}
	}
	expectations, err := opts.expectations()
	if err != nil {
		return nil, err
	}
	cat, err := loadCatalogFor(opts.Catalog, opts.Arch)
	if err != nil {
		return nil, err
	}
	kopts := kernels.Options{Float: opts.Float, AllowExpired: opts.AllowExpired, Headers: true, Progress: nil}
	// Only the selected kernels are resolved; one that cannot be is that
	// kernel's infra-error, and the others run.
	cat, err = selectKernels(cat, opts.Kernels, opts.Shard)
	if err != nil {
		return nil, usageError{err}
	}
	results, err := kernels.ResolveEach(ctx, cat, kopts)
	if results == nil {
		return nil, fmt.Errorf("resolving the catalog: %w", err)
	}
	var resolved []kernels.Resolved
	var unresolved []kernels.ResolveResult
	for _, r := range results {
		if r.Err != nil {
			unresolved = append(unresolved, r)
		} else {
			resolved = append(resolved, r.Resolved)
		}
		if errors.Is(r.Err, kernels.ErrNoMirror) {
			return nil, usageError{r.Err}
		}
	}
	if err := checkMirror(resolved, kopts); err != nil {
		return nil, err
	}
	newer := newerAvailable(ctx, resolved, kopts)

	rep := &report.Report{Schema: report.Schema, Shard: opts.Shard.String(), Host: hostFacts()}
	var (
		mu      sync.Mutex
		errs    *multierror.Error
		fetches sync.WaitGroup
		queue   = newReadyQueue()
	)
	record := func(cells []report.Cell, row report.Kernel, err error) {
		mu.Lock()
		defer mu.Unlock()
		rep.Cells = append(rep.Cells, cells...)
		if row.Name != "" {
			rep.Kernels = append(rep.Kernels, row)
		}
		if err != nil {
			errs = multierror.Append(errs, err)
		}
	}

	// Guest binaries build while kernels download.
	var (
		runner    *Runner
		runnerErr error
		built     = make(chan struct{})
	)
	go func() {
		defer close(built)
		runner, runnerErr = NewRunner(ctx, opts)
	}()
	defer func() {
		<-built
		if runner != nil {
			runner.Close()
		}
	}()

	for _, u := range unresolved {
		err := fmt.Errorf("resolving: %w", u.Err)
		record([]report.Cell{infraCell(u.Entry.Name, outcome.StageFetch, 0, err)}, report.Kernel{Name: u.Entry.Name}, err)
		opts.progress.Phase(u.Entry.Name, PhaseDone, "not resolved")
	}

	// Fetches run all at once; Parallel workers take the fetched kernels
	// from the queue, each running one VM at a time. The workers start
	// once the guest binaries are built, by when a warm cache has queued
	// every kernel, so the queue's order decides.
	for _, rk := range resolved {
		fetches.Add(1)
		go func() {
			defer fetches.Done()
			name := rk.Name
			opts.progress.Phase(name, PhaseFetch, rk.Release)
			start := time.Now()
			k, err := kernels.Fetch(ctx, rk, kopts)
			if err != nil {
				record([]report.Cell{infraCell(name, outcome.StageFetch, time.Since(start), err)}, report.Kernel{Name: name}, fmt.Errorf("%s: %w", name, err))
				opts.progress.Phase(name, PhaseDone, "fetch failed")
				return
			}
			queue.push(k)
		}()
	}
	go func() {
		fetches.Wait()
		queue.close()
	}()
	<-built
	if errors.Is(runnerErr, ErrUsage) {
		// The input is wrong (a cgo package for --gotest): say so, as a
		// usage error, rather than as every kernel's infra-error.
		opts.progress.Stop()
		return nil, runnerErr
	}
	queue.drain(opts.Parallel, func(k *kernels.Kernel) {
		if runnerErr != nil {
			record([]report.Cell{infraCell(k.Name, outcome.StageBuild, 0, runnerErr)}, reportKernel(k), nil)
			return
		}
		cells, row, err := runner.Kernel(ctx, k)
		record(cells, row, err)
	})
	opts.progress.Stop()
	if runnerErr != nil {
		errs = multierror.Append(errs, runnerErr)
	}
	nw := newer()
	for i, k := range rep.Kernels {
		rep.Kernels[i].NewerAvailable = nw[k.Name]
	}
	rep.GeneratedAt = time.Now().UTC()
	finish(rep, expectations)

	var diff *report.Delta
	if opts.Baseline != "" {
		base, err := report.Read(opts.Baseline)
		if err != nil {
			return rep, fmt.Errorf("baseline: %w", err)
		}
		d := report.Diff(base, rep)
		diff = &d
	}
	if opts.OutDir != "" {
		if err := rep.Write(opts.OutDir); err != nil {
			errs = multierror.Append(errs, err)
		}
		if diff != nil {
			if err := os.WriteFile(filepath.Join(opts.OutDir, "diff.md"), []byte(diff.Markdown()), 0o644); err != nil {
				errs = multierror.Append(errs, err)
			}
		}
	}
	if diff != nil && diff.Regressed() {
		errs = multierror.Append(errs, diff.Err())
	}
	return rep, errs.ErrorOrNil()
}

// newerAvailable asks the archive, beside the run, which kernels have a
// newer image of the same series (kernels.FindOutdated), and delivers the
// answer as kernel name → what is newer. The answer is
// advisory: an archive that cannot be read in 20 s (offline, and no cached
// index) gives none, and never fails the run.
func newerAvailable(ctx context.Context, rs []kernels.Resolved, kopts kernels.Options) func() map[string]string {
	done := make(chan map[string]string, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		kopts.Log = io.Discard
		old, _ := kernels.FindOutdated(ctx, rs, kopts)
		m := map[string]string{}
		for _, o := range old {
			m[o.Name] = fmt.Sprintf("%s (%s in %s)", o.Newer.Version, o.Newer.Package, o.Newer.Pocket)
		}
		done <- m
	}()
	return sync.OnceValue(func() map[string]string { return <-done })
}

// Failed reports whether any cell of rep counts against the run: a failure
// no expectation allows, or an unexpected pass (report.Cell.Failing).
func Failed(rep *report.Report) bool {
	for _, c := range rep.Cells {
		if c.Failing() {
			return true
		}
	}
	return false
}

func infraCell(kernel string, stage outcome.Stage, d time.Duration, err error) report.Cell {
	return report.Cell{Kernel: kernel, Payload: PayloadKernel, Check: string(stage), Stage: stage, Outcome: outcome.InfraError,
		DurationMS: ms(d), Evidence: report.Evidence{Message: err.Error()}}
}

// loadCatalog reads a catalog file, or one kmatrix ships by name:
// "default" (or empty), "series", "arm64" and "series-arm64". A file of
// that name wins.
func loadCatalog(path string) (*kernels.Catalog, error) {
	if _, err := os.Stat(path); err != nil {
		if c, ok, err := kernels.Shipped(path); ok {
			return c, err
		}
	}
	return kernels.LoadCatalog(path)
}

// LoadCatalog is the catalog `kmatrix run --catalog CATALOG --arch ARCH`
// runs: a file, or a shipped catalog by name, keeping the kernels of arch
// (all when arch is empty). Local kernels stay, whatever their arch (it is
// read from their vmlinuz). For arm64, the shipped amd64 catalogs' names
// mean their arm64 twins: the default catalog (or none) the shipped arm64
// one, "series" series-arm64. A catalog without kernels of arch is an
// error naming the arch and the kernels it has (errors.Is ErrUsage).
func LoadCatalog(catalog, arch string) (*kernels.Catalog, error) {
	return loadCatalogFor(catalog, arch)
}

func loadCatalogFor(catalog, arch string) (*kernels.Catalog, error) {
	if twin, ok := map[string]string{"": "arm64", "default": "arm64", "series": "series-arm64"}[catalog]; ok && arch == "arm64" {
		if _, err := os.Stat(catalog); catalog == "" || err != nil {
			catalog = twin
		}
	}
	cat, err := loadCatalog(catalog)
	if err != nil || arch == "" {
		return cat, err
	}
	var names, other []string
	for _, e := range cat.Kernels {
		if e.Local != "" || e.Arch == arch {
			names = append(names, e.Name)
		} else {
			other = append(other, e.Name+" ("+e.Arch+")")
		}
	}
	if len(names) == 0 {
		hint := "--catalog arm64 or series-arm64 for the shipped arm64 ones"
		if arch != "arm64" {
			hint = "--catalog default or series for the shipped " + arch + " ones"
		}
		return nil, usageError{fmt.Errorf("--arch %s: catalog %s has no %s kernels (it has %s): give a catalog with `arch: %s` entries, or %s",
			arch, cmp.Or(catalog, "default"), arch, strings.Join(other, ", "), arch, hint)}
	}
	return cat.Select(names)
}

// selectKernels keeps the named kernels of cat (all when names is empty),
// in catalog order, then the shard's share of them.
func selectKernels(cat *kernels.Catalog, names []string, shard Shard) (*kernels.Catalog, error) {
	for _, n := range names {
		found := false
		for _, e := range cat.Kernels {
			found = found || e.Name == n
		}
		if !found {
			var known []string
			for _, e := range cat.Kernels {
				known = append(known, e.Name)
			}
			return nil, fmt.Errorf("kernel %q is not in the catalog: known kernels are %v", n, known)
		}
	}
	var named, picked []string
	for _, e := range cat.Kernels {
		if len(names) == 0 || contains(names, e.Name) {
			named = append(named, e.Name)
		}
	}
	for i, n := range named {
		if shard.Has(i) {
			picked = append(picked, n)
		}
	}
	if len(picked) == 0 { // this shard has no kernel (Select would take all)
		empty := *cat
		empty.Kernels = nil
		return &empty, nil
	}
	return cat.Select(picked)
}

func hostFacts() report.Host {
	return report.Host{Go: runtime.Version(), CPUs: runtime.NumCPU(), Kmatrix: Build().String()}
}
