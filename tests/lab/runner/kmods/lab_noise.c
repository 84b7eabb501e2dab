// SPDX-License-Identifier: GPL-2.0
/*
 * Test-only module for the lab runner's self-test: WARNs once when loaded and then
 * prints @lines ordinary warnings (like a burst of "resume rejected" lines), so that the
 * WARN is buried: far more than the default 128 KiB log buffer holds comes after it.
 */
#include <linux/module.h>
#include <linux/sched.h>

static unsigned int lines = 10000;
module_param(lines, uint, 0444);

static int __init lab_noise_init(void)
{
	unsigned int i;

	WARN(1, "lab_noise: deliberate warning, buried under %u lines\n", lines);
	for (i = 0; i < lines; i++) {
		pr_warn("lab_noise: filler line %u of %u, a line as long as a rejected resume's\n",
			i + 1, lines);
		cond_resched();
	}
	return 0;
}

static void __exit lab_noise_exit(void)
{
}

module_init(lab_noise_init);
module_exit(lab_noise_exit);
MODULE_LICENSE("GPL");
