package kernels

import (
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
// works once installed in /. Those paths are rewritten to point into the
// final cache entry; the relative symlinks (scripts -> ../../lib/linux-kbuild-
// X/scripts) resolve because every package is unpacked into one root.
func (s *session) buildHeaders(ctx context.Context, r Resolved, tmp, final string) (*entryInfo, error) {
	rel := filepath.Join("root", "usr", "src", "linux-headers-"+r.Release)
	mk := filepath.Join(tmp, rel, "Makefile")
	b, err := os.ReadFile(mk)
	if err != nil {
		return nil, fmt.Errorf("headers of %s: %w (is linux-headers-%s among the packages?)", r.Release, err, r.Release)
	}
	fixed := absUsrRE.ReplaceAll(b, []byte("${1}"+filepath.Join(final, "root")+"/usr/${2}/"))
	if err := WriteFileAtomic(mk, fixed, 0o644); err != nil {
		return nil, &writeError{err}
	}
	return &entryInfo{Headers: rel}, nil
}

var absUsrRE = regexp.MustCompile(`(?m)(^|[\s=:])/usr/(src|lib)/`)
