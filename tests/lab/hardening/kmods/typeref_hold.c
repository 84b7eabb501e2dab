// SPDX-License-Identifier: GPL-2.0
/*
 * Lab test module (tests/lab/hardening/typeref.sh): takes a reference on the kobject of
 * one mdev type of a parent, found through the parent device's sysfs directory, and drops
 * it when unloaded. The test removes the parent in between, so the mdev core's type
 * release runs after the driver let go of the parent.
 */
#include <linux/device.h>
#include <linux/kernfs.h>
#include <linux/kobject.h>
#include <linux/module.h>
#include <linux/pci.h>

static char *bdf;
module_param(bdf, charp, 0444);
MODULE_PARM_DESC(bdf, "PCI address of the parent");
static char *type;
module_param(type, charp, 0444);
MODULE_PARM_DESC(type, "type directory under mdev_supported_types");

static struct kobject *held;

static int __init typeref_hold_init(void)
{
	struct kernfs_node *types, *kn;
	struct device *dev;

	if (!bdf || !type)
		return -EINVAL;
	dev = bus_find_device_by_name(&pci_bus_type, NULL, bdf);
	if (!dev)
		return -ENODEV;
	types = kernfs_find_and_get(dev->kobj.sd, "mdev_supported_types");
	put_device(dev);
	if (!types)
		return -ENOENT;
	kn = kernfs_find_and_get(types, type);
	kernfs_put(types);
	if (!kn)
		return -ENOENT;
	/* A sysfs directory's node points at its kobject. */
	held = kobject_get(kn->priv);
	kernfs_put(kn);
	pr_info("typeref_hold: holding %s/%s\n", bdf, type);
	return 0;
}

static void __exit typeref_hold_exit(void)
{
	kobject_put(held);
}

module_init(typeref_hold_init);
module_exit(typeref_hold_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("mdevmig lab test: hold an mdev type past its parent's removal");
