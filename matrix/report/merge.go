package report

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// ErrConflict is wrapped by the error of a merge whose inputs disagree: the
// same cell with two results, or the same kernel name for two kernels.
var ErrConflict = errors.New("reports disagree")

// Merge joins reports into one: normally the shard reports of one run
// (each run with a different `--shard i/n`), so that the merge of all
// shards equals the report of the unsharded run. Kernels and cells are the
// union of the inputs'. A cell or kernel present in several inputs must be
// identical in all of them, else Merge fails with an error wrapping
// ErrConflict that names it and both inputs. Shards missing from a set of
// shard reports are listed in the result's MissingShards; the result's
// Shard is empty. GeneratedAt is the latest of the inputs'; Host fields
// that differ between inputs are joined ("kvm, tcg"). The inputs are not
// modified.
func Merge(reports ...*Report) (*Report, error) {
	if len(reports) == 0 {
		return nil, errors.New("merge: no reports given; pass one report.json per shard")
	}
	type input struct {
		r     *Report
		name  string // "report 2 (shard 2/4)", for errors
		shard int
	}
	ins := make([]input, len(reports))
	for i, r := range reports {
		if r == nil {
			return nil, fmt.Errorf("merge: report %d is nil", i+1)
		}
		in := input{r: r, name: fmt.Sprintf("report %d", i+1)}
		if r.Shard != "" {
			in.name += " (shard " + r.Shard + ")"
		}
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("merge: %s: %w", in.name, err)
		}
		if r.Shard != "" {
			in.shard, _, _ = ParseShard(r.Shard) // Validate checked it
		}
		ins[i] = in
	}
	// Work in shard order, so the result does not depend on the order of
	// the command line.
	slices.SortStableFunc(ins, func(a, b input) int { return cmp.Compare(a.shard, b.shard) })

	missing, err := missingShards(reports)
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	out := &Report{Schema: Schema, MissingShards: missing, Kernels: []Kernel{}, Cells: []Cell{}}

	kernelFrom := make(map[string]int)   // kernel name → index into out.Kernels
	kernelSrc := make(map[string]string) // kernel name → input name
	cellFrom := make(map[cellKey]int)
	cellSrc := make(map[cellKey]string)
	var hosts []Host
	for _, in := range ins {
		if in.r.GeneratedAt.After(out.GeneratedAt) {
			out.GeneratedAt = in.r.GeneratedAt
		}
		hosts = append(hosts, in.r.Host)
		for _, k := range in.r.Kernels {
			j, seen := kernelFrom[k.Name]
			if !seen {
				kernelFrom[k.Name] = len(out.Kernels)
				kernelSrc[k.Name] = in.name
				out.Kernels = append(out.Kernels, k)
				continue
			}
			merged, field, x, y := mergeKernel(out.Kernels[j], k)
			if field != "" {
				return nil, fmt.Errorf("merge: kernel %q: %w: %s has %s %q, %s has %q; merge the shards of one run",
					k.Name, ErrConflict, kernelSrc[k.Name], field, x, in.name, y)
			}
			out.Kernels[j] = merged
		}
		for _, c := range in.r.Cells {
			j, seen := cellFrom[c.key()]
			if !seen {
				cellFrom[c.key()] = len(out.Cells)
				cellSrc[c.key()] = in.name
				out.Cells = append(out.Cells, cloneCell(c))
				continue
			}
			if prev := out.Cells[j]; !sameCell(prev, c) {
				what := fmt.Sprintf("%s in %s and %s in %s", prev.Outcome, cellSrc[c.key()], c.Outcome, in.name)
				if prev.Outcome == c.Outcome {
					what = fmt.Sprintf("%s in both %s and %s, with different evidence or timing", c.Outcome, cellSrc[c.key()], in.name)
				}
				return nil, fmt.Errorf("merge: cell %s: %w: it is %s; merge the shards of one run, each once", c.ID(), ErrConflict, what)
			}
		}
	}
	out.Host = mergeHosts(hosts)
	out.Finalize()
	if err := out.Validate(); err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	return out, nil
}

