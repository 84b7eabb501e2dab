// SPDX-License-Identifier: GPL-2.0
/*
 * Interrupts: VFIO_DEVICE_GET_IRQ_INFO / SET_IRQS for INTx and MSI, delivered through
 * eventfds. INTx is level-triggered and auto-masked on delivery, as with vfio-pci: the
 * user unmasks after servicing and, if the line is still up, gets another signal. The
 * unmask may also come through an eventfd (VFIO_IRQ_SET_ACTION_UNMASK with
 * DATA_EVENTFD), which is how QEMU under KVM wires INTx: KVM's irqfd resampler
 * signals it when the guest ends the interrupt, with no exit to QEMU.
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "mdevmig.h"

static unsigned int mdevmig_irq_count(unsigned int index)
{
	switch (index) {
	case VFIO_PCI_INTX_IRQ_INDEX:
		return 1;
	case VFIO_PCI_MSI_IRQ_INDEX:
		return MDEVMIG_MSI_VECTORS;
	case VFIO_PCI_REQ_IRQ_INDEX:
		return 1;
	default:
		return 0;
	}
}

int mdevmig_get_irq_info(struct mdevmig_dev *inst, unsigned long arg)
{
	struct vfio_irq_info info;
	unsigned long minsz = offsetofend(struct vfio_irq_info, count);

	if (copy_from_user(&info, (void __user *)arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz || info.index >= VFIO_PCI_NUM_IRQS)
		return -EINVAL;

	info.flags = 0;
	info.count = mdevmig_irq_count(info.index);
	if (info.index == VFIO_PCI_INTX_IRQ_INDEX)
		info.flags = VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED;
	else if (info.count)
		info.flags = VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE;
	return copy_to_user((void __user *)arg, &info, minsz) ? -EFAULT : 0;
}

static void mdevmig_trigger_put(struct eventfd_ctx **slot)
{
	if (*slot)
		eventfd_ctx_put(*slot);
	*slot = NULL;
}

/* Replaces a trigger with the eventfd @fd (-1: none). */
static int mdevmig_trigger_set(struct eventfd_ctx **slot, s32 fd)
{
	struct eventfd_ctx *ctx = NULL;

	if (fd >= 0) {
		ctx = eventfd_ctx_fdget(fd);
		if (IS_ERR(ctx))
			return PTR_ERR(ctx);
	} else if (fd != -1) {
		return -EINVAL;
	}
	mdevmig_trigger_put(slot);
	*slot = ctx;
	return 0;
}

/* Signals INTx if the line is up, unmasked, wired and delivery is allowed. */
static void mdevmig_intx_deliver_locked(struct mdevmig_dev *inst)
{
	lockdep_assert_held(&inst->irq_lock);
	if (inst->intx_level && !inst->intx_masked && inst->intx_trigger &&
	    !READ_ONCE(inst->irq_stopped)) {
		inst->intx_masked = true;
		mdevmig_eventfd_signal(inst->intx_trigger);
	}
}

void mdevmig_irq_intx(struct mdevmig_dev *inst, bool level)
{
	mutex_lock(&inst->irq_lock);
	inst->intx_level = level;
	mdevmig_intx_deliver_locked(inst);
	mutex_unlock(&inst->irq_lock);
}

void mdevmig_irq_msi(struct mdevmig_dev *inst, unsigned int vector)
{
	mutex_lock(&inst->irq_lock);
	if (vector < MDEVMIG_MSI_VECTORS && inst->msi_trigger[vector])
		mdevmig_eventfd_signal(inst->msi_trigger[vector]);
	mutex_unlock(&inst->irq_lock);
}

/* Re-evaluates INTx after the engine was allowed to run again. */
void mdevmig_irq_resume(struct mdevmig_dev *inst)
{
	mutex_lock(&inst->irq_lock);
	mdevmig_intx_deliver_locked(inst);
	mutex_unlock(&inst->irq_lock);
}

/* The unmask eventfd fired (vfio_virqfd's work, which may sleep): as an UNMASK. */
static void mdevmig_intx_unmask_work(void *opaque, void *unused)
{
	struct mdevmig_dev *inst = opaque;

	mutex_lock(&inst->irq_lock);
	inst->intx_masked = false;
	mdevmig_intx_deliver_locked(inst);
	mutex_unlock(&inst->irq_lock);
}

/*
 * Installs the INTx unmask eventfd @fd, or drops it (-1). Called without irq_lock:
 * vfio_virqfd_disable() waits for the eventfd's work, which takes irq_lock.
 */
static int mdevmig_set_intx_unmask_fd(struct mdevmig_dev *inst, s32 fd)
{
	if (fd < -1)
		return -EINVAL;
	vfio_virqfd_disable(&inst->intx_unmask);
	if (fd == -1)
		return 0;
	return vfio_virqfd_enable(inst, NULL, mdevmig_intx_unmask_work, NULL,
				  &inst->intx_unmask, fd);
}

