// SPDX-License-Identifier: GPL-2.0
// Test fixture: the init never returns and never lets its CPU go. With
// preemption disabled even a preemptible kernel (7.x's lazy preemption)
// cannot schedule anything else on that CPU, so the soft-lockup detector
// reports it after 2 * watchdog_thresh (20 s). kmatrix must stop the guest
// soon after and call it a timeout, with the kernel's report as evidence.
#include <linux/module.h>
#include <linux/preempt.h>
#include <asm/processor.h>

// 1 unless set at load: the compiler cannot prove the loop endless.
static int spin = 1;
module_param(spin, int, 0);

static int __init spinonload_init(void)
{
	preempt_disable();
	while (READ_ONCE(spin))
		cpu_relax();
	preempt_enable();
	return 0;
}

module_init(spinonload_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kmatrix test fixture: spins at load");
