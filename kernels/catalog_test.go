package kernels

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultCatalog(t *testing.T) {
	c, err := DefaultCatalog()
	require.NoError(t, err)
	var names []string
	for _, e := range c.Kernels {
		names = append(names, e.Name)
		assert.Equal(t, DefaultFlavour, e.Flavour)
		assert.Equal(t, DefaultSource, e.Source)
	}
	assert.Equal(t, []string{"debian-bullseye", "debian-bookworm", "debian-trixie", "debian-sid"}, names)
	l, err := parseLock("embedded", c.lock)
	require.NoError(t, err)
	for _, e := range c.Kernels {
		assert.True(t, l.find(e.Name).matches(e), "catalog.lock pins %s; run `kmatrix kernels --float --catalog kernels/catalog.yaml`", e.Name)
	}
}

// TestArm64Catalog: the shipped arm64 catalog names arm64 kernels of
// bookworm and sid, with the arm64 defaults, all pinned by arm64.lock.
func TestArm64Catalog(t *testing.T) {
	c, err := DefaultArm64Catalog()
	require.NoError(t, err)
	var names []string
	for _, e := range c.Kernels {
		names = append(names, e.Name)
		assert.Equal(t, "arm64", e.Arch)
		assert.Equal(t, "cloud-arm64", e.Flavour)
		assert.Equal(t, "linux-signed-arm64", e.Source)
	}
	assert.Equal(t, []string{"debian-bookworm-arm64", "debian-sid-arm64"}, names)
	l, err := parseLock("embedded", c.lock)
	require.NoError(t, err)
	for _, e := range c.Kernels {
		r := l.find(e.Name)
		require.True(t, r.matches(e), "arm64.lock pins %s; run `kmatrix kernels --float --catalog kernels/arm64.yaml`", e.Name)
		assert.Equal(t, "arm64", r.GetArch())
		for _, p := range r.Packages {
			if strings.HasPrefix(p.Name, "linux-kbuild-") {
				// kbuild's programs run on the machine that builds the modules.
				assert.Equal(t, BuildArch(), p.Arch, p.Name)
				continue
			}
			assert.Contains(t, []string{"arm64", "all"}, p.Arch, p.Name)
		}
	}
}

// TestLockWithForeignKbuildIsStale: a lock whose headers pin the kernel's
// own arch's linux-kbuild (what kmatrix resolved before kbuild came from
// the build machine's arch) no longer matches its entry, so it is
// resolved again instead of fetching programs the host cannot run.
func TestLockWithForeignKbuildIsStale(t *testing.T) {
	foreign := "arm64"
	if BuildArch() == "arm64" {
		foreign = "amd64"
	}
	e := Entry{Name: "k", Suite: "sid", Arch: foreign, Flavour: FlavourOf(foreign), Source: SourceOf(foreign)}
	r := &Resolved{Name: "k", Suite: "sid", Arch: foreign, Flavour: e.Flavour, Source: e.Source, Packages: []Package{
		{Name: "linux-image-7.2.13+deb14-" + e.Flavour, Arch: foreign},
		{Name: "linux-headers-7.2.13+deb14-" + e.Flavour, Arch: foreign, Headers: true},
		{Name: "linux-headers-7.2.13+deb14-common", Arch: "all", Headers: true},
		{Name: "linux-kbuild-7.2.13+deb14", Arch: foreign, Headers: true},
	}}
	assert.False(t, r.matches(e))
	r.Packages[3].Arch = BuildArch()
	assert.True(t, r.matches(e))
}

// TestCatalogArch: arch picks the flavour and source defaults; a flavour
// alone implies its arch; an old lock without arch is amd64.
func TestCatalogArch(t *testing.T) {
	c, err := ParseCatalog("a.yaml", []byte("kernels:\n  - name: a\n    suite: sid\n    arch: arm64\n  - name: b\n    suite: sid\n    flavour: arm64\n  - name: c\n    suite: sid\n"))
	require.NoError(t, err)
	assert.Equal(t, Entry{Name: "a", Suite: "sid", Arch: "arm64", Flavour: "cloud-arm64", Source: "linux-signed-arm64", Line: 2}, c.Kernels[0])
	assert.Equal(t, Entry{Name: "b", Suite: "sid", Arch: "arm64", Flavour: "arm64", Source: "linux-signed-arm64", Line: 5}, c.Kernels[1])
	assert.Equal(t, Entry{Name: "c", Suite: "sid", Arch: "amd64", Flavour: "cloud-amd64", Source: "linux-signed-amd64", Line: 8}, c.Kernels[2])
	old := &Resolved{Name: "c", Suite: "sid", Flavour: "cloud-amd64", Source: "linux-signed-amd64"}
	assert.True(t, old.matches(c.Kernels[2]), "a lock entry without arch is amd64")
	old.Flavour = "cloud-arm64"
	assert.False(t, old.matches(c.Kernels[0]), "a lock entry without arch is not an arm64 kernel")
}

