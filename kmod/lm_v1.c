// SPDX-License-Identifier: GPL-2.0
/*
 * The v1 migration region (VFIO_REGION_TYPE_MIGRATION_DEPRECATED / subtype 1), the
 * protocol QEMU up to 7.2 speaks, over the saver and loader of mig.c.
 *
 * Layout: struct vfio_device_migration_info at offset 0 (trapped; accessed one field
 * at a time), the data section at MDEVMIG_V1_DATA_OFFSET (mmap-able).
 *
 * device_state bits (RUNNING, SAVING, RESUMING):
 *   001 running   011 pre-copy   010 stop-and-copy   000 stop   100 resuming
 * Writes are idempotent. Leaving RESUMING (to 000, or straight to 001 as QEMU 7.2
 * does when the destination starts) commits the loaded state; a stream that was
 * incomplete or invalid fails the write with -EINVAL and leaves 110 (error) until
 * VFIO_DEVICE_RESET.
 *
 * Save: reading data_offset stages the next records in the data section and sets
 * data_size; pending_bytes estimates what is left (pre-copy: the initial pass plus
 * dirty pages; it converges as the dirty set shrinks). Resume: write the data to
 * the section, then write data_size; the loader consumes it before the write returns.
 */
#include <linux/module.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/uaccess.h>

#include "mdevmig.h"

#define V1_RUNNING	VFIO_DEVICE_STATE_V1_RUNNING
#define V1_SAVING	VFIO_DEVICE_STATE_V1_SAVING
#define V1_RESUMING	VFIO_DEVICE_STATE_V1_RESUMING
#define V1_MASK		(V1_RUNNING | V1_SAVING | V1_RESUMING)
#define V1_ERROR	(V1_SAVING | V1_RESUMING)

int mdevmig_v1_init(struct mdevmig_dev *inst)
{
	inst->v1.device_state = V1_RUNNING;
	inst->v1.data = vmalloc_user(MDEVMIG_V1_DATA_SIZE);
	return inst->v1.data ? 0 : -ENOMEM;
}

static void mdevmig_v1_end_saving_locked(struct mdevmig_dev *inst)
{
	struct mdevmig_v1 *v1 = &inst->v1;

	lockdep_assert_held(&inst->mig_lock);
	if (!v1->saver)
		return;
	inst->stat_bytes_out += v1->saver->bytes;
	inst->stat_iterations = v1->saver->iterations;
	inst->stat_last_dirty = v1->saver->last_dirty;
	mdevmig_saver_free(v1->saver);
	kfree(v1->saver);
	v1->saver = NULL;
	v1->data_size = 0;
}

/*
 * Ends any v1 session (VFIO_DEVICE_RESET, close). The data section is cleared: it holds
 * device memory staged by a save or a stream written for a resume, which neither the
 * next opener nor the device after a reset may see.
 */
void mdevmig_v1_reset_locked(struct mdevmig_dev *inst)
{
	lockdep_assert_held(&inst->mig_lock);
	mdevmig_v1_end_saving_locked(inst);
	mdevmig_loader_free(&inst->v1.ld, &inst->v1.ldbuf);
	inst->v1.device_state = V1_RUNNING;
	inst->v1.data_size = 0;
	memset(inst->v1.data, 0, MDEVMIG_V1_DATA_SIZE);
}

void mdevmig_v1_free(struct mdevmig_dev *inst)
{
	vfree(inst->v1.data);
}

static bool mdevmig_v1_state_valid(u32 s)
{
	return s == V1_RUNNING || s == (V1_RUNNING | V1_SAVING) || s == V1_SAVING || s == 0 ||
	       s == V1_RESUMING;
}

/* Where the v2 view (sysfs, get_state) stands for a v1 state. */
static enum vfio_device_mig_state mdevmig_v1_as_v2(u32 s)
{
	switch (s) {
	case V1_RUNNING:
	case V1_RUNNING | V1_SAVING:
		return VFIO_DEVICE_STATE_RUNNING;
	case V1_SAVING:
		return VFIO_DEVICE_STATE_STOP_COPY;
	case 0:
		return VFIO_DEVICE_STATE_STOP;
	case V1_RESUMING:
		return VFIO_DEVICE_STATE_RESUMING;
	}
	return VFIO_DEVICE_STATE_ERROR;
}

