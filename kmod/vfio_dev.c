// SPDX-License-Identifier: GPL-2.0
/*
 * The vfio_device of an mdev instance: lifetime (probe/init/release/remove), open and
 * close, the VFIO ioctls, and region read/write/mmap dispatch.
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/idr.h>
#include <linux/pci_regs.h>
#include <linux/uaccess.h>

#include "mdevmig.h"

static DEFINE_IDA(mdevmig_ids);

static struct mdevmig_dev *to_mdevmig_dev(struct vfio_device *vdev)
{
	return container_of(vdev, struct mdevmig_dev, vdev);
}

/* Called by vfio_alloc_device(): claims the slice and builds the device model. */
static int mdevmig_vfio_init(struct vfio_device *vdev)
{
	struct mdevmig_dev *mdev_state = to_mdevmig_dev(vdev);
	struct mdev_device *mdev = to_mdev_device(vdev->dev);
	struct mdevmig_type *type = container_of(mdev->type, struct mdevmig_type, mtype);
	struct mdevmig_parent *parent = type->parent;
	struct mdevmig_model_config cfg = {};
	int ret;

	mdev_state->parent = parent;
	mdev_state->type = type;
	mdev_state->nr_slots = MDEVMIG_MAX_SLICES / type->divisor;
	ret = mdevmig_slots_claim(parent, mdev_state->nr_slots, &mdev_state->first_slot);
	if (ret)
		return ret;
	mdev_state->mem_size = parent->mem_size / type->divisor;
	mdev_state->mem_offset = (parent->mem_size / MDEVMIG_MAX_SLICES) * mdev_state->first_slot;

	ret = ida_alloc_range(&mdevmig_ids, 1, MDEVMIG_MAX_IDS - 1, GFP_KERNEL);
	if (ret < 0)
		goto out_release_slots;
	mdev_state->id = ret;

	ret = mdevmig_mem_init(mdev_state);
	if (ret)
		goto out_free_id;

	mutex_init(&mdev_state->state_lock);
	mutex_init(&mdev_state->irq_lock);
	mdevmig_engine_init_dev(mdev_state);
	cfg.mem = mdev_state->mem;
	cfg.mem_size = mdev_state->mem_size;
	cfg.type_id = type - parent->types;
	ret = mdevmig_model_init(&mdev_state->model, &cfg, &mdevmig_model_host_ops, mdev_state);
	if (ret)
		goto out_free_mem;
	ret = mdevmig_v1_init(mdev_state);
	if (ret)
		goto out_free_v1;
	mdevmig_mig_init(mdev_state);
	mdevmig_v2_init(mdev_state);
	mdevmig_dmalog_init(mdev_state);
	return 0;

out_free_v1:
	mdevmig_v1_free(mdev_state);
out_free_mem:
	mdevmig_mem_free(mdev_state);
out_free_id:
	ida_free(&mdevmig_ids, mdev_state->id);
out_release_slots:
	mdevmig_slots_release(parent, mdev_state->first_slot, mdev_state->nr_slots);
	return ret;
}

static void mdevmig_vfio_release(struct vfio_device *vdev)
{
	struct mdevmig_dev *mdev_state = to_mdevmig_dev(vdev);

	mdevmig_dmalog_free(mdev_state);
	mutex_destroy(&mdev_state->mig_lock);
	mutex_destroy(&mdev_state->irq_lock);
	mutex_destroy(&mdev_state->state_lock);
	mdevmig_v1_free(mdev_state);
	mdevmig_mem_free(mdev_state);
	ida_free(&mdevmig_ids, mdev_state->id);
	mdevmig_slots_release(mdev_state->parent, mdev_state->first_slot, mdev_state->nr_slots);
	mdevmig_vfio_release_tail(vdev);
}

/*
 * Ends both front-ends' sessions and returns to RUNNING (mdevmig_mig_reset_locked()):
 * for close, and for VFIO_DEVICE_RESET (@run).
 */
static void mdevmig_mig_reset(struct mdevmig_dev *mdev_state, bool run)
{
	mutex_lock(&mdev_state->mig_lock);
	mdevmig_v2_reset_locked(mdev_state);
	mdevmig_v1_reset_locked(mdev_state);
	mdevmig_mig_reset_locked(mdev_state, run);
	mutex_unlock(&mdev_state->mig_lock);
}

