// SPDX-License-Identifier: GPL-2.0
/*
 * Device DMA logging (vfio_log_ops): the guest pages the DMA engine writes, recorded
 * per logged IOVA range and reported through VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT.
 *
 * The type1 container sees the same writes (vfio_dma_rw() marks them dirty for
 * VFIO_IOMMU_DIRTY_PAGES); this is the device-level interface QEMU >= 8.0 prefers.
 * The report goes through iova_bitmap_set(), which exists in the vfio core up to
 * 6.7 and afterwards only with CONFIG_IOMMUFD_DRIVER (not in Debian's 6.12 config):
 * where it is missing the device offers no DMA logging at all rather than reports
 * that would always be empty.
 */
#include <linux/module.h>
#include <linux/interval_tree.h>
#include <linux/iova_bitmap.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "mdevmig.h"

/* Bits of bitmap the logged ranges may need in all (32 MiB of bitmap). */
#define MDEVMIG_LOG_MAX_BITS	(1ul << 28)

static void mdevmig_log_free_locked(struct mdevmig_dev *mdev_state)
{
	struct mdevmig_dmalog *log = &mdev_state->dmalog;
	u32 i;

	lockdep_assert_held(&log->lock);
	for (i = 0; i < log->nr; i++)
		vfree(log->ranges[i].bits);
	kfree(log->ranges);
	log->ranges = NULL;
	log->nr = 0;
	log->on = false;
}

static int mdevmig_log_start(struct vfio_device *vdev, struct rb_root_cached *ranges,
			     u32 nnodes, u64 *page_size)
{
	struct mdevmig_dev *mdev_state = container_of(vdev, struct mdevmig_dev, vdev);
	struct mdevmig_dmalog *log = &mdev_state->dmalog;
	struct interval_tree_node *node;
	unsigned long total = 0;
	u32 i = 0;
	int ret = 0;

	if (*page_size < PAGE_SIZE || !is_power_of_2(*page_size))
		*page_size = PAGE_SIZE;

	mutex_lock(&log->lock);
	if (log->on) {
		ret = -EBUSY;	/* log_start twice without log_stop */
		goto out_unlock;
	}
	log->ranges = kcalloc(nnodes, sizeof(*log->ranges), GFP_KERNEL);
	if (!log->ranges) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	log->page_shift = ilog2(*page_size);
	for (node = interval_tree_iter_first(ranges, 0, ULONG_MAX); node && i < nnodes;
	     node = interval_tree_iter_next(node, 0, ULONG_MAX), i++) {
		struct mdevmig_log_range *r = &log->ranges[i];
		unsigned long bits;

		r->iova = node->start;
		r->length = node->last - node->start + 1;
		bits = DIV_ROUND_UP(r->length, *page_size);
		total += bits;
		if (total > MDEVMIG_LOG_MAX_BITS) {
			ret = -E2BIG;
			break;
		}
		r->bits = vzalloc(BITS_TO_LONGS(bits) * sizeof(unsigned long));
		log->nr = i + 1;
		if (!r->bits) {
			ret = -ENOMEM;
			break;
		}
	}
	if (ret)
		mdevmig_log_free_locked(mdev_state);
	else
		log->on = true;
out_unlock:
	mutex_unlock(&log->lock);
	return ret;
}

static int mdevmig_log_stop(struct vfio_device *vdev)
{
	struct mdevmig_dev *mdev_state = container_of(vdev, struct mdevmig_dev, vdev);

	mutex_lock(&mdev_state->dmalog.lock);
	mdevmig_log_free_locked(mdev_state);
	mutex_unlock(&mdev_state->dmalog.lock);
	return 0;
}

static int mdevmig_log_read_and_clear(struct vfio_device *vdev, unsigned long iova,
				      unsigned long length, struct iova_bitmap *dirty)
{
	struct mdevmig_dev *mdev_state = container_of(vdev, struct mdevmig_dev, vdev);
	struct mdevmig_dmalog *log = &mdev_state->dmalog;
	unsigned long end = iova + length, bit;
	u32 i;
	int ret = 0;

	mutex_lock(&log->lock);
	if (!log->on) {
		ret = -EINVAL;
		goto out_unlock;
	}
	for (i = 0; i < log->nr; i++) {
		struct mdevmig_log_range *r = &log->ranges[i];
		unsigned long first, last, nbits = DIV_ROUND_UP(r->length, 1ul << log->page_shift);

		if (r->iova >= end || r->iova + r->length <= iova)
			continue;
		first = iova > r->iova ? (iova - r->iova) >> log->page_shift : 0;
		last = min_t(unsigned long, nbits, DIV_ROUND_UP(end - r->iova, 1ul << log->page_shift));
		for_each_set_bit_from(first, r->bits, last) {
			bit = first;
			iova_bitmap_set(dirty, r->iova + (bit << log->page_shift), 1ul << log->page_shift);
			clear_bit(bit, r->bits);
		}
	}
out_unlock:
	mutex_unlock(&log->lock);
	return ret;
}

/* The engine wrote guest memory [iova, iova + len): record it if logging covers it. */
void mdevmig_dmalog_mark(struct mdevmig_dev *mdev_state, u64 iova, u64 len)
{
	struct mdevmig_dmalog *log = &mdev_state->dmalog;
	u32 i;

	if (!READ_ONCE(log->on) || !len)
		return;
	mutex_lock(&log->lock);
	for (i = 0; log->on && i < log->nr; i++) {
		struct mdevmig_log_range *r = &log->ranges[i];
		u64 s = max(iova, r->iova), e = min(iova + len, r->iova + r->length);

		if (s >= e)
			continue;
		bitmap_set(r->bits, (s - r->iova) >> log->page_shift,
			   ((e - 1 - r->iova) >> log->page_shift) - ((s - r->iova) >> log->page_shift) + 1);
	}
	mutex_unlock(&log->lock);
}

static const struct vfio_log_ops mdevmig_log_ops = {
	.log_start = mdevmig_log_start,
	.log_stop = mdevmig_log_stop,
	.log_read_and_clear = mdevmig_log_read_and_clear,
};

void mdevmig_dmalog_init(struct mdevmig_dev *mdev_state)
{
	mutex_init(&mdev_state->dmalog.lock);
	if (MDEVMIG_HAVE_IOVA_BITMAP)
		mdev_state->vdev.log_ops = &mdevmig_log_ops;
}

/* Logging ends with the opener that started it. */
void mdevmig_dmalog_stop(struct mdevmig_dev *mdev_state)
{
	mutex_lock(&mdev_state->dmalog.lock);
	mdevmig_log_free_locked(mdev_state);
	mutex_unlock(&mdev_state->dmalog.lock);
}

void mdevmig_dmalog_free(struct mdevmig_dev *mdev_state)
{
	mdevmig_dmalog_stop(mdev_state);
	mutex_destroy(&mdev_state->dmalog.lock);
}
