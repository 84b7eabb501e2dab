// SPDX-License-Identifier: GPL-2.0
/*
 * The device model's host side: DMA into guest memory through vfio_dma_rw() (no pins;
 * the type1 container sees every written page as dirty), interrupts, and the work item
 * that runs the DMA engine in bounded steps.
 */
#include <linux/module.h>

#include "mdevmig.h"

/* Model steps per work-item run; the item requeues itself while work remains. */
#define MDEVMIG_ENGINE_BUDGET	16

/*
 * The engine runs on a host workqueue, charged to no VM: a guest queues up to 4096
 * descriptors of up to 1 GiB with one doorbell. Each instance's engine is held to a
 * budget in bytes per second (sysfs engine_budget, 0: unlimited), a token bucket that
 * charges every step MDEVMIG_DMA_STEP_BYTES, the most one step moves or hashes, so
 * small descriptors cost a full step. Bursts are capped at a tenth of a second's
 * worth. When the bucket is empty the work item sleeps until it holds a step again.
 */
static unsigned long long engine_budget = 1ull << 30;
module_param(engine_budget, ullong, 0644);
MODULE_PARM_DESC(engine_budget,
		 "Default DMA engine budget of a new instance in bytes per second (default 1 GiB/s; 0: unlimited)");

/* engine_budget values the sysfs knob accepts besides 0. */
#define MDEVMIG_ENGINE_BUDGET_MIN	MDEVMIG_DMA_STEP_BYTES
#define MDEVMIG_ENGINE_BUDGET_MAX	(1ull << 40)

static struct workqueue_struct *mdevmig_wq;

static void mdevmig_engine_queue(struct mdevmig_dev *inst, unsigned long delay)
{
	queue_delayed_work(mdevmig_wq, &inst->engine_work, delay);
}

/*
 * Steps the engine may run now under its budget (at most MDEVMIG_ENGINE_BUDGET); if
 * none, *delay is the jiffies until the bucket holds one step.
 */
static unsigned int mdevmig_engine_allowance_locked(struct mdevmig_dev *inst,
						    unsigned long *delay)
{
	u64 budget = READ_ONCE(inst->engine_budget);
	unsigned long now = jiffies, elapsed;
	u64 cap, steps;

	lockdep_assert_held(&inst->state_lock);
	if (!budget)
		return MDEVMIG_ENGINE_BUDGET;
	cap = max_t(u64, budget / 10, MDEVMIG_DMA_STEP_BYTES);
	elapsed = min_t(unsigned long, now - inst->engine_refill, HZ);
	inst->engine_refill = now;
	inst->engine_tokens = min(cap, inst->engine_tokens + budget * elapsed / HZ);
	steps = min_t(u64, inst->engine_tokens / MDEVMIG_DMA_STEP_BYTES,
		      MDEVMIG_ENGINE_BUDGET);
	if (!steps)
		*delay = max_t(unsigned long, 1,
			       DIV_ROUND_UP_ULL((MDEVMIG_DMA_STEP_BYTES - inst->engine_tokens) *
						HZ, budget));
	return steps;
}

static int mdevmig_host_dma_read(void *host, uint64_t iova, void *buf, size_t len)
{
	struct mdevmig_dev *inst = host;

	return vfio_dma_rw(&inst->vdev, iova, buf, len, false);
}

static int mdevmig_host_dma_write(void *host, uint64_t iova, const void *buf, size_t len)
{
	struct mdevmig_dev *inst = host;
	int ret = vfio_dma_rw(&inst->vdev, iova, (void *)buf, len, true);

	if (!ret)
		mdevmig_dmalog_mark(inst, iova, len);
	return ret;
}

static void mdevmig_host_msi(void *host, unsigned int vector)
{
	struct mdevmig_dev *inst = host;

	lockdep_assert_held(&inst->state_lock);
	if (!READ_ONCE(inst->irq_stopped))
		mdevmig_irq_msi(inst, vector);
}

static void mdevmig_host_intx(void *host, bool asserted)
{
	struct mdevmig_dev *inst = host;

	lockdep_assert_held(&inst->state_lock);
	mdevmig_irq_intx(inst, asserted);
}

static void mdevmig_host_kick(void *host)
{
	struct mdevmig_dev *inst = host;

	lockdep_assert_held(&inst->state_lock);
	if (!inst->engine_stopped && inst->opened)
		mdevmig_engine_queue(inst, 0);
}

static void mdevmig_host_mem_dirty(void *host, uint64_t offset, uint64_t len)
{
	struct mdevmig_dev *inst = host;
	unsigned long first, last;

	if (!len || !READ_ONCE(inst->logging))
		return;
	first = offset >> PAGE_SHIFT;
	last = (offset + len - 1) >> PAGE_SHIFT;
	for (; first <= last && first < inst->nr_pages; first++)
		set_bit(first, inst->dirty);
}

