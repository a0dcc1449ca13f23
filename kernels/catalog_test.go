package kernels

import (
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
		{"unknown field", "kernels:\n  - name: a\n    suite: sid\n    flavor: amd64\n", 4, "flavor", "unknown field; known: name, suite, flavour"},
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
