// Package kernelstest gives tests the kernels they run against. Tests in
// every package get kernels only through here, so the whole suite shares
// one cache and one way to choose kernels.
//
// KMATRIX_KERNELS_DIR, when set, points at a directory of local kernels
// (one sub-directory per kernel, named after it, each as kernels.LoadLocal
// expects) and no download happens. Otherwise the default catalog is
// resolved through the committed lock file and fetched into the cache.
package kernelstest

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/kmatrix/kmatrix/kernels"
)

// Default returns every kernel of the default catalog (or of
// KMATRIX_KERNELS_DIR), fetched, with headers, in catalog order.
func Default(tb testing.TB) []*kernels.Kernel {
	tb.Helper()
	if dir := os.Getenv("KMATRIX_KERNELS_DIR"); dir != "" {
		return local(tb, dir)
	}
	return fetchDefault(tb)
}

// Get returns one kernel by name from Default.
func Get(tb testing.TB, name string) *kernels.Kernel {
	tb.Helper()
	for _, k := range Default(tb) {
		if k.Name == name {
			return k
		}
	}
	tb.Fatalf("kernel %q is not in the default catalog", name)
	return nil
}

func local(tb testing.TB, dir string) []*kernels.Kernel {
	ents, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatalf("KMATRIX_KERNELS_DIR: %v", err)
	}
	var ks []*kernels.Kernel
	for _, e := range ents {
		k, err := kernels.LoadLocal(e.Name(), filepath.Join(dir, e.Name()))
		if err != nil {
			tb.Fatalf("KMATRIX_KERNELS_DIR: %v", err)
		}
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i].Version.Less(ks[j].Version) })
	return ks
}