const struct mdevmig_model_ops mdevmig_model_host_ops = {
	.dma_read = mdevmig_host_dma_read,
	.dma_write = mdevmig_host_dma_write,
	.msi = mdevmig_host_msi,
	.intx = mdevmig_host_intx,
	.kick = mdevmig_host_kick,
	.mem_dirty = mdevmig_host_mem_dirty,
};

static void mdevmig_engine_work(struct work_struct *work)
{
	struct mdevmig_dev *inst = container_of(to_delayed_work(work), struct mdevmig_dev,
						 engine_work);
	unsigned int allowed, steps = 0;
	unsigned long delay = 0;
	int more;

	mutex_lock(&inst->state_lock);
	/*
	 * A self-requeuing work item re-takes the mutex before a woken waiter runs, so a
	 * busy queue could hold off a state change until it drained. A waiting state change
	 * makes the engine step aside; it requeues the work when it lets the engine run.
	 */
	if (atomic_read(&inst->engine_yield)) {
		mutex_unlock(&inst->state_lock);
		return;
	}
	if (inst->engine_stopped || !inst->opened)
		goto out_unlock;
	allowed = mdevmig_engine_allowance_locked(inst, &delay);
	if (!allowed) {
		mdevmig_engine_queue(inst, delay);
		goto out_unlock;
	}
	do {
		more = mdevmig_model_run(&inst->model, 1);
		steps++;
	} while (more > 0 && steps < allowed);
	if (READ_ONCE(inst->engine_budget))
		inst->engine_tokens -= (u64)steps * MDEVMIG_DMA_STEP_BYTES;
	if (more > 0)
		mdevmig_engine_queue(inst, 0);
out_unlock:
	mutex_unlock(&inst->state_lock);
}

/*
 * Takes state_lock for a change of the engine's state ahead of a busy engine. Once it
 * holds the lock the engine work steps aside no more, so the caller must end with
 * mdevmig_engine_start_locked() or mdevmig_engine_stop_locked() before unlocking.
 */
void mdevmig_engine_lock_for_change(struct mdevmig_dev *inst)
{
	atomic_inc(&inst->engine_yield);
	mutex_lock(&inst->state_lock);
	atomic_dec(&inst->engine_yield);
}

/* Lets the engine run again and picks up work queued while it was stopped. */
void mdevmig_engine_start_locked(struct mdevmig_dev *inst)
{
	lockdep_assert_held(&inst->state_lock);
	inst->engine_stopped = false;
	if (inst->opened && mdevmig_model_work_pending(&inst->model))
		mdevmig_engine_queue(inst, 0);
}

/*
 * Stops the engine: once this returns no step runs, so no DMA and no interrupt is
 * issued. A step in progress cannot exist, since steps run under state_lock.
 */
void mdevmig_engine_stop_locked(struct mdevmig_dev *inst)
{
	lockdep_assert_held(&inst->state_lock);
	inst->engine_stopped = true;
}

/* Waits for a queued work item to finish; call without state_lock. */
void mdevmig_engine_cancel(struct mdevmig_dev *inst)
{
	cancel_delayed_work_sync(&inst->engine_work);
}

int mdevmig_engine_init(void)
{
	mdevmig_wq = alloc_workqueue("mdevmig", WQ_UNBOUND, 0);
	return mdevmig_wq ? 0 : -ENOMEM;
}

void mdevmig_engine_exit(void)
{
	destroy_workqueue(mdevmig_wq);
}

/* Engine work items are initialised per instance here so engine.c owns the function. */
void mdevmig_engine_init_dev(struct mdevmig_dev *inst)
{
	INIT_DELAYED_WORK(&inst->engine_work, mdevmig_engine_work);
	inst->engine_stopped = false;
	atomic_set(&inst->engine_yield, 0);
	inst->engine_budget = min_t(u64, READ_ONCE(engine_budget), MDEVMIG_ENGINE_BUDGET_MAX);
	inst->engine_tokens = 0;
	inst->engine_refill = jiffies;
}

/* /sys/bus/mdev/devices/<uuid>/mdevmig/engine_budget: bytes per second, 0: unlimited. */
static ssize_t engine_budget_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct mdevmig_dev *inst = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%llu\n", READ_ONCE(inst->engine_budget));
}

static ssize_t engine_budget_store(struct device *dev, struct device_attribute *attr,
				   const char *buf, size_t count)
{
	struct mdevmig_dev *inst = dev_get_drvdata(dev);
	u64 budget;
	int ret = kstrtou64(buf, 0, &budget);

	if (ret)
		return ret;
	if (budget && (budget < MDEVMIG_ENGINE_BUDGET_MIN || budget > MDEVMIG_ENGINE_BUDGET_MAX))
		return -EINVAL;
	WRITE_ONCE(inst->engine_budget, budget);
	return count;
}
struct device_attribute mdevmig_dev_attr_engine_budget = __ATTR_RW(engine_budget);
