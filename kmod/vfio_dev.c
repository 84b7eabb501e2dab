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
	struct mdevmig_dev *inst = to_mdevmig_dev(vdev);
	struct mdev_device *mdev = to_mdev_device(vdev->dev);
	struct mdevmig_type *type = container_of(mdev->type, struct mdevmig_type, mtype);
	struct mdevmig_parent *parent = type->parent;
	struct mdevmig_model_config cfg = {};
	int ret;

	inst->parent = parent;
	inst->type = type;
	inst->nr_slots = MDEVMIG_MAX_SLICES / type->divisor;
	ret = mdevmig_slots_claim(parent, inst->nr_slots, &inst->first_slot);
	if (ret)
		return ret;
	inst->mem_size = parent->mem_size / type->divisor;
	inst->mem_offset = (parent->mem_size / MDEVMIG_MAX_SLICES) * inst->first_slot;

	ret = ida_alloc_range(&mdevmig_ids, 1, MDEVMIG_MAX_IDS - 1, GFP_KERNEL);
	if (ret < 0)
		goto out_release_slots;
	inst->id = ret;

	ret = mdevmig_mem_init(inst);
	if (ret)
		goto out_free_id;

	mutex_init(&inst->state_lock);
	mutex_init(&inst->irq_lock);
	mdevmig_engine_init_dev(inst);
	cfg.mem = inst->mem;
	cfg.mem_size = inst->mem_size;
	cfg.type_id = type - parent->types;
	ret = mdevmig_model_init(&inst->model, &cfg, &mdevmig_model_host_ops, inst);
	if (ret)
		goto out_free_mem;
	ret = mdevmig_v1_init(inst);
	if (ret)
		goto out_free_v1;
	mdevmig_mig_init(inst);
	mdevmig_v2_init(inst);
	mdevmig_dmalog_init(inst);
	return 0;

out_free_v1:
	mdevmig_v1_free(inst);
out_free_mem:
	mdevmig_mem_free(inst);
out_free_id:
	ida_free(&mdevmig_ids, inst->id);
out_release_slots:
	mdevmig_slots_release(parent, inst->first_slot, inst->nr_slots);
	return ret;
}

static void mdevmig_vfio_release(struct vfio_device *vdev)
{
	struct mdevmig_dev *inst = to_mdevmig_dev(vdev);

	mdevmig_dmalog_free(inst);
	mutex_destroy(&inst->mig_lock);
	mutex_destroy(&inst->irq_lock);
	mutex_destroy(&inst->state_lock);
	mdevmig_v1_free(inst);
	mdevmig_mem_free(inst);
	ida_free(&mdevmig_ids, inst->id);
	mdevmig_slots_release(inst->parent, inst->first_slot, inst->nr_slots);
	mdevmig_vfio_release_tail(vdev);
}

/*
 * Ends both front-ends' sessions and returns to RUNNING (mdevmig_mig_reset_locked()):
 * for close, and for VFIO_DEVICE_RESET (@run).
 */
static void mdevmig_mig_reset(struct mdevmig_dev *inst, bool run)
{
	mutex_lock(&inst->mig_lock);
	mdevmig_v2_reset_locked(inst);
	mdevmig_v1_reset_locked(inst);
	mdevmig_mig_reset_locked(inst, run);
	mutex_unlock(&inst->mig_lock);
}

static int mdevmig_open_device(struct vfio_device *vdev)
{
	struct mdevmig_dev *inst = to_mdevmig_dev(vdev);

	mutex_lock(&inst->state_lock);
	mdevmig_model_reset(&inst->model);
	inst->opened = true;
	WRITE_ONCE(inst->irq_stopped, false);
	mdevmig_engine_start_locked(inst);
	mutex_unlock(&inst->state_lock);
	return 0;
}

/* Stops the engine and leaves nothing for the next opener: registers, IRQs, memory. */
static void mdevmig_close_device(struct vfio_device *vdev)
{
	struct mdevmig_dev *inst = to_mdevmig_dev(vdev);

	mdevmig_mig_reset(inst, false);	/* data_fds and the v1 session end here */
	mdevmig_engine_lock_for_change(inst);
	inst->opened = false;
	mdevmig_engine_stop_locked(inst);
	mutex_unlock(&inst->state_lock);
	mdevmig_engine_cancel(inst);

	mdevmig_irq_disable_all(inst);
	mdevmig_dmalog_stop(inst);
	mutex_lock(&inst->state_lock);
	mdevmig_model_reset(&inst->model);
	mutex_unlock(&inst->state_lock);
	mdevmig_mem_reset(inst);
}

/* VFIO_DEVICE_RESET: also the way out of a failed migration (ERROR). */
static int mdevmig_reset(struct mdevmig_dev *inst)
{
	mdevmig_mig_reset(inst, true);	/* resets the model with the engine stopped */
	return 0;
}

