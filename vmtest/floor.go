package vmtest

import (
	"context"
	"fmt"
	"time"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/vmtest/internal/wire"
)

// BootFloor measures the bare-boot floor of a kernel: QEMU starting, the
// kernel booting, and an init that powers off before doing anything. It is
// what every run on that kernel costs at least, so cell times are judged
// against it (a cell at 1.1× its floor spends 10% on its own work).
func BootFloor(ctx context.Context, vmlinuz string) (time.Duration, error) {
	p, err := newPlan(Spec{Kernel: vmlinuz})
	if err != nil {
		return 0, err
	}
	acc, err := chooseAccel(ctx, p)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	res, err := boot(ctx, p, acc.Accel, &wire.Spec{PowerOffOnly: true}, nil)
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	if res.Outcome != outcome.Pass {
		return 0, fmt.Errorf("%w: floor boot of %s ended in %s: %s", ErrInfra, vmlinuz, res.Outcome, res.Err)
	}
	return d, nil
}
