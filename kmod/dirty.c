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
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "mdevmig.h"

/* Bits of bitmap the logged ranges may need in all (32 MiB of bitmap). */
#define MDEVMIG_LOG_MAX_BITS	(1ul << 28)

static void mdevmig_log_free_locked(struct mdevmig_dev *inst)
{
	struct mdevmig_dmalog *log = &inst->dmalog;
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
	struct mdevmig_dev *inst = container_of(vdev, struct mdevmig_dev, vdev);
	struct mdevmig_dmalog *log = &inst->dmalog;
	struct interval_tree_node *node;
	unsigned long total = 0;
	unsigned int shift;
	u32 i = 0;
	int ret = 0;

	if (*page_size < PAGE_SIZE || !is_power_of_2(*page_size))
		*page_size = PAGE_SIZE;
	shift = ilog2(*page_size);

	mutex_lock(&log->lock);
	if (log->on) {
		ret = -EBUSY;	/* log_start twice without log_stop */
		goto out_unlock;
	}
	log->ranges = kcalloc(nnodes, sizeof(*log->ranges), GFP_KERNEL_ACCOUNT);
	if (!log->ranges) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	log->page_shift = shift;
	for (node = interval_tree_iter_first(ranges, 0, ULONG_MAX); node && i < nnodes;
	     node = interval_tree_iter_next(node, 0, ULONG_MAX), i++) {
		struct mdevmig_log_range *r = &log->ranges[i];
		unsigned long bits;

		/*
		 * The core accepts a range of length 0 (stored as last = start - 1, which
		 * for start 0 wraps to the whole space) and any length up to 2^64 - 1:
		 * an empty range logs nothing and is refused, and the page count is
		 * rounded up without overflowing.
		 */
		if (node->last < node->start || node->last - node->start == ULONG_MAX) {
			ret = -EINVAL;
			break;
		}
		r->iova = node->start;
		r->length = node->last - node->start + 1;
		bits = (r->length >> shift) + !!(r->length & (*page_size - 1));
		if (bits > MDEVMIG_LOG_MAX_BITS - total) {
			ret = -E2BIG;
			break;
		}
		total += bits;
		r->bits = __vmalloc(BITS_TO_LONGS(bits) * sizeof(unsigned long),
				    GFP_KERNEL_ACCOUNT | __GFP_ZERO);
		log->nr = i + 1;
		if (!r->bits) {
			ret = -ENOMEM;
			break;
		}
	}
	if (!ret && i != nnodes)
		ret = -EINVAL;	/* a range the interval tree does not hold */
	if (ret)
		mdevmig_log_free_locked(inst);
	else
		log->on = true;
out_unlock:
	mutex_unlock(&log->lock);
	return ret;
}

static int mdevmig_log_stop(struct vfio_device *vdev)
{
	struct mdevmig_dev *inst = container_of(vdev, struct mdevmig_dev, vdev);

	mutex_lock(&inst->dmalog.lock);
	mdevmig_log_free_locked(inst);
	mutex_unlock(&inst->dmalog.lock);
	return 0;
}

/*
 * Reports guest memory [start, end) as dirty in @dirty, whose bits stand for report pages
 * counted from @base (the iova the core handed us). The report page size is not known
 * here, only that it is a power of two of at least 4 KiB; and 6.1's iova_bitmap_set()
 * sets length >> page shift bits (at least one) from the page holding its iova, so a
 * span that does not start and end on report page boundaries would lose its last bits.
 * Pieces that never cross a 4 KiB step from @base each lie within one report page and
 * set exactly that page's bit, on every kernel.
 */
static void mdevmig_log_report_span(struct iova_bitmap *dirty, unsigned long base,
				    unsigned long start, unsigned long end)
{
	while (start < end) {
		unsigned long next = base + round_down(start - base, SZ_4K) + SZ_4K;
		unsigned long stop = next <= start || next > end ? end : next;

		iova_bitmap_set(dirty, start, stop - start);
		start = stop;
	}
}

/*
 * Reports the logged pages that meet [iova, iova + length), clipped to that window: the
 * core's bitmap covers exactly the window, and a logging page may be larger than a report
 * page or start before the window. A logging page is cleared only if the window covers
 * it whole; one the window cuts is reported and stays dirty for the report that covers
 * the rest of it, so no dirty byte is ever dropped unreported.
 */
static int mdevmig_log_read_and_clear(struct vfio_device *vdev, unsigned long iova,
				      unsigned long length, struct iova_bitmap *dirty)
{
	struct mdevmig_dev *inst = container_of(vdev, struct mdevmig_dev, vdev);
	struct mdevmig_dmalog *log = &inst->dmalog;
	unsigned long last = iova + length - 1, bit;	/* the window's last byte */
	u32 i;
	int ret = 0;

	if (!length || last < iova)
		return length ? -EINVAL : 0;
	mutex_lock(&log->lock);
	if (!log->on) {
		ret = -EINVAL;
		goto out_unlock;
	}
	for (i = 0; i < log->nr; i++) {
		struct mdevmig_log_range *r = &log->ranges[i];
		unsigned long r_last = r->iova + r->length - 1;
		unsigned long lo = max_t(unsigned long, iova, r->iova);
		unsigned long hi = min_t(unsigned long, last, r_last);
		unsigned long first_bit, last_bit;

		if (lo > hi)
			continue;
		first_bit = (lo - r->iova) >> log->page_shift;
		last_bit = (hi - r->iova) >> log->page_shift;
		for_each_set_bit_from(first_bit, r->bits, last_bit + 1) {
			unsigned long p_first, p_last;

			bit = first_bit;
			p_first = r->iova + (bit << log->page_shift);
			p_last = p_first + min_t(unsigned long, r_last - p_first,
						 (1ul << log->page_shift) - 1);
			mdevmig_log_report_span(dirty, iova, max(p_first, iova),
						min(p_last, last) + 1);
			if (p_first >= iova && p_last <= last)
				clear_bit(bit, r->bits);
		}
	}
out_unlock:
	mutex_unlock(&log->lock);
	return ret;
}

/* The engine wrote guest memory [iova, iova + len): record it if logging covers it. */
void mdevmig_dmalog_mark(struct mdevmig_dev *inst, u64 iova, u64 len)
{
	struct mdevmig_dmalog *log = &inst->dmalog;
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

void mdevmig_dmalog_init(struct mdevmig_dev *inst)
{
	mutex_init(&inst->dmalog.lock);
	if (MDEVMIG_HAVE_IOVA_BITMAP)
		inst->vdev.log_ops = &mdevmig_log_ops;
}

/* Logging ends with the opener that started it. */
void mdevmig_dmalog_stop(struct mdevmig_dev *inst)
{
	mutex_lock(&inst->dmalog.lock);
	mdevmig_log_free_locked(inst);
	mutex_unlock(&inst->dmalog.lock);
}

void mdevmig_dmalog_free(struct mdevmig_dev *inst)
{
	mdevmig_dmalog_stop(inst);
	mutex_destroy(&inst->dmalog.lock);
}
