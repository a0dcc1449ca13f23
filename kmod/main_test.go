package kmod

import (
	"fmt"
	"os"
	"testing"

	"github.com/kmatrix/kmatrix/vmtest/prestart"
)

// TestMain lets kmatrix prestart this binary in its guest snapshots
// (package vmtest/prestart): a restored run then skips the Go runtime's
// and the packages' start-up, which costs 0.15 s under TCG. There is
// nothing to warm up: the module is each run's own.
func TestMain(m *testing.M) {
	if _, err := prestart.Await(nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Exit(m.Run())
}
