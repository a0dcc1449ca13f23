// SPDX-License-Identifier: GPL-2.0
// Test fixture: WARN once at load, then work normally. kmatrix must report
// the kernel's splat as a finding even though the module loaded.
#include <linux/module.h>
#include <linux/bug.h>

static int __init warnonload_init(void)
{
	WARN(1, "kmatrix fixture: a deliberate WARN at load\n");
	return 0;
}

static void __exit warnonload_exit(void)
{
}

module_init(warnonload_init);
module_exit(warnonload_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kmatrix test fixture: WARNs at load");