static int mdevmig_v1_set_state_locked(struct mdevmig_dev *inst, u32 new)
{
	struct mdevmig_v1 *v1 = &inst->v1;
	u32 cur = v1->device_state;
	bool running = new & V1_RUNNING, saving = new & V1_SAVING;
	int ret;

	lockdep_assert_held(&inst->mig_lock);
	new &= V1_MASK;		/* reserved bits are the user's read-modify-write business */
	if (new == cur)
		return 0;
	if (inst->frontend == MDEVMIG_FE_V2)
		return -EBUSY;
	if (cur == V1_ERROR || !mdevmig_v1_state_valid(new))
		return -EINVAL;
	/* Stop-and-copy cannot go back to pre-copy; resuming cannot turn into saving. */
	if ((cur == V1_SAVING && new == (V1_RUNNING | V1_SAVING)) ||
	    ((cur & V1_RESUMING) && saving))
		return -EINVAL;
	/*
	 * The loader's memory is the one thing entering RESUMING can fail on: take it
	 * before anything changes, so a failure leaves the device as it was.
	 */
	if (new & V1_RESUMING) {
		ret = mdevmig_loader_alloc(&v1->ld, &v1->ldbuf);
		if (ret)
			return ret;
	}

	if (cur & V1_RESUMING) {
		ret = mdevmig_loader_end(inst, v1->ld);
		mdevmig_loader_free(&v1->ld, &v1->ldbuf);
		if (ret) {
			v1->device_state = V1_ERROR;
			inst->mig_state = VFIO_DEVICE_STATE_ERROR;
			return ret;
		}
		mdevmig_set_mode(inst, MDEVMIG_MODE_PASSTHROUGH, false);
	}
	if ((cur & V1_SAVING) && !saving) {
		mdevmig_v1_end_saving_locked(inst);
		mdevmig_set_mode(inst, MDEVMIG_MODE_PASSTHROUGH, false);
	}
	if (saving && !(cur & V1_SAVING)) {
		v1->saver = kzalloc(sizeof(*v1->saver), GFP_KERNEL_ACCOUNT);
		if (!v1->saver)
			return -ENOMEM;
		ret = mdevmig_saver_init(v1->saver, inst, !running);
		if (ret) {
			kfree(v1->saver);
			v1->saver = NULL;
			return ret;
		}
		mdevmig_set_mode(inst, running ? MDEVMIG_MODE_TRACKED : MDEVMIG_MODE_TRAPPED, true);
	} else if (saving && !running) {
		/* pre-copy -> stop-and-copy: the same stream goes on to the device state */
		v1->saver->stopcopy = true;
		mdevmig_set_mode(inst, MDEVMIG_MODE_TRAPPED, true);
	}
	if (new & V1_RESUMING) {
		mdevmig_dev_run_locked(inst, false, false);
		ret = mdevmig_loader_start(inst, &v1->ld, &v1->ldbuf);
		if (ret) {
			mdevmig_dev_run_locked(inst, cur & V1_RUNNING, cur & V1_RUNNING);
			return ret;
		}
		mdevmig_set_mode(inst, MDEVMIG_MODE_TRAPPED, false);
	}
	mdevmig_dev_run_locked(inst, running, running);
	v1->device_state = new;
	v1->data_size = 0;
	inst->mig_state = mdevmig_v1_as_v2(new);
	inst->frontend = new == V1_RUNNING ? MDEVMIG_FE_NONE : MDEVMIG_FE_V1;
	return 0;
}

/* Stages the next records in the data section; returns data_offset. */
static u64 mdevmig_v1_stage_locked(struct mdevmig_dev *inst)
{
	struct mdevmig_v1 *v1 = &inst->v1;
	long n;

	lockdep_assert_held(&inst->mig_lock);
	if (v1->saver) {
		n = mdevmig_saver_produce(v1->saver, v1->data, MDEVMIG_V1_DATA_SIZE);
		v1->data_size = n > 0 ? n : 0;
	}
	return MDEVMIG_V1_DATA_OFFSET;
}

static u64 mdevmig_v1_pending_locked(struct mdevmig_dev *inst)
{
	u64 initial, dirty;

	lockdep_assert_held(&inst->mig_lock);
	if (!inst->v1.saver)
		return 0;
	mdevmig_saver_pending(inst->v1.saver, &initial, &dirty);
	return initial + dirty;
}