void mdevmig_irq_disable_all(struct mdevmig_dev *inst)
{
	unsigned int i;

	vfio_virqfd_disable(&inst->intx_unmask);
	mutex_lock(&inst->irq_lock);
	mdevmig_trigger_put(&inst->intx_trigger);
	for (i = 0; i < MDEVMIG_MSI_VECTORS; i++)
		mdevmig_trigger_put(&inst->msi_trigger[i]);
	mdevmig_trigger_put(&inst->req_trigger);
	inst->intx_masked = false;
	mutex_unlock(&inst->irq_lock);
}

/*
 * INTx takes exactly start 0, count 1, as with vfio-pci; the one exception is
 * TRIGGER with no data and count 0, which disables the line's eventfd. Every data
 * pointer below is therefore backed by one element.
 */
static int mdevmig_set_intx_locked(struct mdevmig_dev *inst, u32 action, u32 data_type,
				   u32 start, u32 count, void *data)
{
	lockdep_assert_held(&inst->irq_lock);
	if (action == VFIO_IRQ_SET_ACTION_TRIGGER && data_type == VFIO_IRQ_SET_DATA_NONE &&
	    !count) {
		mdevmig_trigger_put(&inst->intx_trigger);
		return 0;
	}
	if (start != 0 || count != 1)
		return -EINVAL;
	switch (action) {
	case VFIO_IRQ_SET_ACTION_TRIGGER:
		if (data_type == VFIO_IRQ_SET_DATA_EVENTFD) {
			int ret = mdevmig_trigger_set(&inst->intx_trigger, *(s32 *)data);

			if (!ret)
				mdevmig_intx_deliver_locked(inst);
			return ret;
		}
		/* Loopback test: signal as if the device had raised the line. */
		if (!inst->intx_trigger)
			return -EINVAL;
		if (data_type == VFIO_IRQ_SET_DATA_NONE || *(u8 *)data)
			mdevmig_eventfd_signal(inst->intx_trigger);
		return 0;
	case VFIO_IRQ_SET_ACTION_MASK:
		if (data_type == VFIO_IRQ_SET_DATA_EVENTFD)
			return -EINVAL;		/* no mask eventfds */
		if (data_type == VFIO_IRQ_SET_DATA_NONE || *(u8 *)data)
			inst->intx_masked = true;
		return 0;
	case VFIO_IRQ_SET_ACTION_UNMASK:
		/* (an eventfd is installed by mdevmig_set_irqs(), without irq_lock) */
		if (data_type == VFIO_IRQ_SET_DATA_NONE || *(u8 *)data) {
			inst->intx_masked = false;
			mdevmig_intx_deliver_locked(inst);
		}
		return 0;
	}
	return -EINVAL;
}

/*
 * MSI vectors [start, start + count). Eventfds are all looked up before any is
 * installed, so a bad fd in the block fails the call and changes nothing.
 */
static int mdevmig_set_msi_locked(struct mdevmig_dev *inst, u32 action, u32 data_type,
				  u32 start, u32 count, void *data)
{
	struct eventfd_ctx *ctx[MDEVMIG_MSI_VECTORS] = {};
	u32 i;
	int ret = 0;

	lockdep_assert_held(&inst->irq_lock);
	if (action != VFIO_IRQ_SET_ACTION_TRIGGER)
		return -EINVAL;
	if (data_type == VFIO_IRQ_SET_DATA_NONE && !count) {
		for (i = 0; i < MDEVMIG_MSI_VECTORS; i++)
			mdevmig_trigger_put(&inst->msi_trigger[i]);
		return 0;
	}
	if (start >= MDEVMIG_MSI_VECTORS || count > MDEVMIG_MSI_VECTORS - start)
		return -EINVAL;
	if (data_type != VFIO_IRQ_SET_DATA_EVENTFD) {
		for (i = 0; i < count; i++) {
			struct eventfd_ctx *slot = inst->msi_trigger[start + i];

			if (slot && (data_type == VFIO_IRQ_SET_DATA_NONE || ((u8 *)data)[i]))
				mdevmig_eventfd_signal(slot);
		}
		return 0;
	}
	for (i = 0; i < count && !ret; i++)
		ret = mdevmig_trigger_set(&ctx[i], ((s32 *)data)[i]);
	for (i = 0; i < count; i++) {
		if (ret) {
			mdevmig_trigger_put(&ctx[i]);
			continue;
		}
		mdevmig_trigger_put(&inst->msi_trigger[start + i]);
		inst->msi_trigger[start + i] = ctx[i];
	}
	return ret;
}

