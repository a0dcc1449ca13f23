package matrix

import (
	"os"
	"testing"
)

// TestMatrix is the default matrix as a Go test, through the same code as
// `kmatrix run` (Test calls Run): one subtest per kernel, and below it one
// per payload and check, so
//
//	go test ./matrix -run 'TestMatrix/debian-sid'
//
// shows one kernel's cells and `go test -json` every cell. A cell's
// evidence (verifier log, compiler error, console excerpt) is in its
// subtest's output. The report is written to $KMATRIX_REPORT_DIR when it
// is set.
func TestMatrix(t *testing.T) {
	Test(t, Options{OutDir: os.Getenv("KMATRIX_REPORT_DIR"), Progress: os.Stderr})
}
