// SPDX-License-Identifier: GPL-2.0
/*
 * The v2 migration front-end: migration_set_state/get_state/get_data_size and the
 * data_fd of a saving or resuming session, over the saver and loader of mig.c.
 */
#include <linux/module.h>
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "mdevmig.h"

/* ---- v2: data_fd ------------------------------------------------------------------------ */

/*
 * Adds a session's totals to the device's stat_* fields, which mig_lock protects. A
 * data_fd is only ever disabled by the driver under mig_lock: the driver holds a file
 * reference until then, so a user's close never gets to disable it first.
 */
static void mdevmig_migf_fold_stats_locked(struct mdevmig_dev *inst,
					   struct mdevmig_migf *migf)
{
	lockdep_assert_held(&inst->mig_lock);
	lockdep_assert_held(&migf->lock);
	if (migf->saving) {
		inst->stat_bytes_out += migf->saver.bytes;
		inst->stat_iterations = migf->saver.iterations;
		inst->stat_last_dirty = migf->saver.last_dirty;
		return;
	}
	inst->stat_bytes_in += migf->bytes_in;
	if (migf->ld && migf->ld->err)
		inst->stat_last_error = mdevmig_loader_reason(migf->ld);
}

/*
 * Stops a data_fd for good: its buffers go, later reads and writes get -ENODEV. With
 * @inst (the driver's call, under mig_lock) the session's totals are kept.
 */
static void mdevmig_migf_disable(struct mdevmig_migf *migf, struct mdevmig_dev *inst)
{
	mutex_lock(&migf->lock);
	if (!migf->disabled) {

		migf->disabled = true;
		if (inst)
			mdevmig_migf_fold_stats_locked(inst, migf);
		mdevmig_saver_free(&migf->saver);
		kvfree(migf->buf);
		migf->buf = NULL;
		mdevmig_loader_free(&migf->ld, &migf->ldbuf);
	}
	mutex_unlock(&migf->lock);
}

static int mdevmig_migf_release(struct inode *inode, struct file *filp)
{
	struct mdevmig_migf *migf = filp->private_data;

	mdevmig_migf_disable(migf, NULL);	/* already disabled by the driver */
	mutex_destroy(&migf->lock);
	kfree(migf);
	return 0;
}

static ssize_t mdevmig_save_read(struct file *filp, char __user *ubuf, size_t len, loff_t *pos)
{
	struct mdevmig_migf *migf = filp->private_data;
	ssize_t done = 0;
	long n = 0;

	if (pos)
		return -ESPIPE;
	mutex_lock(&migf->lock);
	if (migf->disabled) {
		done = -ENODEV;
		goto out_unlock;
	}
	while (done < len) {
		size_t chunk;

		if (migf->buf_pos == migf->buf_len) {
			n = mdevmig_saver_produce(&migf->saver, migf->buf, MDEVMIG_SAVE_RECORD_MAX);
			if (n <= 0)
				break;
			migf->buf_len = n;
			migf->buf_pos = 0;
		}
		chunk = min_t(size_t, len - done, migf->buf_len - migf->buf_pos);
		if (copy_to_user(ubuf + done, migf->buf + migf->buf_pos, chunk)) {
			n = -EFAULT;
			break;
		}
		migf->buf_pos += chunk;
		done += chunk;
	}
	if (!done && n < 0)
		done = n;	/* -ENOMSG: temporary end of pre-copy data */
out_unlock:
	mutex_unlock(&migf->lock);
	return done;
}

