// SPDX-License-Identifier: GPL-2.0
// Test fixture: oops at load with a NULL pointer dereference. The kernel
// kills the loading process and the module never finishes loading; kmatrix
// must report an oops with the kernel's report as evidence, not a load
// error of the user's making.
#include <linux/module.h>

// 0 unless set at load: the compiler cannot know the load below is NULL.
static unsigned long addr;
module_param(addr, ulong, 0);

static int __init oopsonload_init(void)
{
	return *(volatile int *)addr;
}

module_init(oopsonload_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kmatrix test fixture: oopses at load");
