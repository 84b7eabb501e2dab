// SPDX-License-Identifier: GPL-2.0
/*
 * mdevmig: a live-migratable mediated device. Module init and exit.
 */
#include <linux/module.h>

#include "mdevmig.h"

static unsigned int sim_parents = 1;
module_param(sim_parents, uint, 0444);
MODULE_PARM_DESC(sim_parents, "Number of software parents to create at load (default 1)");

static unsigned int sim_mem_mb = 64;
module_param(sim_mem_mb, uint, 0444);
MODULE_PARM_DESC(sim_mem_mb, "Device memory of each sim parent in MiB, a power of two (default 64)");

struct class *mdevmig_class;

static int __init mdevmig_init(void)
{
	int ret;

	ret = mdevmig_engine_init();
	if (ret)
		return ret;
	ret = mdev_register_driver(&mdevmig_mdev_driver);
	if (ret)
		goto out_engine_exit;

	mdevmig_class = mdevmig_class_create(MDEVMIG_DRIVER_NAME);
	if (IS_ERR(mdevmig_class)) {
		ret = PTR_ERR(mdevmig_class);
		goto out_unregister_driver;
	}

	ret = mdevmig_parents_init(sim_parents, sim_mem_mb);
	if (ret)
		goto out_destroy_class;
	if (!MDEVMIG_HAVE_IOVA_BITMAP)
		pr_info("device DMA logging not offered: this kernel has no iova_bitmap (CONFIG_IOMMUFD_DRIVER); VFIO_IOMMU_DIRTY_PAGES still reports device writes\n");
	return 0;

out_destroy_class:
	class_destroy(mdevmig_class);
out_unregister_driver:
	mdev_unregister_driver(&mdevmig_mdev_driver);
out_engine_exit:
	mdevmig_engine_exit();
	return ret;
}

/* Parents first: their removal (and any instance's) needs the class and the driver. */
static void __exit mdevmig_exit(void)
{
	mdevmig_parents_exit();
	class_destroy(mdevmig_class);
	mdev_unregister_driver(&mdevmig_mdev_driver);
	mdevmig_engine_exit();
}

module_init(mdevmig_init);
module_exit(mdevmig_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("mdevmig: live-migratable mediated devices");
MODULE_SOFTDEP("pre: vfio vfio_iommu_type1 mdev");