static long mdevmig_precopy_info(struct mdevmig_migf *migf, unsigned long arg)
{
	struct mdevmig_dev *inst = migf->inst;
	unsigned long minsz = offsetofend(struct vfio_precopy_info, dirty_bytes);
	struct vfio_precopy_info info;
	u64 staged;
	int ret = 0;

	if (copy_from_user(&info, (void __user *)arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;

	mutex_lock(&migf->lock);
	if (migf->disabled) {
		ret = -ENODEV;
	} else {
		enum vfio_device_mig_state state = READ_ONCE(inst->mig_state);

		if (state != VFIO_DEVICE_STATE_PRE_COPY && state != VFIO_DEVICE_STATE_PRE_COPY_P2P) {
			ret = -EINVAL;
		} else {
			mdevmig_saver_pending(&migf->saver, &info.initial_bytes, &info.dirty_bytes);
			staged = migf->buf_len - migf->buf_pos;
			if (migf->saver.next_page < inst->nr_pages || !migf->saver.compat_sent)
				info.initial_bytes += staged;
			else
				info.dirty_bytes += staged;
		}
	}
	mutex_unlock(&migf->lock);
	info.flags = 0;
	if (!ret && copy_to_user((void __user *)arg, &info, minsz))
		ret = -EFAULT;
	return ret;
}

static long mdevmig_save_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	/* Only where the device advertises PRE_COPY; elsewhere the ioctl is unknown. */
	if (cmd == VFIO_MIG_GET_PRECOPY_INFO && MDEVMIG_MIGRATION_PRE_COPY != 0)
		return mdevmig_precopy_info(filp->private_data, arg);
	return -ENOTTY;
}

static ssize_t mdevmig_resume_write(struct file *filp, const char __user *ubuf, size_t len,
				    loff_t *pos)
{
	struct mdevmig_migf *migf = filp->private_data;
	ssize_t done = 0;
	int ret = 0;

	if (pos)
		return -ESPIPE;
	mutex_lock(&migf->lock);
	if (migf->disabled) {
		ret = -ENODEV;
		goto out_unlock;
	}
	while (done < len) {
		size_t chunk = min_t(size_t, len - done, MDEVMIG_SAVE_RECORD_MAX);

		/* The staging buffer of a resuming file is free: reuse it for user data. */
		if (copy_from_user(migf->buf, ubuf + done, chunk)) {
			ret = -EFAULT;
			break;
		}
		ret = mdevmig_loader_write(migf->inst, migf->ld, migf->buf, chunk);
		if (ret)
			break;
		done += chunk;
	}
	migf->bytes_in += done;
out_unlock:
	mutex_unlock(&migf->lock);
	return done ? done : ret;
}

static const struct file_operations mdevmig_save_fops = {
	.owner = THIS_MODULE,
	.read = mdevmig_save_read,
	.unlocked_ioctl = mdevmig_save_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.release = mdevmig_migf_release,
};

static const struct file_operations mdevmig_resume_fops = {
	.owner = THIS_MODULE,
	.write = mdevmig_resume_write,
	.release = mdevmig_migf_release,
};

static struct mdevmig_migf *mdevmig_migf_create(struct mdevmig_dev *inst, bool saving,
						bool stopcopy)
{
	struct mdevmig_migf *migf;
	int ret;

	migf = kzalloc(sizeof(*migf), GFP_KERNEL);
	if (!migf)
		return ERR_PTR(-ENOMEM);
	mutex_init(&migf->lock);
	migf->inst = inst;
	migf->saving = saving;
	migf->buf = kvmalloc(MDEVMIG_SAVE_RECORD_MAX, GFP_KERNEL_ACCOUNT);
	if (!migf->buf) {
		ret = -ENOMEM;
		goto out_free;
	}
	ret = saving ? mdevmig_saver_init(&migf->saver, inst, stopcopy)
		     : mdevmig_loader_start(inst, &migf->ld, &migf->ldbuf);
	if (ret)
		goto out_free;

	migf->filp = anon_inode_getfile("mdevmig_mig", saving ? &mdevmig_save_fops : &mdevmig_resume_fops,
					migf, saving ? O_RDONLY : O_WRONLY);
	if (IS_ERR(migf->filp)) {
		ret = PTR_ERR(migf->filp);
		goto out_free;
	}
	stream_open(migf->filp->f_inode, migf->filp);
	return migf;

out_free:
	mdevmig_saver_free(&migf->saver);
	mdevmig_loader_free(&migf->ld, &migf->ldbuf);
	kvfree(migf->buf);
	kfree(migf);
	return ERR_PTR(ret);
}

/* Disables both data_fds and drops the driver's references to them. */
static void mdevmig_migf_close_all_locked(struct mdevmig_dev *inst)
{
	lockdep_assert_held(&inst->mig_lock);
	if (inst->saving_migf) {
		mdevmig_migf_disable(inst->saving_migf, inst);
		fput(inst->saving_migf->filp);
		inst->saving_migf = NULL;
	}
	if (inst->resuming_migf) {
		mdevmig_migf_disable(inst->resuming_migf, inst);
		fput(inst->resuming_migf->filp);
		inst->resuming_migf = NULL;
	}
}

/* Starts a saving or resuming data_fd; the core installs the returned file as an fd. */
static struct file *mdevmig_migf_open_locked(struct mdevmig_dev *inst, bool saving,
					     bool stopcopy)
{
	struct mdevmig_migf *migf;

	lockdep_assert_held(&inst->mig_lock);
	migf = mdevmig_migf_create(inst, saving, stopcopy);
	if (IS_ERR(migf))
		return ERR_CAST(migf);
	get_file(migf->filp);	/* the driver's reference, dropped when disabled */
	if (saving)
		inst->saving_migf = migf;
	else
		inst->resuming_migf = migf;
	return migf->filp;
}

/* One FSM arc; vfio_mig_get_next_state() composes the paths. */
static struct file *mdevmig_step_state_locked(struct mdevmig_dev *inst,
					      enum vfio_device_mig_state cur,
					      enum vfio_device_mig_state new)
{
	struct file *filp;
	int ret;

	lockdep_assert_held(&inst->mig_lock);

	/* Arcs that change how the device runs and nothing else. */
	if (cur == VFIO_DEVICE_STATE_RUNNING && new == VFIO_DEVICE_STATE_RUNNING_P2P) {
		mdevmig_dev_run_locked(inst, false, true);
		return NULL;
	}
	if (cur == VFIO_DEVICE_STATE_RUNNING_P2P && new == VFIO_DEVICE_STATE_RUNNING) {
		mdevmig_dev_run_locked(inst, true, true);
		return NULL;
	}
	if (cur == VFIO_DEVICE_STATE_RUNNING_P2P && new == VFIO_DEVICE_STATE_STOP) {
		mdevmig_dev_run_locked(inst, false, false);
		return NULL;
	}
	if (cur == VFIO_DEVICE_STATE_STOP && new == VFIO_DEVICE_STATE_RUNNING_P2P) {
		mdevmig_dev_run_locked(inst, false, true);
		return NULL;
	}
	if (cur == VFIO_DEVICE_STATE_PRE_COPY && new == VFIO_DEVICE_STATE_PRE_COPY_P2P) {
		mdevmig_dev_run_locked(inst, false, true);
		return NULL;
	}
	if (cur == VFIO_DEVICE_STATE_PRE_COPY_P2P && new == VFIO_DEVICE_STATE_PRE_COPY) {
		mdevmig_dev_run_locked(inst, true, true);
		return NULL;
	}

	/* Arcs that end a data transfer session. */
	if (cur == VFIO_DEVICE_STATE_STOP_COPY && new == VFIO_DEVICE_STATE_STOP) {
		mdevmig_migf_close_all_locked(inst);
		mdevmig_set_mode(inst, MDEVMIG_MODE_PASSTHROUGH, false);
		return NULL;
	}
	if (cur == VFIO_DEVICE_STATE_RESUMING && new == VFIO_DEVICE_STATE_STOP) {
		struct mdevmig_migf *migf = inst->resuming_migf;

		mutex_lock(&migf->lock);
		ret = mdevmig_loader_end(inst, migf->ld);
		mutex_unlock(&migf->lock);
		mdevmig_migf_close_all_locked(inst);
		if (ret)
			return ERR_PTR(ret);
		mdevmig_set_mode(inst, MDEVMIG_MODE_PASSTHROUGH, false);
		return NULL;
	}
	if ((cur == VFIO_DEVICE_STATE_PRE_COPY && new == VFIO_DEVICE_STATE_RUNNING) ||
	    (cur == VFIO_DEVICE_STATE_PRE_COPY_P2P && new == VFIO_DEVICE_STATE_RUNNING_P2P)) {
		/* A cancelled migration: nothing was changed, tracking just stops. */
		mdevmig_migf_close_all_locked(inst);
		mdevmig_set_mode(inst, MDEVMIG_MODE_PASSTHROUGH, false);
		return NULL;
	}

	/* Arcs that open a data transfer session. */
	if (cur == VFIO_DEVICE_STATE_STOP && new == VFIO_DEVICE_STATE_STOP_COPY) {
		mdevmig_set_mode(inst, MDEVMIG_MODE_TRAPPED, true);
		filp = mdevmig_migf_open_locked(inst, true, true);
		if (IS_ERR(filp))
			mdevmig_set_mode(inst, MDEVMIG_MODE_PASSTHROUGH, false);
		return filp;
	}
	if (cur == VFIO_DEVICE_STATE_STOP && new == VFIO_DEVICE_STATE_RESUMING) {
		mdevmig_set_mode(inst, MDEVMIG_MODE_TRAPPED, false);
		filp = mdevmig_migf_open_locked(inst, false, false);
		if (IS_ERR(filp))
			mdevmig_set_mode(inst, MDEVMIG_MODE_PASSTHROUGH, false);
		return filp;
	}
	if ((cur == VFIO_DEVICE_STATE_RUNNING && new == VFIO_DEVICE_STATE_PRE_COPY) ||
	    (cur == VFIO_DEVICE_STATE_RUNNING_P2P && new == VFIO_DEVICE_STATE_PRE_COPY_P2P)) {
		mdevmig_set_mode(inst, MDEVMIG_MODE_TRACKED, true);
		filp = mdevmig_migf_open_locked(inst, true, false);
		if (IS_ERR(filp))
			mdevmig_set_mode(inst, MDEVMIG_MODE_PASSTHROUGH, false);
		return filp;
	}
	if (cur == VFIO_DEVICE_STATE_PRE_COPY_P2P && new == VFIO_DEVICE_STATE_STOP_COPY) {
		struct mdevmig_migf *migf = inst->saving_migf;

		mdevmig_dev_run_locked(inst, false, false);
		mdevmig_set_mode(inst, MDEVMIG_MODE_TRAPPED, true);
		mutex_lock(&migf->lock);
		migf->saver.stopcopy = true;
		mutex_unlock(&migf->lock);
		return NULL;
	}

	WARN_ON(true);	/* vfio_mig_get_next_state() only composes the arcs above */
	return ERR_PTR(-EINVAL);
}

static struct file *mdevmig_set_state(struct vfio_device *vdev,
				      enum vfio_device_mig_state new_state)
{
	struct mdevmig_dev *inst = container_of(vdev, struct mdevmig_dev, vdev);
	enum vfio_device_mig_state next;
	struct file *res = NULL;
	int ret;

	mutex_lock(&inst->mig_lock);
	if (inst->frontend == MDEVMIG_FE_V1) {
		res = ERR_PTR(-EBUSY);	/* the v1 region is in use */
		goto out_unlock;
	}
	while (inst->mig_state != new_state) {
		/*
		 * ERROR is left only by a reset: the core's path table has no arcs out of
		 * it and WARNs when asked for one.
		 */
		if (inst->mig_state == VFIO_DEVICE_STATE_ERROR) {
			res = ERR_PTR(-EINVAL);
			break;
		}
		ret = vfio_mig_get_next_state(vdev, inst->mig_state, new_state, &next);
		if (ret) {
			res = ERR_PTR(ret);
			break;
		}
		res = mdevmig_step_state_locked(inst, inst->mig_state, next);
		if (IS_ERR(res)) {
			/* A failed load leaves nothing to go back to: the device needs a reset. */
			if (inst->mig_state == VFIO_DEVICE_STATE_RESUMING)
				inst->mig_state = VFIO_DEVICE_STATE_ERROR;
			break;
		}
		inst->mig_state = next;
		if (WARN_ON(res && new_state != next)) {
			res = ERR_PTR(-EINVAL);
			break;
		}
	}
	inst->frontend = inst->mig_state == VFIO_DEVICE_STATE_RUNNING ?
			 MDEVMIG_FE_NONE : MDEVMIG_FE_V2;
out_unlock:
	mutex_unlock(&inst->mig_lock);
	return res;
}

static int mdevmig_get_state(struct vfio_device *vdev, enum vfio_device_mig_state *state)
{
	struct mdevmig_dev *inst = container_of(vdev, struct mdevmig_dev, vdev);

	mutex_lock(&inst->mig_lock);
	*state = inst->mig_state;
	mutex_unlock(&inst->mig_lock);
	return 0;
}

/*
 * STOP_COPY bytes if the device stopped now: pages not sent yet plus the device state.
 * An op of kernels with pre-copy only (compat.h).
 */
static int __maybe_unused mdevmig_get_data_size(struct vfio_device *vdev,
						unsigned long *stop_copy_length)
{
	struct mdevmig_dev *inst = container_of(vdev, struct mdevmig_dev, vdev);
	u64 initial, dirty;

	mutex_lock(&inst->mig_lock);
	if (inst->saving_migf) {
		struct mdevmig_migf *migf = inst->saving_migf;

		mutex_lock(&migf->lock);
		mdevmig_saver_pending(&migf->saver, &initial, &dirty);
		mutex_unlock(&migf->lock);
		if (!migf->saver.stopcopy)
			dirty += mdevmig_stream_state_size() + MDEVMIG_SMALL_RECORD_MAX;
	} else {
		initial = MDEVMIG_SMALL_RECORD_MAX + mdevmig_page_cost(inst->nr_pages);
		dirty = mdevmig_stream_state_size() + MDEVMIG_SMALL_RECORD_MAX;
	}
	mutex_unlock(&inst->mig_lock);
	*stop_copy_length = initial + dirty;
	return 0;
}

static const struct vfio_migration_ops mdevmig_mig_ops = {
	.migration_set_state = mdevmig_set_state,
	.migration_get_state = mdevmig_get_state,
	MDEVMIG_MIG_OPS_GET_DATA_SIZE(mdevmig_get_data_size)
};

void mdevmig_v2_init(struct mdevmig_dev *inst)
{
	inst->vdev.migration_flags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P |
				     MDEVMIG_MIGRATION_PRE_COPY;
	inst->vdev.mig_ops = &mdevmig_mig_ops;
}

/* Ends any v2 session (VFIO_DEVICE_RESET, close): both data_fds are disabled. */
void mdevmig_v2_reset_locked(struct mdevmig_dev *inst)
{
	lockdep_assert_held(&inst->mig_lock);
	mdevmig_migf_close_all_locked(inst);
}