/* Register access: one whole field per access. */
static ssize_t mdevmig_v1_reg_rw(struct mdevmig_dev *inst, char __user *ubuf,
				 size_t count, u64 off, bool write)
{
	struct mdevmig_v1 *v1 = &inst->v1;
	u64 val = 0;
	int ret = 0;

	switch (off) {
	case offsetof(struct vfio_device_migration_info, device_state):
		if (count != sizeof(u32))
			return -EINVAL;
		break;
	case offsetof(struct vfio_device_migration_info, pending_bytes):
	case offsetof(struct vfio_device_migration_info, data_offset):
	case offsetof(struct vfio_device_migration_info, data_size):
		if (count != sizeof(u64))
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	if (write && copy_from_user(&val, ubuf, count))
		return -EFAULT;

	mutex_lock(&inst->mig_lock);
	switch (off) {
	case offsetof(struct vfio_device_migration_info, device_state):
		if (write)
			ret = mdevmig_v1_set_state_locked(inst, (u32)val);
		else
			val = v1->device_state;
		break;
	case offsetof(struct vfio_device_migration_info, pending_bytes):
		if (write)
			ret = -EINVAL;
		else
			val = mdevmig_v1_pending_locked(inst);
		break;
	case offsetof(struct vfio_device_migration_info, data_offset):
		if (write)
			ret = -EINVAL;
		else
			val = mdevmig_v1_stage_locked(inst);
		break;
	case offsetof(struct vfio_device_migration_info, data_size):
		if (!write) {
			val = v1->data_size;
		} else if (!v1->ld || val > MDEVMIG_V1_DATA_SIZE) {
			ret = -EINVAL;
		} else {
			ret = mdevmig_loader_write(inst, v1->ld, v1->data, val);
			if (ret)
				inst->stat_last_error = mdevmig_loader_reason(v1->ld);
			else
				inst->stat_bytes_in += val;
		}
		break;
	}
	mutex_unlock(&inst->mig_lock);
	if (ret)
		return ret;
	if (!write && copy_to_user(ubuf, &val, count))
		return -EFAULT;
	return count;
}

ssize_t mdevmig_v1_rw(struct mdevmig_dev *inst, char __user *ubuf, size_t count,
		      u64 off, bool write)
{
	if (off < sizeof(struct vfio_device_migration_info))
		return mdevmig_v1_reg_rw(inst, ubuf, count, off, write);
	if (off < MDEVMIG_V1_DATA_OFFSET || off >= MDEVMIG_V1_REGION_SIZE)
		return -EINVAL;
	off -= MDEVMIG_V1_DATA_OFFSET;
	count = min_t(u64, count, MDEVMIG_V1_DATA_SIZE - off);
	if (write ? copy_from_user(inst->v1.data + off, ubuf, count)
		  : copy_to_user(ubuf, inst->v1.data + off, count))
		return -EFAULT;
	return count;
}

/* The data section is mapped whole at mmap time: no fault handler, no locks. */
int mdevmig_v1_mmap(struct mdevmig_dev *inst, struct vm_area_struct *vma, u64 off)
{
	unsigned long size = vma->vm_end - vma->vm_start;

	if (!(vma->vm_flags & VM_SHARED) || off < MDEVMIG_V1_DATA_OFFSET ||
	    off - MDEVMIG_V1_DATA_OFFSET >= MDEVMIG_V1_DATA_SIZE ||
	    size > MDEVMIG_V1_DATA_SIZE - (off - MDEVMIG_V1_DATA_OFFSET))
		return -EINVAL;
	return remap_vmalloc_range(vma, inst->v1.data,
				   (off - MDEVMIG_V1_DATA_OFFSET) >> PAGE_SHIFT);
}

/* Size, flags and type capability of the region; vfio_dev.c adds the mmap-able data section. */
int mdevmig_v1_region_info(struct mdevmig_dev *inst, struct vfio_region_info *info,
			   struct vfio_info_cap *caps)
{
	struct vfio_region_info_cap_type type = {
		.header.id = VFIO_REGION_INFO_CAP_TYPE,
		.header.version = 1,
		.type = VFIO_REGION_TYPE_MIGRATION_DEPRECATED,
		.subtype = VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED,
	};

	info->size = MDEVMIG_V1_REGION_SIZE;
	info->flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
		      VFIO_REGION_INFO_FLAG_MMAP;
	return vfio_info_add_capability(caps, &type.header, sizeof(type));
}
