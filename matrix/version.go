package matrix

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// BuildInfo says which kmatrix this is, from the Go build information the
// toolchain stamps into every binary: `kmatrix version` prints it and every
// report records its String (report.Host.Kmatrix), so a report names the
// code that made it.
type BuildInfo struct {
	// Module is the main module's path, github.com/kmatrix/kmatrix.
	Module string
	// Version is the module version: a tag ("v0.3.0") for `go install
	// …@v0.3.0`, a pseudo-version for a build in a checkout (Go 1.24+
	// stamps one from the VCS), "(devel)" when the toolchain knew none.
	Version string
	// Revision is the VCS commit the binary was built from, and Modified
	// whether the work tree had uncommitted changes; both empty for a
	// build from the module cache or with -buildvcs=false.
	Revision string
	Modified bool
	// Time is the commit's time (RFC 3339), when known.
	Time string
	// Go is the toolchain that built the binary, e.g. "go1.26.8".
	Go string
}

// Build returns the running binary's BuildInfo.
func Build() BuildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return BuildInfo{Version: "(devel)", Go: runtime.Version()}
	}
	return buildInfo(bi)
}

func buildInfo(bi *debug.BuildInfo) BuildInfo {
	b := BuildInfo{Module: bi.Main.Path, Version: bi.Main.Version, Go: bi.GoVersion}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		case "vcs.time":
			b.Time = s.Value
		}
	}
	return b
}

// String is the version in one line: "v0.3.0", "v0.3.0 (abc123def456)" for
// a build at a tag in a checkout, "(devel) abc123def456-dirty" when only the
// revision is known; a pseudo-version already holds its revision and
// "+dirty", so nothing is repeated.
func (b BuildInfo) String() string {
	rev := b.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" || strings.Contains(b.Version, rev) {
		return b.Version
	}
	if b.Modified {
		rev += "-dirty"
	}
	if b.Version == "(devel)" {
		return b.Version + " " + rev
	}
	return b.Version + " (" + rev + ")"
}
