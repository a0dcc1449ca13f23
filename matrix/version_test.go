package matrix

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestBuildInfoString(t *testing.T) {
	const rev = "abc123def4567890abc123def4567890abc123de"
	bi := func(version string, settings ...string) *debug.BuildInfo {
		b := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/kmatrix/kmatrix", Version: version}}
		for i := 0; i+1 < len(settings); i += 2 {
			b.Settings = append(b.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return b
	}
	for _, c := range []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"go install …@v0.3.0: no VCS in the module cache", bi("v0.3.0"), "v0.3.0"},
		{"a build at a tag in a checkout", bi("v0.3.0", "vcs.revision", rev, "vcs.modified", "false"), "v0.3.0 (abc123def456)"},
		{"a tag with local changes", bi("v0.3.0", "vcs.revision", rev, "vcs.modified", "true"), "v0.3.0 (abc123def456-dirty)"},
		{"(devel) with a revision", bi("(devel)", "vcs.revision", rev, "vcs.modified", "true"), "(devel) abc123def456-dirty"},
		{"a pseudo-version holds its revision", bi("v0.0.0-20261201211608-abc123def456+dirty", "vcs.revision", rev, "vcs.modified", "true"), "v0.0.0-20261201211608-abc123def456+dirty"},
		{"nothing known", bi(""), "(devel)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, buildInfo(c.bi).String())
		})
	}
	b := buildInfo(bi("v0.3.0", "vcs.revision", rev, "vcs.modified", "true", "vcs.time", "2026-12-01T21:16:08Z"))
	assert.Equal(t, BuildInfo{Module: "github.com/kmatrix/kmatrix", Version: "v0.3.0", Revision: rev, Modified: true, Time: "2026-12-01T21:16:08Z", Go: "go1.26.8"}, b)
}

func TestReportsRecordTheBuild(t *testing.T) {
	assert.Equal(t, Build().String(), hostFacts().Kmatrix)
	assert.NotEmpty(t, hostFacts().Kmatrix)
}