/*
 * The request interrupt (VFIO_PCI_REQ_IRQ_INDEX, one vector): an eventfd the driver
 * signals when the instance is being removed while the user still holds it open
 * (mdevmig_request()). Only TRIGGER: an eventfd (-1 drops it), or a loopback signal
 * with NONE / BOOL; NONE with count 0 drops it. Any other shape is -EINVAL.
 */
static int mdevmig_set_req_locked(struct mdevmig_dev *inst, u32 action, u32 data_type,
				  u32 count, void *data)
{
	lockdep_assert_held(&inst->irq_lock);
	if (action != VFIO_IRQ_SET_ACTION_TRIGGER)
		return -EINVAL;
	if (data_type == VFIO_IRQ_SET_DATA_NONE && !count) {
		mdevmig_trigger_put(&inst->req_trigger);
		return 0;
	}
	if (count != 1 || (data_type != VFIO_IRQ_SET_DATA_NONE && !data))
		return -EINVAL;
	if (data_type == VFIO_IRQ_SET_DATA_EVENTFD)
		return mdevmig_trigger_set(&inst->req_trigger, *(s32 *)data);
	if (!inst->req_trigger)
		return -EINVAL;
	if (data_type == VFIO_IRQ_SET_DATA_NONE || *(u8 *)data)
		mdevmig_eventfd_signal(inst->req_trigger);
	return 0;
}

/*
 * vfio_device_ops.request: the core is removing the instance and waits for the user
 * to close it, calling this again (@count 1, 2, ...) every few seconds meanwhile. The
 * user learns it through the request eventfd, as with vfio-pci; one without an eventfd
 * is named once in the log.
 */
void mdevmig_request(struct vfio_device *vdev, unsigned int count)
{
	struct mdevmig_dev *inst = container_of(vdev, struct mdevmig_dev, vdev);

	mutex_lock(&inst->irq_lock);
	if (inst->req_trigger) {
		if (!(count % 10))
			dev_notice_ratelimited(vdev->dev,
					       "asking the user to release the device (request %u)\n",
					       count);
		mdevmig_eventfd_signal(inst->req_trigger);
	} else if (!count) {
		dev_notice(vdev->dev,
			   "device in use and no request eventfd set: removal waits for the user to close it\n");
	}
	mutex_unlock(&inst->irq_lock);
}

int mdevmig_set_irqs(struct mdevmig_dev *inst, unsigned long arg)
{
	struct vfio_irq_set hdr;
	unsigned long minsz = offsetofend(struct vfio_irq_set, count);
	u32 action, data_type;
	size_t data_size = 0;
	void *data = NULL;
	int ret;

	if (copy_from_user(&hdr, (void __user *)arg, minsz))
		return -EFAULT;
	if (hdr.index >= VFIO_PCI_NUM_IRQS)
		return -EINVAL;
	ret = vfio_set_irqs_validate_and_prepare(&hdr, mdevmig_irq_count(hdr.index),
						 VFIO_PCI_NUM_IRQS, &data_size);
	if (ret)
		return ret;
	if (!mdevmig_irq_count(hdr.index))
		return -EINVAL;
	if (data_size) {
		data = memdup_user((void __user *)(arg + minsz), data_size);
		if (IS_ERR(data))
			return PTR_ERR(data);
	}

	action = hdr.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
	data_type = hdr.flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
	if (hdr.index == VFIO_PCI_INTX_IRQ_INDEX && action == VFIO_IRQ_SET_ACTION_UNMASK &&
	    data_type == VFIO_IRQ_SET_DATA_EVENTFD) {
		/* INTx allows start 0, count 1 only, so data holds one fd */
		ret = hdr.start || hdr.count != 1 ? -EINVAL :
		      mdevmig_set_intx_unmask_fd(inst, *(s32 *)data);
		kfree(data);
		return ret;
	}

	mutex_lock(&inst->irq_lock);
	if (hdr.index == VFIO_PCI_INTX_IRQ_INDEX)
		ret = mdevmig_set_intx_locked(inst, action, data_type, hdr.start, hdr.count,
					      data);
	else if (hdr.index == VFIO_PCI_REQ_IRQ_INDEX)
		ret = mdevmig_set_req_locked(inst, action, data_type, hdr.count, data);
	else
		ret = mdevmig_set_msi_locked(inst, action, data_type, hdr.start, hdr.count, data);
	mutex_unlock(&inst->irq_lock);
	kfree(data);
	/* INTx switched off (TRIGGER, NONE, count 0): its unmask eventfd goes too. */
	if (!ret && hdr.index == VFIO_PCI_INTX_IRQ_INDEX && action == VFIO_IRQ_SET_ACTION_TRIGGER &&
	    data_type == VFIO_IRQ_SET_DATA_NONE && !hdr.count)
		vfio_virqfd_disable(&inst->intx_unmask);
	return ret;
}
