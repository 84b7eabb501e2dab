// SPDX-License-Identifier: GPL-2.0
/*
 * mdevmig: a live-migratable mediated device. Module init and exit.
 */
#include <linux/module.h>

#include "mdevmig.h"
#include "mdevmig_version.h"

static unsigned int sim_parents = 1;
module_param(sim_parents, uint, 0444);
MODULE_PARM_DESC(sim_parents, "Number of software parents to create at load (default 1)");

static unsigned int sim_mem_mb = 64;
module_param(sim_mem_mb, uint, 0444);
MODULE_PARM_DESC(sim_mem_mb, "Device memory of each sim parent in MiB, a power of two (default 64)");

struct class *mdevmig_class;

#define MDEVMIG_PIN(type, field, off) BUILD_BUG_ON(offsetof(struct type, field) != (off))

/*
 * The uAPI's wire layouts (guest memory and the state stream), pinned as the header
 * promises; tests/unit/uapi/layout_test.cc pins the same for userspace. The module
 * maps device memory page by page with MDEVMIG_PAGE_SIZE pages, so it needs the CPU's
 * page to be that size.
 */
static void __init mdevmig_uapi_checks(void)
{
	BUILD_BUG_ON(PAGE_SIZE != MDEVMIG_PAGE_SIZE);
	BUILD_BUG_ON(PAGE_SHIFT != MDEVMIG_PAGE_SHIFT);

	BUILD_BUG_ON(sizeof(struct mdevmig_dma_desc) != 64);
	BUILD_BUG_ON(__alignof__(struct mdevmig_dma_desc) != 8);
	MDEVMIG_PIN(mdevmig_dma_desc, opcode, 0);
	MDEVMIG_PIN(mdevmig_dma_desc, flags, 4);
	MDEVMIG_PIN(mdevmig_dma_desc, src, 8);
	MDEVMIG_PIN(mdevmig_dma_desc, dst, 16);
	MDEVMIG_PIN(mdevmig_dma_desc, len, 24);
	MDEVMIG_PIN(mdevmig_dma_desc, pattern, 32);
	MDEVMIG_PIN(mdevmig_dma_desc, cmpl, 40);
	MDEVMIG_PIN(mdevmig_dma_desc, user_data, 48);
	MDEVMIG_PIN(mdevmig_dma_desc, rsvd, 56);

	BUILD_BUG_ON(sizeof(struct mdevmig_dma_cmpl) != 32);
	MDEVMIG_PIN(mdevmig_dma_cmpl, status, 0);
	MDEVMIG_PIN(mdevmig_dma_cmpl, seq, 4);
	MDEVMIG_PIN(mdevmig_dma_cmpl, user_data, 8);
	MDEVMIG_PIN(mdevmig_dma_cmpl, bytes_done, 16);
	MDEVMIG_PIN(mdevmig_dma_cmpl, rsvd, 24);

	BUILD_BUG_ON(sizeof(struct mdevmig_rec_hdr) != 24);
	MDEVMIG_PIN(mdevmig_rec_hdr, tag, 0);
	MDEVMIG_PIN(mdevmig_rec_hdr, flags, 4);
	MDEVMIG_PIN(mdevmig_rec_hdr, length, 8);
	MDEVMIG_PIN(mdevmig_rec_hdr, hash, 16);

	BUILD_BUG_ON(sizeof(struct mdevmig_rec_compat) != 32);
	MDEVMIG_PIN(mdevmig_rec_compat, stream_version, 0);
	MDEVMIG_PIN(mdevmig_rec_compat, model_version, 4);
	MDEVMIG_PIN(mdevmig_rec_compat, type_id, 8);
	MDEVMIG_PIN(mdevmig_rec_compat, page_size, 12);
	MDEVMIG_PIN(mdevmig_rec_compat, mem_size, 16);
	MDEVMIG_PIN(mdevmig_rec_compat, rsvd, 24);

	BUILD_BUG_ON(sizeof(struct mdevmig_rec_pages) != 16);
	MDEVMIG_PIN(mdevmig_rec_pages, first_page, 0);
	MDEVMIG_PIN(mdevmig_rec_pages, count, 8);
	MDEVMIG_PIN(mdevmig_rec_pages, rsvd, 12);

	BUILD_BUG_ON(sizeof(struct mdevmig_rec_config) != 40);
	MDEVMIG_PIN(mdevmig_rec_config, command, 0);
	MDEVMIG_PIN(mdevmig_rec_config, cache_line, 2);
	MDEVMIG_PIN(mdevmig_rec_config, intr_line, 3);
	MDEVMIG_PIN(mdevmig_rec_config, bar0, 4);
	MDEVMIG_PIN(mdevmig_rec_config, bar2, 8);
	MDEVMIG_PIN(mdevmig_rec_config, msi_ctrl, 16);
	MDEVMIG_PIN(mdevmig_rec_config, msi_data, 18);
	MDEVMIG_PIN(mdevmig_rec_config, msi_mask, 20);
	MDEVMIG_PIN(mdevmig_rec_config, msi_addr, 24);
	MDEVMIG_PIN(mdevmig_rec_config, rsvd, 32);

	BUILD_BUG_ON(sizeof(struct mdevmig_rec_regs) != 120);
	MDEVMIG_PIN(mdevmig_rec_regs, ctrl, 0);
	MDEVMIG_PIN(mdevmig_rec_regs, int_status, 4);
	MDEVMIG_PIN(mdevmig_rec_regs, int_mask, 8);
	MDEVMIG_PIN(mdevmig_rec_regs, rsvd0, 12);
	MDEVMIG_PIN(mdevmig_rec_regs, scratch, 16);
	MDEVMIG_PIN(mdevmig_rec_regs, ring_base, 80);
	MDEVMIG_PIN(mdevmig_rec_regs, ring_size, 88);
	MDEVMIG_PIN(mdevmig_rec_regs, ring_head, 92);
	MDEVMIG_PIN(mdevmig_rec_regs, ring_tail, 96);
	MDEVMIG_PIN(mdevmig_rec_regs, seq, 100);
	MDEVMIG_PIN(mdevmig_rec_regs, err_desc, 104);
	MDEVMIG_PIN(mdevmig_rec_regs, err_dma, 108);
	MDEVMIG_PIN(mdevmig_rec_regs, err_ring, 112);
	MDEVMIG_PIN(mdevmig_rec_regs, rsvd1, 116);

	BUILD_BUG_ON(sizeof(struct mdevmig_rec_engine) != 160);
	MDEVMIG_PIN(mdevmig_rec_engine, flags, 0);
	MDEVMIG_PIN(mdevmig_rec_engine, rsvd, 4);
	MDEVMIG_PIN(mdevmig_rec_engine, desc, 8);
	MDEVMIG_PIN(mdevmig_rec_engine, progress, 72);
	MDEVMIG_PIN(mdevmig_rec_engine, xxh_total_len, 80);
	MDEVMIG_PIN(mdevmig_rec_engine, xxh_v, 88);
	MDEVMIG_PIN(mdevmig_rec_engine, xxh_mem, 120);
	MDEVMIG_PIN(mdevmig_rec_engine, xxh_memsize, 152);
	MDEVMIG_PIN(mdevmig_rec_engine, rsvd2, 156);

	BUILD_BUG_ON(sizeof(struct mdevmig_rec_irq) != 8);
	MDEVMIG_PIN(mdevmig_rec_irq, intx_asserted, 0);
	MDEVMIG_PIN(mdevmig_rec_irq, msi_pending, 4);

	BUILD_BUG_ON(MDEVMIG_REC_MAX_PAYLOAD !=
		     sizeof(struct mdevmig_rec_pages) + MDEVMIG_REC_PAGES_MAX * MDEVMIG_PAGE_SIZE);
	BUILD_BUG_ON(MDEVMIG_LOADER_BUF_SIZE < MDEVMIG_REC_MAX_PAYLOAD);
	BUILD_BUG_ON(MDEVMIG_DMA_STEP_BYTES > MDEVMIG_DMA_MAX_LEN);
	BUILD_BUG_ON(MDEVMIG_CFG_MSI_CAP + MDEVMIG_MSI_CAP_SIZE > MDEVMIG_CFG_SIZE);
}

static int __init mdevmig_init(void)
{
	int ret;

	mdevmig_uapi_checks();

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
MODULE_VERSION(MDEVMIG_MODULE_VERSION);
MODULE_SOFTDEP("pre: vfio vfio_iommu_type1 mdev");