func TestMalformedCatalog(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		line       int
		field, msg string
	}{
		{"not yaml", "kernels:\n  - name: a\n\tsuite: x\n", 3, "", "not valid YAML"},
		{"bad indent on line 4", "kernels:\n  - name: a\n    suite: bookworm\n   bad: x\n", 4, "", "not valid YAML"},
		{"tab on line 5", "kernels:\n  - name: a\n    suite: bookworm\n  - name: b\n\tsuite: x\n", 5, "", "not valid YAML"},
		{"unclosed quote", "kernels:\n  - name: a\n    suite: bookworm\n  - name: \"b\n    suite: sid\n", 4, "", "not valid YAML"},
		{"duplicate key", "kernels:\n  - name: a\n    suite: bookworm\n    version: 6.1.1-1\n    version: 6.1.2-1\n", 5, "version", "given twice in this kernel (first on line 4)"},
		{"duplicate kernels", "kernels:\n  - name: a\n    suite: sid\nkernels:\n  - name: b\n    suite: sid\n", 4, "kernels", "given twice"},
		{"not a mapping", "- a\n", 1, "", `want a mapping with a "kernels" list`},
		{"unknown top field", "kernel:\n  - name: a\n", 1, "kernel", "unknown top-level field"},
		{"empty list", "kernels: []\n", 1, "kernels", "non-empty list"},
		{"entry not mapping", "kernels:\n  - bookworm\n", 2, "", "want each kernel to be a mapping"},
		{"unknown field", "kernels:\n  - name: a\n    suite: sid\n    flavor: amd64\n", 4, "flavor", "unknown field; known: name, suite, arch, flavour"},
		{"missing name", "kernels:\n  - suite: sid\n", 2, "name", "missing"},
		{"bad name", "kernels:\n  - name: a b\n    suite: sid\n", 2, "name", "use letters"},
		{"duplicate name", "kernels:\n  - name: a\n    suite: sid\n  - name: a\n    suite: trixie\n", 4, "name", "already used on line 2"},
		{"missing suite", "kernels:\n  - name: a\n", 2, "suite", "missing: name a Debian suite"},
		{"pocket as suite", "kernels:\n  - name: a\n    suite: bookworm-security\n", 3, "suite", "is a pocket: give the suite (bookworm)"},
		{"bad suite", "kernels:\n  - name: a\n    suite: Book Worm\n", 3, "suite", "not a suite name"},
		{"list value", "kernels:\n  - name: a\n    suite: [sid]\n", 3, "suite", "want a non-empty string"},
		{"bad version", "kernels:\n  - name: a\n    suite: sid\n    version: latest\n", 4, "version", "not a Debian package version"},
		{"bad package", "kernels:\n  - name: a\n    suite: sid\n    package: linux-headers-1\n", 4, "package", "want a linux-image-"},
		{"package flavour", "kernels:\n  - name: a\n    suite: sid\n    package: linux-image-1.0-1-amd64\n", 4, "package", `does not end in the flavour "cloud-amd64"`},
		{"bad series", "kernels:\n  - name: a\n    suite: sid\n    series: 6.16.3\n", 4, "series", "want MAJOR.MINOR (e.g. 6.16)"},
		{"bad arch", "kernels:\n  - name: a\n    suite: sid\n    arch: aarch64\n", 4, "arch", `"aarch64" is not an architecture kmatrix boots: want one of amd64, arm64`},
		{"arch and flavour disagree", "kernels:\n  - name: a\n    suite: sid\n    arch: arm64\n    flavour: cloud-amd64\n", 5, "flavour", `"cloud-amd64" is a flavour of amd64, not of arch arm64: use cloud-arm64`},
		{"local with arch", "kernels:\n  - name: a\n    local: ./k\n    arch: arm64\n", 4, "arch", "read from its vmlinuz"},
		{"local and suite", "kernels:\n  - name: a\n    local: ./k\n    suite: sid\n", 3, "local", "takes no suite"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCatalog("my.yaml", []byte(tc.yaml))
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrCatalog)
			var ce *CatalogError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tc.line, ce.Line, "line")
			assert.Equal(t, tc.field, ce.Field, "field")
			assert.Contains(t, err.Error(), tc.msg)
			assert.Contains(t, err.Error(), "my.yaml:")
		})
	}
}

func TestCatalogLocalRelative(t *testing.T) {
	c := writeCatalog(t, "kernels:\n  - name: mine\n    local: ./k\n")
	assert.True(t, len(c.Kernels[0].Local) > 0 && c.Kernels[0].Local[0] == '/', "local paths are relative to the catalog file")
	_, err := c.Select([]string{"mine", "other"})
	assert.ErrorContains(t, err, "kernel other not in the catalog; it has: mine")
}
