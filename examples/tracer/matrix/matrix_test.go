// Package matrix is the example project's kernel matrix as a Go test:
// `go test ./matrix/` boots the default kernels and runs the probe
// package's tests in each, one subtest per kernel, test and subtest.
package matrix

import (
	"os"
	"testing"

	kmatrix "github.com/kmatrix/kmatrix/matrix"
)

func TestMatrix(t *testing.T) {
	kmatrix.Test(t, kmatrix.Options{
		GoTests: []string{"../probe"},
		OutDir:  os.Getenv("KMATRIX_REPORT_DIR"),
	})
}
