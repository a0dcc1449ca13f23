package bpf

import (
	"bytes"
	"embed"
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/bpf/internal/srcsum"
)

// The generator's inputs and outputs, embedded so the check runs the same
// on a laptop, in CI and inside a guest that has only the test binary.
//
//go:embed c/*.c c/*.h testdata/*.c generate.go generated.sha256
//go:embed tracer_bpfel.o testdata/*.o
var generatorFiles embed.FS

// TestGeneratedObjectsUpToDate fails when a C source (or generate.go)
// changed after the objects were generated, or an object was replaced by
// hand: the committed objects must be what the committed sources compile to.
func TestGeneratedObjectsUpToDate(t *testing.T) {
	recorded := readRecordedSums(t, generatorFiles)
	actual, err := srcsum.Compute(generatorFiles)
	require.NoError(t, err)
	require.NoError(t, srcsum.Check(recorded, actual))
	evidence(t, "bpf_sources_sha256", actual.Sources)
}

// TestGeneratedObjectsStaleDetected edits a copy of the sources and expects
// the staleness error a developer would see.
func TestGeneratedObjectsStaleDetected(t *testing.T) {
	m := fstest.MapFS{}
	require.NoError(t, fs.WalkDir(generatorFiles, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(generatorFiles, p)
		m[p] = &fstest.MapFile{Data: b}
		return err
	}))
	m["c/tracer.c"].Data = append(bytes.Clone(m["c/tracer.c"].Data), "\n// an edit\n"...)
	recorded := readRecordedSums(t, m)
	actual, err := srcsum.Compute(m)
	require.NoError(t, err)
	err = srcsum.Check(recorded, actual)
	require.ErrorIs(t, err, srcsum.ErrStale)
	assert.Contains(t, err.Error(), "BPF objects are stale: run make generate")
	assert.Contains(t, err.Error(), "the C sources or generate.go changed")
}

func readRecordedSums(t *testing.T, fsys fs.FS) srcsum.Sums {
	t.Helper()
	f, err := fsys.Open(srcsum.FileName)
	require.NoError(t, err)
	defer f.Close()
	s, err := srcsum.Parse(f)
	require.NoError(t, err)
	return s
}