/* Size and flags of a region; 0 size for the ones the device does not have. */
static u64 mdevmig_region_size(struct mdevmig_dev *inst, unsigned int index, u32 *flags)
{
	*flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
	switch (index) {
	case VFIO_PCI_CONFIG_REGION_INDEX:
		return PCI_CFG_SPACE_SIZE;
	case VFIO_PCI_BAR0_REGION_INDEX:
		return MDEVMIG_REGS_SIZE;
	case VFIO_PCI_BAR2_REGION_INDEX:
		if (!READ_ONCE(inst->force_trapped))
			*flags |= VFIO_REGION_INFO_FLAG_MMAP;
		return inst->mem_size;
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
	struct mdevmig_dev *inst = to_mdevmig_dev(vdev);

	if (info->index >= MDEVMIG_NR_REGIONS)
		return -EINVAL;
	info->size = mdevmig_region_size(inst, info->index, &info->flags);
	info->offset = mdevmig_region_offset(inst, info->index);
	info->cap_offset = 0;
	if (info->index == MDEVMIG_V1_REGION_INDEX) {
		int ret = mdevmig_v1_region_info(inst, info, caps);

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
static int mdevmig_get_region_info(struct mdevmig_dev *inst, unsigned long arg)
{
	unsigned long minsz = offsetofend(struct vfio_region_info, offset);
	struct vfio_info_cap caps = { .buf = NULL, .size = 0 };
	struct vfio_region_info info;
	int ret;

	if (copy_from_user(&info, (void __user *)arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;
	ret = mdevmig_region_info_caps(&inst->vdev, &info, &caps);
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
	struct mdevmig_dev *inst = to_mdevmig_dev(vdev);

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
		return mdevmig_get_region_info(inst, arg);
#endif
	case VFIO_DEVICE_GET_IRQ_INFO:
		return mdevmig_get_irq_info(inst, arg);
	case VFIO_DEVICE_SET_IRQS:
		return mdevmig_set_irqs(inst, arg);
	case VFIO_DEVICE_RESET:
		return mdevmig_reset(inst);
	}
	return -ENOTTY;
}

/* Splits a region offset into region index and offset; -EINVAL if not ours. */
static int mdevmig_decode_pos(struct mdevmig_dev *inst, u64 pos, unsigned int *index,
			      u64 *off)
{
	if ((pos >> MDEVMIG_ID_SHIFT) != inst->id)
		return -EINVAL;
	*index = (pos >> MDEVMIG_REGION_SHIFT) & ((1u << (MDEVMIG_ID_SHIFT - MDEVMIG_REGION_SHIFT)) - 1);
	*off = pos & ((1ULL << MDEVMIG_REGION_SHIFT) - 1);
	return *index < MDEVMIG_NR_REGIONS ? 0 : -EINVAL;
}

/* Config space and BAR0 go through the model, in naturally aligned pieces. */
static ssize_t mdevmig_model_rw(struct mdevmig_dev *inst, unsigned int index,
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
		mutex_lock(&inst->state_lock);
		if (index == VFIO_PCI_CONFIG_REGION_INDEX)
			ret = write ? mdevmig_model_cfg_write(&inst->model, pos, &val, n)
				    : mdevmig_model_cfg_read(&inst->model, pos, &val, n);
		else
			ret = write ? mdevmig_model_mmio_write(&inst->model, pos, &val, n)
				    : mdevmig_model_mmio_read(&inst->model, pos, &val, n);
		mutex_unlock(&inst->state_lock);
		if (ret)
			return done ? done : ret;
		if (!write && copy_to_user(ubuf + done, &val, n))
			return done ? done : -EFAULT;
		done += n;
	}
	return done;
}

static ssize_t mdevmig_rw(struct mdevmig_dev *inst, char __user *ubuf, size_t count,
			  loff_t *ppos, bool write)
{
	unsigned int index;
	ssize_t ret;
	u64 off;

	if (*ppos < 0 || mdevmig_decode_pos(inst, *ppos, &index, &off))
		return -EINVAL;

	switch (index) {
	case VFIO_PCI_CONFIG_REGION_INDEX:
	case VFIO_PCI_BAR0_REGION_INDEX:
		ret = mdevmig_model_rw(inst, index, ubuf, count, off, write);
		break;
	case VFIO_PCI_BAR2_REGION_INDEX:
		ret = mdevmig_bar2_rw(inst, ubuf, count, off, write);
		break;
	case MDEVMIG_V1_REGION_INDEX:
		ret = mdevmig_v1_rw(inst, ubuf, count, off, write);
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
	struct mdevmig_dev *inst = to_mdevmig_dev(vdev);
	unsigned int index;
	u64 off;

	/* An offset beyond 64 bits would alias a window once shifted. */
	if (vma->vm_pgoff > (U64_MAX >> PAGE_SHIFT) ||
	    mdevmig_decode_pos(inst, (u64)vma->vm_pgoff << PAGE_SHIFT, &index, &off))
		return -EINVAL;
	if (index == VFIO_PCI_BAR2_REGION_INDEX)
		return mdevmig_bar2_mmap(inst, vma);
	if (index == MDEVMIG_V1_REGION_INDEX)
		return mdevmig_v1_mmap(inst, vma, off);
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
	struct mdevmig_dev *inst;
	int ret;

	inst = vfio_alloc_device(mdevmig_dev, vdev, &mdev->dev, &mdevmig_vfio_ops);
	if (IS_ERR(inst))
		return PTR_ERR(inst);

	dev_set_drvdata(&mdev->dev, inst);
	ret = vfio_register_emulated_iommu_dev(&inst->vdev);
	if (ret)
		goto out_put_vdev;
	return 0;

out_put_vdev:
	vfio_put_device(&inst->vdev);
	return ret;
}

void mdevmig_mdev_remove(struct mdev_device *mdev)
{
	struct mdevmig_dev *inst = dev_get_drvdata(&mdev->dev);

	vfio_unregister_group_dev(&inst->vdev);
	vfio_put_device(&inst->vdev);
}
