// SPDX-License-Identifier: GPL-2.0
/* Test-only module for the lab runner's self-test: WARNs once when loaded. */
#include <linux/module.h>

static int __init lab_warn_init(void)
{
	WARN(1, "lab_warn: deliberate warning for the lab runner self-test\n");
	return 0;
}

static void __exit lab_warn_exit(void)
{
}

module_init(lab_warn_init);
module_exit(lab_warn_exit);
MODULE_LICENSE("GPL");
