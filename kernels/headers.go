package kernels

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// buildHeaders turns the unpacked headers packages into a tree usable as
// `make -C <tree> M=<dir> modules`. Debian's flavour Makefile includes the
// -common tree by absolute path ("include /usr/src/linux-headers-X-common/
// Makefile"; sid's 7.x also sets KBUILD_OUTPUT=/usr/src/...), which only
// works once installed in /. Those paths are rewritten relative to the
// Makefile's own location, resolved by make when it reads it, so the cache
// can be moved or copied (a copy never builds against the original's
// headers). The relative symlinks (scripts -> ../../lib/linux-kbuild-X/
// scripts) resolve because every package is unpacked into one root. A tree
// missing what every module build reads is refused here.
func (s *session) buildHeaders(ctx context.Context, r Resolved, tmp, final string) (*entryInfo, error) {
	rel := filepath.Join("root", "usr", "src", "linux-headers-"+r.Release)
	mk := filepath.Join(tmp, rel, "Makefile")
	if _, err := os.Stat(mk); err != nil {
		return nil, fmt.Errorf("headers of %s: %w (is linux-headers-%s among the packages?)", r.Release, err, r.Release)
	}
	if err := relocateMakefile(mk); err != nil {
		return nil, &writeError{err}
	}
	for _, f := range []string{".config", "Module.symvers", "include/generated/autoconf.h", "include/config/auto.conf", "scripts/Makefile.build"} {
		if _, err := os.Stat(filepath.Join(tmp, rel, f)); err != nil {
			return nil, fmt.Errorf("headers of %s: the tree lacks %s, which every module build needs (%v): the packages %s are incomplete", r.Release, f, err, pkgNames(r.headers()))
		}
	}
	return &entryInfo{Headers: rel}, nil
}

// usrVar is set, first thing in a relocated flavour Makefile, to the
// usr/ directory of the root the Makefile is in (it is in usr/src/X/).
const usrVar = "kmatrix_usr"

var relocatedLine = usrVar + " := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/../..)\n"

// absUsrRE finds /usr/src/ and /usr/lib/ paths in a flavour Makefile, and
// also (for entries of older kmatrix versions) the absolute cache paths
// they were rewritten to, <cache>/headers/<key>/root/usr/src/.
var absUsrRE = regexp.MustCompile(`(?m)(^|[\s=:])(?:/\S*?/root)?/usr/(src|lib)/`)

// relocateMakefile rewrites mk's absolute /usr paths to $(kmatrix_usr);
// it is idempotent.
func relocateMakefile(mk string) error {
	b, err := os.ReadFile(mk)
	if err != nil {
		return err
	}
	if bytes.HasPrefix(b, []byte(relocatedLine)) {
		return nil
	}
	fixed := absUsrRE.ReplaceAll(b, []byte("${1}$$("+usrVar+")/${2}/"))
	return WriteFileAtomic(mk, append([]byte(relocatedLine), fixed...), 0o644)
}
