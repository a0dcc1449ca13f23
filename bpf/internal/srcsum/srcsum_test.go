package srcsum

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fakeTree() fstest.MapFS {
	m := fstest.MapFS{
		"c/tracer.c":       {Data: []byte("int x;")},
		"c/kernel.h":       {Data: []byte("#pragma once")},
		"testdata/a.c":     {Data: []byte("int y;")},
		"generate.go":      {Data: []byte("package bpf")},
		"unrelated/readme": {Data: []byte("not hashed")},
	}
	for _, o := range Objects {
		m[o] = &fstest.MapFile{Data: []byte("ELF " + o)}
	}
	return m
}

func TestRoundTrip(t *testing.T) {
	s, err := Compute(fakeTree())
	require.NoError(t, err)
	s.Toolchain = []string{"clang 14", "libbpf 1.1"}
	p, err := Parse(strings.NewReader(string(s.Format())))
	require.NoError(t, err)
	assert.Equal(t, s, p)
	require.NoError(t, Check(p, s))
}

func TestSourcesSumCoversNamesAndContents(t *testing.T) {
	base, err := Compute(fakeTree())
	require.NoError(t, err)

	edited := fakeTree()
	edited["c/kernel.h"].Data = []byte("#pragma once\n")
	s, err := Compute(edited)
	require.NoError(t, err)
	assert.NotEqual(t, base.Sources, s.Sources, "an edited header")

	renamed := fakeTree()
	renamed["c/kernel2.h"] = renamed["c/kernel.h"]
	delete(renamed, "c/kernel.h")
	s, err = Compute(renamed)
	require.NoError(t, err)
	assert.NotEqual(t, base.Sources, s.Sources, "a renamed header")

	unrelated := fakeTree()
	unrelated["unrelated/readme"].Data = []byte("changed")
	s, err = Compute(unrelated)
	require.NoError(t, err)
	assert.Equal(t, base.Sources, s.Sources, "a file the generator does not read")
}

func TestCheckNamesWhatIsStale(t *testing.T) {
	recorded, err := Compute(fakeTree())
	require.NoError(t, err)
	tree := fakeTree()
	tree[Objects[0]].Data = []byte("hand-edited")
	actual, err := Compute(tree)
	require.NoError(t, err)
	err = Check(recorded, actual)
	require.ErrorIs(t, err, ErrStale)
	assert.Contains(t, err.Error(), "BPF objects are stale: run make generate")
	assert.Contains(t, err.Error(), Objects[0]+" is not the object the generator wrote")
	assert.NotContains(t, err.Error(), "C sources")
}

func TestComputeMissingObject(t *testing.T) {
	tree := fakeTree()
	delete(tree, Objects[1])
	_, err := Compute(tree)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "generated object missing")
	assert.Contains(t, err.Error(), Objects[1])
	assert.Contains(t, err.Error(), "run make generate")
}

func TestComputeWrongDirectory(t *testing.T) {
	_, err := Compute(fstest.MapFS{"README.md": {Data: []byte("x")}})
	require.Error(t, err)
	assert.EqualError(t, err, `srcsum: no file matches "c/*.c": is this package bpf's directory?`)
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"sources abc\nbogus 1\n", `generated.sha256 line 2: "bogus 1": unknown key "bogus" (want sources, object or toolchain)`},
		{"sources abc\nobject deadbeef\n", `generated.sha256 line 2: "object deadbeef": want "object <sha256> <path>"`},
		{"# only a comment\n", `generated.sha256: no "sources" line: run make generate`},
	} {
		_, err := Parse(strings.NewReader(c.in))
		assert.EqualError(t, err, c.want, "input %q", c.in)
	}
}
