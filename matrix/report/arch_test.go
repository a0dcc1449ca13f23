package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestArchShown: an arm64 kernel's arch is in the JSON and beside its
// compiler in every rendering; amd64 kernels read as they did before
// arches, and a report without arch means amd64.
func TestArchShown(t *testing.T) {
	r := sample(t)
	require.GreaterOrEqual(t, len(r.Kernels), 2)
	r.Kernels[1].Arch = "arm64"
	r.Kernels[1].Release = "6.1.0-57-cloud-arm64"
	r.Finalize()
	assert.Equal(t, "amd64", r.Kernels[0].GetArch(), "no arch: amd64")
	assert.Empty(t, r.Kernels[0].ArchTag())

	var js bytes.Buffer
	require.NoError(t, r.WriteJSON(&js))
	assert.Contains(t, js.String(), `"arch": "arm64"`)
	back, err := Parse(js.Bytes())
	require.NoError(t, err)
	assert.Equal(t, "arm64", back.Kernels[1].Arch)

	md := r.Markdown()
	assert.Contains(t, md, "<sub>6.1.0-57-cloud-arm64</sub><br><sub>6.1.192-1 · gcc-12 · arm64</sub>")
	assert.Equal(t, 1, strings.Count(md, "· arm64</sub>"), "only the arm64 kernel has an arch tag")

	var txt bytes.Buffer
	require.NoError(t, r.WriteText(&txt, false))
	assert.Contains(t, txt.String(), "gcc-12 arm64")

	var html bytes.Buffer
	require.NoError(t, r.WriteHTML(&html))
	assert.Contains(t, html.String(), `<span class="tag">arm64</span>`)
	assert.Contains(t, html.String(), "<th>Arch</th>")

	var junit bytes.Buffer
	require.NoError(t, r.WriteJUnit(&junit))
	assert.Contains(t, junit.String(), `<property name="arch" value="arm64">`)

	base := sample(t)
	d := Diff(base, r)
	var dt bytes.Buffer
	require.NoError(t, d.WriteText(&dt))
	assert.Contains(t, dt.String(), "arch amd64 → arm64")
}
