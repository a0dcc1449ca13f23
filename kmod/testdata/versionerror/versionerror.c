// SPDX-License-Identifier: GPL-2.0
/*
 * Test fixture for kmod's build-error classification: a syntax error that
 * only kernels before 5.14 see. The build driver must report it as
 * build-error at versionerror.c:15 on 5.10 and build it everywhere else.
 */
#include <linux/module.h>
#include <linux/version.h>

static int __init versionerror_init(void)
{
	int ok = 0;

#if LINUX_VERSION_CODE < KERNEL_VERSION(5, 14, 0)
	ok = 1 +;	/* the deliberate error: line 15 */
#endif
	return ok;
}

static void __exit versionerror_exit(void)
{
}

module_init(versionerror_init);
module_exit(versionerror_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kmatrix test fixture: a compile error on kernels before 5.14 only");
