// SPDX-License-Identifier: GPL-2.0
/*
 * Live migration: what every front-end shares. The saver that produces the device's
 * state stream, the loader wrapper that consumes one, the device-state effects of the
 * migration states, reset of the shared state, and the sysfs view. The front-ends are
 * lm_v2.c (migration_set_state and its data_fd) and lm_v1.c (the v1 region); neither
 * calls the other, and vfio_dev.c drives both.
 *
 * State effects (both front-ends):
 *   RUNNING          engine runs, interrupts on, BAR2 passthrough
 *   RUNNING_P2P      engine stopped (no DMA), MMIO accepted, interrupts on
 *   PRE_COPY(_P2P)   as RUNNING(_P2P), BAR2 tracked: dirty pages feed the stream
 *   STOP             engine stopped, no interrupts
 *   STOP_COPY        STOP + BAR2 trapped with logging: the stream finishes
 *   RESUMING         STOP + BAR2 trapped: the loader writes device memory
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/uaccess.h>

#include "mdevmig.h"

/* Bytes the stream spends per page in a PAGES record of MDEVMIG_SAVE_PAGES pages. */
u64 mdevmig_page_cost(unsigned long pages)
{
	return (u64)pages * MDEVMIG_PAGE_SIZE +
	       DIV_ROUND_UP(pages, MDEVMIG_SAVE_PAGES) * (MDEVMIG_SAVE_RECORD_MAX -
							  MDEVMIG_SAVE_PAGES * MDEVMIG_PAGE_SIZE);
}

/* ---- device-state effects ----------------------------------------------------------- */

/* Lets the engine do DMA (@dma) and the device raise interrupts (@irq), or not. */
void mdevmig_dev_run_locked(struct mdevmig_dev *inst, bool dma, bool irq)
{
	lockdep_assert_held(&inst->mig_lock);
	mdevmig_engine_lock_for_change(inst);
	WRITE_ONCE(inst->irq_stopped, !irq);
	if (dma)
		mdevmig_engine_start_locked(inst);
	else
		mdevmig_engine_stop_locked(inst);
	mutex_unlock(&inst->state_lock);
	if (irq)
		mdevmig_irq_resume(inst);
}

/* ---- the saver -------------------------------------------------------------------------- */

int mdevmig_saver_init(struct mdevmig_saver *saver, struct mdevmig_dev *inst,
		       bool stopcopy)
{
	memset(saver, 0, sizeof(*saver));
	saver->inst = inst;
	saver->stopcopy = stopcopy;
	saver->to_send = bitmap_zalloc(inst->nr_pages, GFP_KERNEL);
	return saver->to_send ? 0 : -ENOMEM;
}

void mdevmig_saver_free(struct mdevmig_saver *saver)
{
	bitmap_free(saver->to_send);
	saver->to_send = NULL;
}

/* Emits the next run of up to MDEVMIG_SAVE_PAGES harvested pages. */
static long mdevmig_saver_put_dirty(struct mdevmig_saver *saver, u8 *buf, size_t size)
{
	struct mdevmig_dev *inst = saver->inst;
	unsigned long first, end;
	long n;

	first = find_first_bit(saver->to_send, inst->nr_pages);
	end = find_next_zero_bit(saver->to_send, inst->nr_pages, first);
	end = min(end, first + MDEVMIG_SAVE_PAGES);
	n = mdevmig_stream_put_pages(&inst->model, first, end - first, buf, size);
	if (n > 0) {
		bitmap_clear(saver->to_send, first, end - first);
		saver->to_send_count -= end - first;
	}
	return n;
}

/* One record into @buf, or 0 at the end of the stream, or -ENOMSG (pre-copy: no data now). */
static long mdevmig_saver_next(struct mdevmig_saver *saver, u8 *buf, size_t size)
{
	struct mdevmig_dev *inst = saver->inst;
	unsigned long found;
	long n;

	if (!saver->compat_sent) {
		n = mdevmig_stream_put_compat(&inst->model, buf, size);
		saver->compat_sent = n > 0;
		return n;
	}
	if (saver->next_page < inst->nr_pages) {
		u32 count = min_t(unsigned long, MDEVMIG_SAVE_PAGES,
				  inst->nr_pages - saver->next_page);

		n = mdevmig_stream_put_pages(&inst->model, saver->next_page, count, buf, size);
		if (n > 0)
			saver->next_page += count;
		return n;
	}
	if (!saver->to_send_count) {
		found = mdevmig_dirty_harvest(inst, saver->to_send);
		saver->to_send_count = bitmap_weight(saver->to_send, inst->nr_pages);
		if (found) {
			saver->iterations++;
			saver->last_dirty = found;
		}
	}
	if (saver->to_send_count)
		return mdevmig_saver_put_dirty(saver, buf, size);
	if (!saver->stopcopy)
		return -ENOMSG;
	if (!saver->state_sent) {
		mutex_lock(&inst->state_lock);
		n = mdevmig_stream_put_state(&inst->model, buf, size);
		mutex_unlock(&inst->state_lock);
		saver->state_sent = n > 0;
		return n;
	}
	if (!saver->end_sent) {
		n = mdevmig_stream_put_end(buf, size);
		saver->end_sent = n > 0;
		return n;
	}
	return 0;
}