static int mdevmig_open_device(struct vfio_device *vdev)
{
	struct mdevmig_dev *mdev_state = to_mdevmig_dev(vdev);

	mutex_lock(&mdev_state->state_lock);
	mdevmig_model_reset(&mdev_state->model);
	mdev_state->opened = true;
	WRITE_ONCE(mdev_state->irq_stopped, false);
	mdevmig_engine_start_locked(mdev_state);
	mutex_unlock(&mdev_state->state_lock);
	return 0;
}

/* Stops the engine and leaves nothing for the next opener: registers, IRQs, memory. */
static void mdevmig_close_device(struct vfio_device *vdev)
{
	struct mdevmig_dev *mdev_state = to_mdevmig_dev(vdev);

	mdevmig_mig_reset(mdev_state, false);	/* data_fds and the v1 session end here */
	mdevmig_engine_lock_for_change(mdev_state);
	mdev_state->opened = false;
	mdevmig_engine_stop_locked(mdev_state);
	mutex_unlock(&mdev_state->state_lock);
	mdevmig_engine_cancel(mdev_state);

	mdevmig_irq_disable_all(mdev_state);
	mdevmig_dmalog_stop(mdev_state);
	mutex_lock(&mdev_state->state_lock);
	mdevmig_model_reset(&mdev_state->model);
	mutex_unlock(&mdev_state->state_lock);
	mdevmig_mem_reset(mdev_state);
}

/* VFIO_DEVICE_RESET: also the way out of a failed migration (ERROR). */
static int mdevmig_reset(struct mdevmig_dev *mdev_state)
{
	mdevmig_mig_reset(mdev_state, true);	/* resets the model with the engine stopped */
	return 0;
}

/* Size and flags of a region; 0 size for the ones the device does not have. */
static u64 mdevmig_region_size(struct mdevmig_dev *mdev_state, unsigned int index, u32 *flags)
{
	*flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
	switch (index) {
	case VFIO_PCI_CONFIG_REGION_INDEX:
		return PCI_CFG_SPACE_SIZE;
	case VFIO_PCI_BAR0_REGION_INDEX:
		return MDEVMIG_REGS_SIZE;
	case VFIO_PCI_BAR2_REGION_INDEX:
		if (!READ_ONCE(mdev_state->force_trapped))
			*flags |= VFIO_REGION_INFO_FLAG_MMAP;
		return mdev_state->mem_size;
	}
	*flags = 0;
	return 0;
}

/* A sparse-mmap capability with one mappable area [offset, offset + size). */
static int mdevmig_add_mmap_cap(struct vfio_info_cap *caps, u64 offset, u64 size)
{
	struct {
		struct vfio_region_info_cap_sparse_mmap sparse;
		struct vfio_region_sparse_mmap_area area;
	} cap = {
		.sparse.header.id = VFIO_REGION_INFO_CAP_SPARSE_MMAP,
		.sparse.header.version = 1,
		.sparse.nr_areas = 1,
		.area = { .offset = offset, .size = size },
	};

	return vfio_info_add_capability(caps, &cap.sparse.header, sizeof(cap));
}

/* Fills @info for the region @info->index and adds its capabilities to @caps. */
static int mdevmig_region_info_caps(struct vfio_device *vdev, struct vfio_region_info *info,
				    struct vfio_info_cap *caps)
{
	struct mdevmig_dev *mdev_state = to_mdevmig_dev(vdev);

	if (info->index >= MDEVMIG_NR_REGIONS)
		return -EINVAL;
	info->size = mdevmig_region_size(mdev_state, info->index, &info->flags);
	info->offset = mdevmig_region_offset(mdev_state, info->index);
	info->cap_offset = 0;
	if (info->index == MDEVMIG_V1_REGION_INDEX) {
		int ret = mdevmig_v1_region_info(mdev_state, info, caps);

		if (ret)
			return ret;
		return mdevmig_add_mmap_cap(caps, MDEVMIG_V1_DATA_OFFSET, MDEVMIG_V1_DATA_SIZE);
	}
	if (info->flags & VFIO_REGION_INFO_FLAG_MMAP)
		return mdevmig_add_mmap_cap(caps, 0, info->size);
	return 0;
}

