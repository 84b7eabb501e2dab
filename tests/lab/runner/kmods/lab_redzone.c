// SPDX-License-Identifier: GPL-2.0
/*
 * Test-only module for the lab runner's self-test: writes one byte past a kmalloc'ed
 * object when loaded, into the red zone slub_debug=Z puts there, and frees the object;
 * SLUB's check at the free reports it ("BUG kmalloc-32 (...): Right Redzone
 * overwritten") and repairs the red zone. Without slub_debug the byte lands in unused
 * slack of the slot and nothing reports: the runner's boot options are what is tested.
 */
#include <linux/module.h>
#include <linux/slab.h>

/* The object's size; the write goes to offset @size (a parameter: no compiler sees it). */
static unsigned int size = 32;
module_param(size, uint, 0444);

static int __init lab_redzone_init(void)
{
	u8 *obj = kmalloc(size, GFP_KERNEL);
	volatile u8 *past;

	if (!obj)
		return -ENOMEM;
	past = obj + size;
	*past = 0x42;
	kfree(obj);
	pr_info("lab_redzone: wrote one byte past a %u-byte object\n", size);
	return 0;
}

static void __exit lab_redzone_exit(void)
{
}

module_init(lab_redzone_init);
module_exit(lab_redzone_exit);
MODULE_LICENSE("GPL");