/*
 * Fills @buf with whole records: returns the bytes written, 0 at the end of the
 * stream, -ENOMSG when pre-copy has nothing to send right now.
 */
long mdevmig_saver_produce(struct mdevmig_saver *saver, u8 *buf, size_t size)
{
	size_t done = 0;

	while (done < size) {
		long n = mdevmig_saver_next(saver, buf + done, size - done);

		if (n == -ENOSPC && done)
			break;		/* the next record goes in the next buffer */
		if (n <= 0) {
			if (done)
				break;
			return n;
		}
		done += n;
	}
	saver->bytes += done;
	return done;
}

/* What is left to send: the initial pass, and pages dirtied since (an estimate). */
void mdevmig_saver_pending(struct mdevmig_saver *saver, u64 *initial, u64 *dirty)
{
	struct mdevmig_dev *inst = saver->inst;

	*initial = mdevmig_page_cost(inst->nr_pages - saver->next_page);
	if (!saver->compat_sent)
		*initial += MDEVMIG_SMALL_RECORD_MAX;
	*dirty = mdevmig_page_cost(saver->to_send_count + mdevmig_dirty_count(inst));
	if (saver->stopcopy && !saver->end_sent)
		*dirty += mdevmig_stream_state_size() + MDEVMIG_SMALL_RECORD_MAX;
}

/* ---- the loader -------------------------------------------------------------------------- */

/* The loader and its record buffer, charged to the opener's memory cgroup. */
int mdevmig_loader_alloc(struct mdevmig_loader **ld, u8 **ldbuf)
{
	*ld = kzalloc(sizeof(**ld), GFP_KERNEL_ACCOUNT);
	*ldbuf = __vmalloc(MDEVMIG_LOADER_BUF_SIZE, GFP_KERNEL_ACCOUNT);
	if (!*ld || !*ldbuf) {
		mdevmig_loader_free(ld, ldbuf);
		return -ENOMEM;
	}
	return 0;
}

/*
 * Starts a load into the model (which it resets; the engine must be stopped). Uses a
 * loader from mdevmig_loader_alloc() if *@ld is one, else allocates it.
 */
int mdevmig_loader_start(struct mdevmig_dev *inst, struct mdevmig_loader **ld, u8 **ldbuf)
{
	int ret;

	if (!*ld) {
		ret = mdevmig_loader_alloc(ld, ldbuf);
		if (ret)
			return ret;
	}
	mutex_lock(&inst->state_lock);
	ret = mdevmig_loader_init(*ld, &inst->model, *ldbuf, MDEVMIG_LOADER_BUF_SIZE);
	mutex_unlock(&inst->state_lock);
	if (ret)
		mdevmig_loader_free(ld, ldbuf);
	return ret;
}

/* A rejected stream is the sender's doing: the log stays readable under a flood of them. */
static void mdevmig_loader_report(struct mdevmig_dev *inst, struct mdevmig_loader *ld)
{
	dev_warn_ratelimited(inst->vdev.dev, "resume rejected at stream byte %llu: %s\n",
			     ld->offset, mdevmig_loader_reason_str(mdevmig_loader_reason(ld)));
}

/*
 * Feeds @len bytes; on the first failure logs the reason once. The caller serializes
 * the use of @ld (the v1 region under mig_lock, a data_fd under its own lock) and
 * records the bytes and the failure in the stat_* fields under mig_lock.
 */
int mdevmig_loader_write(struct mdevmig_dev *inst, struct mdevmig_loader *ld,
			 const u8 *data, size_t len)
{
	bool failed_before = ld->err != 0;
	int ret;

	mutex_lock(&inst->state_lock);
	ret = mdevmig_loader_feed(ld, data, len);
	mutex_unlock(&inst->state_lock);
	if (ret && !failed_before)
		mdevmig_loader_report(inst, ld);
	return ret;
}