#if !MDEVMIG_HAVE_REGION_INFO_CAPS
/* VFIO_DEVICE_GET_REGION_INFO on kernels whose core leaves it to the driver. */
static int mdevmig_get_region_info(struct mdevmig_dev *mdev_state, unsigned long arg)
{
	unsigned long minsz = offsetofend(struct vfio_region_info, offset);
	struct vfio_info_cap caps = { .buf = NULL, .size = 0 };
	struct vfio_region_info info;
	int ret;

	if (copy_from_user(&info, (void __user *)arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;
	ret = mdevmig_region_info_caps(&mdev_state->vdev, &info, &caps);
	if (ret)
		goto out_free_caps;

	if (caps.size) {
		info.flags |= VFIO_REGION_INFO_FLAG_CAPS;
		if (info.argsz < sizeof(info) + caps.size) {
			info.argsz = sizeof(info) + caps.size;
		} else {
			vfio_info_cap_shift(&caps, sizeof(info));
			if (copy_to_user((void __user *)arg + sizeof(info), caps.buf, caps.size))
				ret = -EFAULT;
			info.cap_offset = sizeof(info);
		}
	}
	if (!ret && copy_to_user((void __user *)arg, &info, minsz))
		ret = -EFAULT;
out_free_caps:
	kfree(caps.buf);
	return ret;
}
#endif

static long mdevmig_ioctl(struct vfio_device *vdev, unsigned int cmd, unsigned long arg)
{
	struct mdevmig_dev *mdev_state = to_mdevmig_dev(vdev);

	switch (cmd) {
	case VFIO_DEVICE_GET_INFO: {
		unsigned long minsz = offsetofend(struct vfio_device_info, num_irqs);
		struct vfio_device_info info;

		if (copy_from_user(&info, (void __user *)arg, minsz))
			return -EFAULT;
		if (info.argsz < minsz)
			return -EINVAL;
		info.flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET;
		info.num_regions = MDEVMIG_NR_REGIONS;
		info.num_irqs = VFIO_PCI_NUM_IRQS;
		return copy_to_user((void __user *)arg, &info, minsz) ? -EFAULT : 0;
	}
#if !MDEVMIG_HAVE_REGION_INFO_CAPS
	case VFIO_DEVICE_GET_REGION_INFO:
		return mdevmig_get_region_info(mdev_state, arg);
#endif
	case VFIO_DEVICE_GET_IRQ_INFO:
		return mdevmig_get_irq_info(mdev_state, arg);
	case VFIO_DEVICE_SET_IRQS:
		return mdevmig_set_irqs(mdev_state, arg);
	case VFIO_DEVICE_RESET:
		return mdevmig_reset(mdev_state);
	}
	return -ENOTTY;
}

/* Splits a region offset into region index and offset; -EINVAL if not ours. */
static int mdevmig_decode_pos(struct mdevmig_dev *mdev_state, u64 pos, unsigned int *index,
			      u64 *off)
{
	if ((pos >> MDEVMIG_ID_SHIFT) != mdev_state->id)
		return -EINVAL;
	*index = (pos >> MDEVMIG_REGION_SHIFT) & ((1u << (MDEVMIG_ID_SHIFT - MDEVMIG_REGION_SHIFT)) - 1);
	*off = pos & ((1ULL << MDEVMIG_REGION_SHIFT) - 1);
	return *index < MDEVMIG_NR_REGIONS ? 0 : -EINVAL;
}

/* Config space and BAR0 go through the model, in naturally aligned pieces. */
static ssize_t mdevmig_model_rw(struct mdevmig_dev *mdev_state, unsigned int index,
				char __user *ubuf, size_t count, u64 off, bool write)
{
	u64 limit = index == VFIO_PCI_CONFIG_REGION_INDEX ? PCI_CFG_SPACE_SIZE : MDEVMIG_REGS_SIZE;
	size_t done = 0;
	int ret = 0;

	if (off >= limit || count > limit - off)
		return -EINVAL;

	while (done < count) {
		u64 pos = off + done;
		size_t n;
		u64 val = 0;

		if (index == VFIO_PCI_CONFIG_REGION_INDEX)
			n = min_t(size_t, count - done, 4 - (pos & 3));
		else if (!(pos & 7) && count - done >= 8)
			n = 8;
		else if (!(pos & 3) && count - done >= 4)
			n = 4;
		else if (!(pos & 1) && count - done >= 2)
			n = 2;
		else
			n = 1;

		if (write && copy_from_user(&val, ubuf + done, n))
			return done ? done : -EFAULT;
		mutex_lock(&mdev_state->state_lock);
		if (index == VFIO_PCI_CONFIG_REGION_INDEX)
			ret = write ? mdevmig_model_cfg_write(&mdev_state->model, pos, &val, n)
				    : mdevmig_model_cfg_read(&mdev_state->model, pos, &val, n);
		else
			ret = write ? mdevmig_model_mmio_write(&mdev_state->model, pos, &val, n)
				    : mdevmig_model_mmio_read(&mdev_state->model, pos, &val, n);
		mutex_unlock(&mdev_state->state_lock);
		if (ret)
			return done ? done : ret;
		if (!write && copy_to_user(ubuf + done, &val, n))
			return done ? done : -EFAULT;
		done += n;
	}
	return done;
}

static ssize_t mdevmig_rw(struct mdevmig_dev *mdev_state, char __user *ubuf, size_t count,
			  loff_t *ppos, bool write)
{
	unsigned int index;
	ssize_t ret;
	u64 off;

	if (*ppos < 0 || mdevmig_decode_pos(mdev_state, *ppos, &index, &off))
		return -EINVAL;

	switch (index) {
	case VFIO_PCI_CONFIG_REGION_INDEX:
	case VFIO_PCI_BAR0_REGION_INDEX:
		ret = mdevmig_model_rw(mdev_state, index, ubuf, count, off, write);
		break;
	case VFIO_PCI_BAR2_REGION_INDEX:
		ret = mdevmig_bar2_rw(mdev_state, ubuf, count, off, write);
		break;
	case MDEVMIG_V1_REGION_INDEX:
		ret = mdevmig_v1_rw(mdev_state, ubuf, count, off, write);
		break;
	default:
		ret = -EINVAL;
	}
	if (ret > 0)
		*ppos += ret;
	return ret;
}

static ssize_t mdevmig_read(struct vfio_device *vdev, char __user *buf, size_t count,
			    loff_t *ppos)
{
	return mdevmig_rw(to_mdevmig_dev(vdev), buf, count, ppos, false);
}

static ssize_t mdevmig_write(struct vfio_device *vdev, const char __user *buf, size_t count,
			     loff_t *ppos)
{
	return mdevmig_rw(to_mdevmig_dev(vdev), (char __user *)buf, count, ppos, true);
}

static int mdevmig_mmap(struct vfio_device *vdev, struct vm_area_struct *vma)
{
	struct mdevmig_dev *mdev_state = to_mdevmig_dev(vdev);
	unsigned int index;
	u64 off;

	/* An offset beyond 64 bits would alias a window once shifted. */
	if (vma->vm_pgoff > (U64_MAX >> PAGE_SHIFT) ||
	    mdevmig_decode_pos(mdev_state, (u64)vma->vm_pgoff << PAGE_SHIFT, &index, &off))
		return -EINVAL;
	if (index == VFIO_PCI_BAR2_REGION_INDEX)
		return mdevmig_bar2_mmap(mdev_state, vma);
	if (index == MDEVMIG_V1_REGION_INDEX)
		return mdevmig_v1_mmap(mdev_state, vma, off);
	return -EINVAL;
}

/* Nothing to release: DMA goes through vfio_dma_rw() and never holds pins. */
static void mdevmig_dma_unmap(struct vfio_device *vdev, u64 iova, u64 length)
{
}

static const struct vfio_device_ops mdevmig_vfio_ops = {
	.name		= "mdevmig",
	.init		= mdevmig_vfio_init,
	.release	= mdevmig_vfio_release,
	.open_device	= mdevmig_open_device,
	.close_device	= mdevmig_close_device,
	.read		= mdevmig_read,
	.write		= mdevmig_write,
	.mmap		= mdevmig_mmap,
	.ioctl		= mdevmig_ioctl,
#if MDEVMIG_HAVE_REGION_INFO_CAPS
	.get_region_info_caps = mdevmig_region_info_caps,
#endif
	.dma_unmap	= mdevmig_dma_unmap,
	.request	= mdevmig_request,
	MDEVMIG_VFIO_IOMMUFD_OPS
	MDEVMIG_VFIO_IOMMUFD_DETACH_OP
};

int mdevmig_mdev_probe(struct mdev_device *mdev)
{
	struct mdevmig_dev *mdev_state;
	int ret;

	mdev_state = vfio_alloc_device(mdevmig_dev, vdev, &mdev->dev, &mdevmig_vfio_ops);
	if (IS_ERR(mdev_state))
		return PTR_ERR(mdev_state);

	dev_set_drvdata(&mdev->dev, mdev_state);
	ret = vfio_register_emulated_iommu_dev(&mdev_state->vdev);
	if (ret)
		goto out_put_vdev;
	return 0;

out_put_vdev:
	vfio_put_device(&mdev_state->vdev);
	return ret;
}

void mdevmig_mdev_remove(struct mdev_device *mdev)
{
	struct mdevmig_dev *mdev_state = dev_get_drvdata(&mdev->dev);

	vfio_unregister_group_dev(&mdev_state->vdev);
	vfio_put_device(&mdev_state->vdev);
}
