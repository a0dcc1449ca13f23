// SPDX-License-Identifier: GPL-2.0
// Test fixture: the init sleeps in TASK_UNINTERRUPTIBLE and nothing wakes
// it, so the loader hangs in D state (no signal ends it). The hung-task
// detector reports it once it has slept hung_task_timeout_secs (vmtest
// sets 20 on the kernel command line). kmatrix must stop the guest soon
// after and call it a timeout, with the kernel's report as evidence.
#include <linux/module.h>
#include <linux/sched.h>

static int __init hangonload_init(void)
{
	set_current_state(TASK_UNINTERRUPTIBLE);
	schedule();
	return 0;
}

module_init(hangonload_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kmatrix test fixture: hangs at load");