/* Completes a load (under mig_lock): 0 if the stream was whole and valid, else -EINVAL. */
int mdevmig_loader_end(struct mdevmig_dev *inst, struct mdevmig_loader *ld)
{
	bool failed_before = ld->err != 0;
	int ret;

	lockdep_assert_held(&inst->mig_lock);
	mutex_lock(&inst->state_lock);
	ret = mdevmig_loader_finish(ld);
	mutex_unlock(&inst->state_lock);
	if (ret && !failed_before)
		mdevmig_loader_report(inst, ld);
	if (ret)
		inst->stat_last_error = mdevmig_loader_reason(ld);
	return ret;
}

void mdevmig_loader_free(struct mdevmig_loader **ld, u8 **ldbuf)
{
	kfree(*ld);
	vfree(*ldbuf);
	*ld = NULL;
	*ldbuf = NULL;
}

/* ---- shared state ------------------------------------------------------------------- */

void mdevmig_mig_init(struct mdevmig_dev *inst)
{
	mutex_init(&inst->mig_lock);
	inst->mig_state = VFIO_DEVICE_STATE_RUNNING;
}

/*
 * Back to RUNNING with no session open, for VFIO_DEVICE_RESET and close, once the
 * front-ends have ended theirs: the way out of ERROR and of any abandoned migration.
 * @run (VFIO_DEVICE_RESET): the device model is reset with the engine stopped, and
 * only then may the device run again, so no descriptor queued before the reset is ever
 * executed and no interrupt of it is raised. Close stops the engine and resets the
 * model itself.
 */
void mdevmig_mig_reset_locked(struct mdevmig_dev *inst, bool run)
{
	lockdep_assert_held(&inst->mig_lock);
	inst->mig_state = VFIO_DEVICE_STATE_RUNNING;
	inst->frontend = MDEVMIG_FE_NONE;
	mdevmig_set_mode(inst, MDEVMIG_MODE_PASSTHROUGH, false);
	if (run) {
		mdevmig_engine_lock_for_change(inst);
		WRITE_ONCE(inst->irq_stopped, true);
		mdevmig_engine_stop_locked(inst);
		mdevmig_model_reset(&inst->model);
		mutex_unlock(&inst->state_lock);
		mdevmig_dev_run_locked(inst, true, true);
	}
}

/* ---- sysfs: /sys/bus/mdev/devices/<uuid>/mdevmig/migration ------------------------------ */

static const char *const mdevmig_state_names[] = {
	[VFIO_DEVICE_STATE_ERROR] = "error",
	[VFIO_DEVICE_STATE_STOP] = "stop",
	[VFIO_DEVICE_STATE_RUNNING] = "running",
	[VFIO_DEVICE_STATE_STOP_COPY] = "stop_copy",
	[VFIO_DEVICE_STATE_RESUMING] = "resuming",
	[VFIO_DEVICE_STATE_RUNNING_P2P] = "running_p2p",
	[VFIO_DEVICE_STATE_PRE_COPY] = "pre_copy",
	[VFIO_DEVICE_STATE_PRE_COPY_P2P] = "pre_copy_p2p",
};

static ssize_t migration_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct mdevmig_dev *inst = dev_get_drvdata(dev);
	static const char *const fe[] = { "none", "v2", "v1" };
	ssize_t n;

	mutex_lock(&inst->mig_lock);
	n = sysfs_emit(buf,
		       "state=%s\nfrontend=%s\nbytes_sent=%llu\nbytes_received=%llu\n"
		       "precopy_iterations=%u\ndirty_pages_last_pass=%lu\nlast_load_error=%s\n"
		       "v1_device_state=%u\n",
		       inst->mig_state < ARRAY_SIZE(mdevmig_state_names) &&
		       mdevmig_state_names[inst->mig_state] ?
		       mdevmig_state_names[inst->mig_state] : "?",
		       fe[inst->frontend], inst->stat_bytes_out,
		       inst->stat_bytes_in, inst->stat_iterations,
		       inst->stat_last_dirty,
		       inst->stat_last_error ?
		       mdevmig_loader_reason_str(inst->stat_last_error) : "none",
		       inst->v1.device_state);
	mutex_unlock(&inst->mig_lock);
	return n;
}
struct device_attribute mdevmig_dev_attr_migration = __ATTR_RO(migration);
