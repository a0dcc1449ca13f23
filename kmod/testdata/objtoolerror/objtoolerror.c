// SPDX-License-Identifier: GPL-2.0
/*
 * A module that compiles everywhere but that objtool rejects from 7.x on:
 * it names its entry points init_module() and cleanup_module() instead of
 * declaring them with module_init()/module_exit(), which Linux 6.x accepted
 * with a warning and 7.x's objtool refuses ("Magic init_module() function
 * name is deprecated"). kmod/build's tests check that the build's first
 * error is objtool's line, not the make lines that follow it.
 */
#include <linux/module.h>

int init_module(void)
{
	return 0;
}

void cleanup_module(void)
{
}

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kmatrix fixture: entry points objtool rejects on 7.x");