// missingShards works out which shards of an "i/n" set no input covers.
// A report without Shard covers every shard (it is a whole run), unless it
// is itself an incomplete merge, which covers all but its MissingShards.
func missingShards(reports []*Report) ([]string, error) {
	n := 0
	setN := func(m int, what string) error {
		if n != 0 && m != n {
			return fmt.Errorf("%w: %s is of %d shards, another report of %d; merge the shards of one run", ErrConflict, what, m, n)
		}
		n = m
		return nil
	}
	covered := make(map[int]bool)
	whole := false
	for _, r := range reports {
		switch {
		case r.Shard != "":
			i, m, _ := ParseShard(r.Shard)
			if err := setN(m, "shard "+r.Shard); err != nil {
				return nil, err
			}
			covered[i] = true
		case len(r.MissingShards) > 0:
			gone := make(map[int]bool)
			for _, s := range r.MissingShards {
				i, m, err := ParseShard(s)
				if err != nil {
					return nil, fmt.Errorf("missing_shards: %w", err)
				}
				if err := setN(m, "a merge missing shard "+s); err != nil {
					return nil, err
				}
				gone[i] = true
			}
			for i := 1; i <= n; i++ {
				if !gone[i] {
					covered[i] = true
				}
			}
		default:
			whole = true
		}
	}
	if whole || n == 0 {
		return nil, nil
	}
	var missing []string
	for i := 1; i <= n; i++ {
		if !covered[i] {
			missing = append(missing, fmt.Sprintf("%d/%d", i, n))
		}
	}
	return missing, nil
}

// mergeKernel joins two records of one kernel: its identity must agree
// (else it returns the first field that differs, with both values); timing
// facts missing from one are taken from the other.
func mergeKernel(a, b Kernel) (_ Kernel, field, x, y string) {
	for _, f := range []struct{ name, x, y string }{
		{"release", a.Release, b.Release}, {"version", a.Version, b.Version}, {"suite", a.Suite, b.Suite},
		{"package", a.Package, b.Package}, {"package_version", a.PackageVersion, b.PackageVersion},
		{"sha256", a.SHA256, b.SHA256}, {"compiler", a.Compiler, b.Compiler}, {"btf", fmt.Sprint(a.BTF), fmt.Sprint(b.BTF)},
	} {
		if f.x != f.y {
			return a, f.name, f.x, f.y
		}
	}
	a.Accel = cmp.Or(a.Accel, b.Accel)
	a.BootMS = cmp.Or(a.BootMS, b.BootMS)
	a.FloorMS = cmp.Or(a.FloorMS, b.FloorMS)
	return a, "", "", ""
}

// sameCell compares cells, an empty and a missing Facts map being equal
// (JSON cannot tell them apart).
func sameCell(a, b Cell) bool {
	if len(a.Evidence.Facts) == 0 && len(b.Evidence.Facts) == 0 {
		a.Evidence.Facts, b.Evidence.Facts = nil, nil
	}
	return reflect.DeepEqual(a, b)
}

func cloneCell(c Cell) Cell {
	if c.Evidence.Facts != nil {
		f := make(map[string]string, len(c.Evidence.Facts))
		for k, v := range c.Evidence.Facts {
			f[k] = v
		}
		c.Evidence.Facts = f
	}
	if c.Expected != nil {
		e := *c.Expected
		e.Outcomes = slices.Clone(e.Outcomes)
		c.Expected = &e
	}
	return c
}

// mergeHosts keeps what the hosts agree on and lists what they do not.
func mergeHosts(hs []Host) Host {
	join := func(get func(Host) string) string {
		var vals []string
		for _, h := range hs {
			if v := get(h); v != "" && !slices.Contains(vals, v) {
				vals = append(vals, v)
			}
		}
		slices.Sort(vals)
		return strings.Join(vals, ", ")
	}
	h := Host{
		Accel:   join(func(h Host) string { return h.Accel }),
		QEMU:    join(func(h Host) string { return h.QEMU }),
		Go:      join(func(h Host) string { return h.Go }),
		Kmatrix: join(func(h Host) string { return h.Kmatrix }),
	}
	for i, x := range hs {
		if i == 0 {
			h.CPUs = x.CPUs
		} else if x.CPUs != h.CPUs {
			h.CPUs = 0 // they differ: no one number is true
			break
		}
	}
	return h
}
