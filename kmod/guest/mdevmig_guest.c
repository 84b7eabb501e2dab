// SPDX-License-Identifier: GPL-2.0
/*
 * mdevmig_guest: the Linux driver for the mdevmig device, as a guest sees it (PCI
 * 1de7:6d67). It offers the device's DMA engine as a dmaengine provider with one
 * DMA_MEMCPY channel, so any dmaengine client (dmatest, async_tx users that ask for
 * it) can move guest memory through the device.
 *
 * The device contract (BAR0 registers, descriptors, completion records, interrupts)
 * is <linux/mdevmig.h>; nothing here re-defines it.
 *
 * - Ring: MDEVMIG_GUEST_RING_ENTRIES descriptors and as many completion records, in
 *   DMA-coherent memory; slot i completes into record i. Before a slot is handed to the
 *   device its record's status is set to MDEVMIG_DMA_ST_PENDING, which the device
 *   never writes: a record whose status changed is a completion. The engine runs the
 *   ring in order, so completions are reaped in ring order.
 * - Memcpy is the COPY_GUEST opcode. DMA_MEMSET is not offered: the device's FILL
 *   writes device memory (BAR2), never guest memory.
 * - Interrupts: one vector, MSI if the platform gives it, else INTx (shared). The
 *   handler acknowledges INT_STATUS and defers to a tasklet, which reaps completions,
 *   refills the ring from the pending list and runs the clients' callbacks.
 * - Errors: a completion with a status other than OK reaches the client as a
 *   dmaengine_result (READ_FAILED, WRITE_FAILED, or ABORTED for a descriptor the device
 *   rejected) with the residue, tx_status() reports DMA_ERROR for the last failed
 *   cookie, and each is logged. A slot the device consumed without a completion (a
 *   failed fetch or completion write, INT_RING / INT_ERROR) completes as ABORTED.
 * - BAR2 (device memory) is not claimed: guest user space maps it through the PCI
 *   resource2 file.
 *
 * Lock order: mdevmig_guest.lock is the only lock; the interrupt handler takes none.
 */
#include <linux/dmaengine.h>
#include <linux/interrupt.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/version.h>

#include <linux/mdevmig.h>

#define MDEVMIG_GUEST_NAME		"mdevmig_guest"
/* Ring entries: a power of two <= MDEVMIG_RING_MAX_ENTRIES; holds one less in flight. */
#define MDEVMIG_GUEST_RING_ENTRIES	256u

/* INTx got its own name in 6.8 (PCI_IRQ_LEGACY is gone from 6.10 on). */
#ifndef PCI_IRQ_INTX
#define PCI_IRQ_INTX			PCI_IRQ_LEGACY
#endif

/* Bits of mdevmig_guest.events, set by the interrupt handler. */
enum {
	MDEVMIG_GUEST_EV_LOST,	/* INT_ERROR or INT_RING: a slot may end without a record */
};

/* One memcpy, from prep to its callback. */
struct mdevmig_guest_tx {
	struct dma_async_tx_descriptor txd;
	struct list_head node;		/* on pending, active or a reaper's local list */
	dma_addr_t src;
	dma_addr_t dst;
	size_t len;
	u32 slot;			/* ring slot, once on active */
	enum dmaengine_tx_result result;
	u32 residue;			/* bytes not done, for a failed copy */
};

struct mdevmig_guest {
	struct pci_dev *pdev;
	void __iomem *regs;		/* BAR0 */
	struct dma_device dma;
	struct dma_chan chan;		/* the one channel */

	struct mdevmig_dma_desc *ring;	/* MDEVMIG_GUEST_RING_ENTRIES descriptors */
	dma_addr_t ring_dma;
	struct mdevmig_dma_cmpl *cmpl;	/* one completion record per slot */
	dma_addr_t cmpl_dma;
	u64 mem_size;			/* device memory (BAR2) bytes */

	struct tasklet_struct reaper;
	unsigned long events;		/* MDEVMIG_GUEST_EV_*, atomic bit ops */

	/* Protects the lists, head, tail, failed_cookie and chan's cookies. */
	spinlock_t lock;
	struct list_head pending;	/* submitted, not yet in the ring, in cookie order */
	struct list_head active;	/* in the ring, in ring order */
	u32 head;			/* oldest slot not yet reaped */
	u32 tail;			/* next slot to fill; RING_TAIL as last written */
	dma_cookie_t failed_cookie;	/* the last cookie that completed with an error */
};

static inline struct mdevmig_guest *mdevmig_guest_from_chan(struct dma_chan *chan)
{
	return container_of(chan, struct mdevmig_guest, chan);
}

static inline struct mdevmig_guest_tx *mdevmig_guest_tx_from_txd(struct dma_async_tx_descriptor *txd)
{
	return container_of(txd, struct mdevmig_guest_tx, txd);
}

static inline u32 mdevmig_guest_rd(struct mdevmig_guest *g, u32 reg)
{
	return readl(g->regs + reg);
}

static inline void mdevmig_guest_wr(struct mdevmig_guest *g, u32 reg, u32 val)
{
	writel(val, g->regs + reg);
}

static inline u32 mdevmig_guest_slot_next(u32 slot)
{
	return (slot + 1) & (MDEVMIG_GUEST_RING_ENTRIES - 1);
}

/* Soft reset, then the ring and interrupts programmed and the engine enabled. */
static void mdevmig_guest_hw_start(struct mdevmig_guest *g)
{
	mdevmig_guest_wr(g, MDEVMIG_REG_CTRL, MDEVMIG_CTRL_RESET);
	mdevmig_guest_wr(g, MDEVMIG_REG_RING_BASE_LO, lower_32_bits(g->ring_dma));
	mdevmig_guest_wr(g, MDEVMIG_REG_RING_BASE_HI, upper_32_bits(g->ring_dma));
	mdevmig_guest_wr(g, MDEVMIG_REG_RING_SIZE, MDEVMIG_GUEST_RING_ENTRIES);
	mdevmig_guest_wr(g, MDEVMIG_REG_INT_MASK, MDEVMIG_INT_SW);
	mdevmig_guest_wr(g, MDEVMIG_REG_CTRL, MDEVMIG_CTRL_ENABLE);
}

/* Soft reset: no more DMA or interrupts, queued work dropped. */
static void mdevmig_guest_hw_stop(struct mdevmig_guest *g)
{
	mdevmig_guest_wr(g, MDEVMIG_REG_CTRL, MDEVMIG_CTRL_RESET);
}

/* Moves pending copies into free ring slots and rings the doorbell once. */
static void mdevmig_guest_fill_ring_locked(struct mdevmig_guest *g)
{
	struct mdevmig_guest_tx *tx, *next;
	struct mdevmig_dma_desc *d = NULL;
	u32 slot;

	lockdep_assert_held(&g->lock);
	list_for_each_entry_safe(tx, next, &g->pending, node) {
		slot = g->tail;
		if (mdevmig_guest_slot_next(slot) == g->head)
			break;		/* full: the reaper refills */
		d = &g->ring[slot];
		/*
		 * Only the last descriptor of a batch interrupts on success: the engine
		 * completes in ring order, so its completion covers the others. A failure
		 * interrupts regardless.
		 */
		d->opcode = cpu_to_le32(MDEVMIG_DMA_OP_COPY_GUEST);
		d->flags = cpu_to_le32(MDEVMIG_DMA_F_NO_IRQ);
		d->src = cpu_to_le64(tx->src);
		d->dst = cpu_to_le64(tx->dst);
		d->len = cpu_to_le64(tx->len);
		d->pattern = 0;
		d->cmpl = cpu_to_le64(g->cmpl_dma + slot * sizeof(struct mdevmig_dma_cmpl));
		d->user_data = cpu_to_le64(tx->txd.cookie);
		d->rsvd = 0;
		WRITE_ONCE(g->cmpl[slot].status, cpu_to_le32(MDEVMIG_DMA_ST_PENDING));
		tx->slot = slot;
		g->tail = mdevmig_guest_slot_next(slot);
		list_move_tail(&tx->node, &g->active);
	}
	if (!d)
		return;
	d->flags = 0;
	/* writel() orders the descriptor and record stores before the doorbell. */
	mdevmig_guest_wr(g, MDEVMIG_REG_RING_TAIL, g->tail);
}

static enum dmaengine_tx_result mdevmig_guest_result(u32 status)
{
	switch (status) {
	case MDEVMIG_DMA_ST_OK:
		return DMA_TRANS_NOERROR;
	case MDEVMIG_DMA_ST_READ_FAULT:
		return DMA_TRANS_READ_FAILED;
	case MDEVMIG_DMA_ST_WRITE_FAULT:
		return DMA_TRANS_WRITE_FAILED;
	default:	/* BAD_OPCODE, BAD_DESC, BAD_RANGE: rejected before any data moved */
		return DMA_TRANS_ABORTED;
	}
}

/* Is @slot among those the device consumed, i.e. in [head, @hw_head)? */
static bool mdevmig_guest_slot_consumed(struct mdevmig_guest *g, u32 slot, u32 hw_head)
{
	u32 mask = MDEVMIG_GUEST_RING_ENTRIES - 1;

	return ((slot - g->head) & mask) < ((hw_head - g->head) & mask);
}

/*
 * Takes the finished copies off the ring, oldest first, onto @done. With @lost set,
 * slots the device consumed without writing their record (HEAD moved past them) end
 * as ABORTED.
 */
static void mdevmig_guest_reap_locked(struct mdevmig_guest *g, bool lost, struct list_head *done)
{
	struct mdevmig_guest_tx *tx, *next;
	struct mdevmig_dma_cmpl *c;
	u32 status, hw_head = 0;
	u64 bytes;

	lockdep_assert_held(&g->lock);
	if (lost) {
		hw_head = mdevmig_guest_rd(g, MDEVMIG_REG_RING_HEAD);
		rmb();	/* records of slots before HEAD are written before HEAD moves */
	}
	list_for_each_entry_safe(tx, next, &g->active, node) {
		c = &g->cmpl[tx->slot];
		status = le32_to_cpu(READ_ONCE(c->status));
		if (status == MDEVMIG_DMA_ST_PENDING) {
			if (!lost || !mdevmig_guest_slot_consumed(g, tx->slot, hw_head))
				break;
			dev_err_ratelimited(&g->pdev->dev,
					    "cookie %d: slot %u consumed without a completion (ERR_DMA %u, ERR_RING %u)\n",
					    tx->txd.cookie, tx->slot,
					    mdevmig_guest_rd(g, MDEVMIG_REG_ERR_DMA),
					    mdevmig_guest_rd(g, MDEVMIG_REG_ERR_RING));
			tx->result = DMA_TRANS_ABORTED;
			tx->residue = tx->len;
		} else {
			dma_rmb();	/* the rest of the record after its status */
			bytes = le64_to_cpu(c->bytes_done);
			tx->result = mdevmig_guest_result(status);
			tx->residue = tx->result == DMA_TRANS_NOERROR ? 0 :
				      (u32)min_t(u64, tx->len - min_t(u64, bytes, tx->len), U32_MAX);
			if (tx->result != DMA_TRANS_NOERROR)
				dev_err_ratelimited(&g->pdev->dev,
						    "cookie %d: copy of %zu bytes failed with status %u after %llu bytes (seq %u)\n",
						    tx->txd.cookie, tx->len, status, bytes,
						    le32_to_cpu(c->seq));
		}
		if (tx->result != DMA_TRANS_NOERROR)
			g->failed_cookie = tx->txd.cookie;
		g->chan.completed_cookie = tx->txd.cookie;
		g->head = mdevmig_guest_slot_next(tx->slot);
		list_move_tail(&tx->node, done);
	}
}

/* Ends a copy: unmaps what the client asked to, calls it back, frees the copy. */
static void mdevmig_guest_tx_finish(struct mdevmig_guest_tx *tx)
{
	struct dma_async_tx_descriptor *txd = &tx->txd;
	struct dmaengine_result res = { .result = tx->result, .residue = tx->residue };

	dma_descriptor_unmap(txd);
	if (txd->callback_result)
		txd->callback_result(txd->callback_param, &res);
	else if (txd->callback)
		txd->callback(txd->callback_param);
	dma_run_dependencies(txd);
	kfree(tx);
}

static void mdevmig_guest_reaper(struct tasklet_struct *t)
{
	struct mdevmig_guest *g = from_tasklet(g, t, reaper);
	bool lost = test_and_clear_bit(MDEVMIG_GUEST_EV_LOST, &g->events);
	struct mdevmig_guest_tx *tx, *next;
	unsigned long flags;
	LIST_HEAD(done);

	spin_lock_irqsave(&g->lock, flags);
	mdevmig_guest_reap_locked(g, lost, &done);
	mdevmig_guest_fill_ring_locked(g);
	spin_unlock_irqrestore(&g->lock, flags);

	list_for_each_entry_safe(tx, next, &done, node) {
		list_del(&tx->node);
		mdevmig_guest_tx_finish(tx);
	}
}

static irqreturn_t mdevmig_guest_irq(int irq, void *data)
{
	struct mdevmig_guest *g = data;
	u32 status = mdevmig_guest_rd(g, MDEVMIG_REG_INT_STATUS);

	/* All ones: the function is gone (surprise removal). */
	if (!status || status == ~0u)
		return IRQ_NONE;
	mdevmig_guest_wr(g, MDEVMIG_REG_INT_STATUS, status);
	if (status & (MDEVMIG_INT_ERROR | MDEVMIG_INT_RING))
		set_bit(MDEVMIG_GUEST_EV_LOST, &g->events);
	tasklet_schedule(&g->reaper);
	return IRQ_HANDLED;
}

/* ----- dmaengine provider ----- */

static dma_cookie_t mdevmig_guest_tx_submit(struct dma_async_tx_descriptor *txd)
{
	struct mdevmig_guest *g = mdevmig_guest_from_chan(txd->chan);
	struct mdevmig_guest_tx *tx = mdevmig_guest_tx_from_txd(txd);
	struct dma_chan *chan = &g->chan;
	unsigned long flags;
	dma_cookie_t cookie;

	spin_lock_irqsave(&g->lock, flags);
	cookie = chan->cookie + 1;
	if (cookie < DMA_MIN_COOKIE)
		cookie = DMA_MIN_COOKIE;
	chan->cookie = cookie;
	txd->cookie = cookie;
	list_add_tail(&tx->node, &g->pending);
	spin_unlock_irqrestore(&g->lock, flags);
	return cookie;
}

static struct dma_async_tx_descriptor *
mdevmig_guest_prep_memcpy(struct dma_chan *chan, dma_addr_t dst, dma_addr_t src, size_t len,
			  unsigned long flags)
{
	struct mdevmig_guest_tx *tx;

	if (len > MDEVMIG_DMA_MAX_LEN)
		return NULL;
	tx = kzalloc(sizeof(*tx), GFP_NOWAIT);
	if (!tx)
		return NULL;
	dma_async_tx_descriptor_init(&tx->txd, chan);
	tx->txd.flags = flags;
	tx->txd.tx_submit = mdevmig_guest_tx_submit;
	INIT_LIST_HEAD(&tx->node);
	tx->src = src;
	tx->dst = dst;
	tx->len = len;
	return &tx->txd;
}

static void mdevmig_guest_issue_pending(struct dma_chan *chan)
{
	struct mdevmig_guest *g = mdevmig_guest_from_chan(chan);
	unsigned long flags;

	spin_lock_irqsave(&g->lock, flags);
	mdevmig_guest_fill_ring_locked(g);
	spin_unlock_irqrestore(&g->lock, flags);
}

static enum dma_status mdevmig_guest_tx_status(struct dma_chan *chan, dma_cookie_t cookie,
					       struct dma_tx_state *state)
{
	struct mdevmig_guest *g = mdevmig_guest_from_chan(chan);
	dma_cookie_t last, used, failed;
	enum dma_status status;
	unsigned long flags;

	spin_lock_irqsave(&g->lock, flags);
	last = chan->completed_cookie;
	used = chan->cookie;
	failed = g->failed_cookie;
	spin_unlock_irqrestore(&g->lock, flags);

	status = dma_async_is_complete(cookie, last, used);
	dma_set_tx_state(state, last, used, 0);
	if (status == DMA_COMPLETE && cookie == failed)
		status = DMA_ERROR;
	return status;
}

/*
 * Drops every copy not yet completed, without callbacks (the dmaengine contract):
 * the device is reset and its ring programmed afresh.
 */
static int mdevmig_guest_terminate_all(struct dma_chan *chan)
{
	struct mdevmig_guest *g = mdevmig_guest_from_chan(chan);
	struct mdevmig_guest_tx *tx, *next;
	unsigned long flags;
	LIST_HEAD(dropped);

	spin_lock_irqsave(&g->lock, flags);
	mdevmig_guest_hw_start(g);
	list_splice_tail_init(&g->active, &dropped);
	list_splice_tail_init(&g->pending, &dropped);
	g->head = 0;
	g->tail = 0;
	spin_unlock_irqrestore(&g->lock, flags);

	list_for_each_entry_safe(tx, next, &dropped, node) {
		list_del(&tx->node);
		dma_descriptor_unmap(&tx->txd);
		kfree(tx);
	}
	return 0;
}

/* After terminate_all: no callback of a dropped or earlier copy is still running. */
static void mdevmig_guest_synchronize(struct dma_chan *chan)
{
	struct mdevmig_guest *g = mdevmig_guest_from_chan(chan);

	synchronize_irq(pci_irq_vector(g->pdev, 0));
	tasklet_kill(&g->reaper);
}

/* A new client starts with fresh cookies. */
static int mdevmig_guest_alloc_chan_resources(struct dma_chan *chan)
{
	struct mdevmig_guest *g = mdevmig_guest_from_chan(chan);
	unsigned long flags;

	spin_lock_irqsave(&g->lock, flags);
	chan->cookie = DMA_MIN_COOKIE;
	chan->completed_cookie = DMA_MIN_COOKIE;
	g->failed_cookie = 0;
	spin_unlock_irqrestore(&g->lock, flags);
	return 0;
}

static void mdevmig_guest_free_chan_resources(struct dma_chan *chan)
{
	mdevmig_guest_terminate_all(chan);
	mdevmig_guest_synchronize(chan);
}

static int mdevmig_guest_dma_register(struct mdevmig_guest *g)
{
	struct dma_device *dma = &g->dma;

	dma->dev = &g->pdev->dev;
	INIT_LIST_HEAD(&dma->channels);
	dma_cap_zero(dma->cap_mask);
	dma_cap_set(DMA_MEMCPY, dma->cap_mask);
	/* Only for clients that ask for a channel, not async_tx's general pool. */
	dma_cap_set(DMA_PRIVATE, dma->cap_mask);
	dma->copy_align = DMAENGINE_ALIGN_1_BYTE;
	dma->directions = BIT(DMA_MEM_TO_MEM);
	dma->src_addr_widths = BIT(DMA_SLAVE_BUSWIDTH_1_BYTE);
	dma->dst_addr_widths = BIT(DMA_SLAVE_BUSWIDTH_1_BYTE);
	dma->residue_granularity = DMA_RESIDUE_GRANULARITY_DESCRIPTOR;
	dma->device_prep_dma_memcpy = mdevmig_guest_prep_memcpy;
	dma->device_issue_pending = mdevmig_guest_issue_pending;
	dma->device_tx_status = mdevmig_guest_tx_status;
	dma->device_terminate_all = mdevmig_guest_terminate_all;
	dma->device_synchronize = mdevmig_guest_synchronize;
	dma->device_alloc_chan_resources = mdevmig_guest_alloc_chan_resources;
	dma->device_free_chan_resources = mdevmig_guest_free_chan_resources;

	g->chan.device = dma;
	g->chan.cookie = DMA_MIN_COOKIE;
	g->chan.completed_cookie = DMA_MIN_COOKIE;
	list_add_tail(&g->chan.device_node, &dma->channels);
	return dma_async_device_register(dma);
}

/* ----- PCI driver ----- */

/* The device must be the model this driver was written for. */
static int mdevmig_guest_check_device(struct mdevmig_guest *g)
{
	struct device *dev = &g->pdev->dev;
	u32 id = mdevmig_guest_rd(g, MDEVMIG_REG_ID);
	u32 version = mdevmig_guest_rd(g, MDEVMIG_REG_VERSION);
	u32 caps = mdevmig_guest_rd(g, MDEVMIG_REG_CAPS);
	u32 ring_max = mdevmig_guest_rd(g, MDEVMIG_REG_RING_MAX);

	if (id != MDEVMIG_ID_MAGIC) {
		dev_err(dev, "ID register reads %#x, not %#x\n", id, MDEVMIG_ID_MAGIC);
		return -ENODEV;
	}
	if (version != MDEVMIG_MODEL_VERSION) {
		dev_err(dev, "device model version %u, driver knows %u\n", version,
			MDEVMIG_MODEL_VERSION);
		return -ENODEV;
	}
	if (!(caps & BIT(MDEVMIG_DMA_OP_COPY_GUEST))) {
		dev_err(dev, "device has no guest-to-guest copy (CAPS %#x)\n", caps);
		return -ENODEV;
	}
	if (ring_max < MDEVMIG_GUEST_RING_ENTRIES) {
		dev_err(dev, "device rings hold at most %u entries, driver needs %u\n", ring_max,
			MDEVMIG_GUEST_RING_ENTRIES);
		return -ENODEV;
	}
	g->mem_size = mdevmig_guest_rd(g, MDEVMIG_REG_MEM_SIZE_LO) |
		      (u64)mdevmig_guest_rd(g, MDEVMIG_REG_MEM_SIZE_HI) << 32;
	return 0;
}

static int mdevmig_guest_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct device *dev = &pdev->dev;
	struct mdevmig_guest *g;
	int ret;

	BUILD_BUG_ON(sizeof(struct mdevmig_dma_desc) != 64);
	BUILD_BUG_ON(sizeof(struct mdevmig_dma_cmpl) != 32);
	BUILD_BUG_ON(!is_power_of_2(MDEVMIG_GUEST_RING_ENTRIES) ||
		     MDEVMIG_GUEST_RING_ENTRIES > MDEVMIG_RING_MAX_ENTRIES);

	g = kzalloc(sizeof(*g), GFP_KERNEL);
	if (!g)
		return -ENOMEM;
	g->pdev = pdev;
	spin_lock_init(&g->lock);
	INIT_LIST_HEAD(&g->pending);
	INIT_LIST_HEAD(&g->active);
	tasklet_setup(&g->reaper, mdevmig_guest_reaper);

	ret = pci_enable_device(pdev);
	if (ret)
		goto out_free;
	/* BAR0 only: BAR2 stays free for user space (resource2). */
	ret = pci_request_region(pdev, 0, MDEVMIG_GUEST_NAME);
	if (ret)
		goto out_disable;
	g->regs = pci_iomap(pdev, 0, MDEVMIG_REGS_SIZE);
	if (!g->regs) {
		ret = -ENOMEM;
		goto out_release;
	}
	ret = mdevmig_guest_check_device(g);
	if (ret)
		goto out_unmap;
	ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64));
	if (ret)
		goto out_unmap;
	dma_set_max_seg_size(dev, MDEVMIG_DMA_MAX_LEN);

	g->ring = dma_alloc_coherent(dev, MDEVMIG_GUEST_RING_ENTRIES * sizeof(*g->ring),
				     &g->ring_dma, GFP_KERNEL);
	if (!g->ring) {
		ret = -ENOMEM;
		goto out_unmap;
	}
	g->cmpl = dma_alloc_coherent(dev, MDEVMIG_GUEST_RING_ENTRIES * sizeof(*g->cmpl),
				     &g->cmpl_dma, GFP_KERNEL);
	if (!g->cmpl) {
		ret = -ENOMEM;
		goto out_free_ring;
	}

	pci_set_master(pdev);
	/* Quiet before the handler can run: a previous owner may have left it busy. */
	mdevmig_guest_hw_stop(g);
	ret = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI | PCI_IRQ_INTX);
	if (ret < 0)
		goto out_clear_master;
	ret = request_irq(pci_irq_vector(pdev, 0), mdevmig_guest_irq,
			  pdev->msi_enabled ? 0 : IRQF_SHARED, MDEVMIG_GUEST_NAME, g);
	if (ret)
		goto out_free_vectors;

	pci_set_drvdata(pdev, g);
	mdevmig_guest_hw_start(g);
	ret = mdevmig_guest_dma_register(g);
	if (ret)
		goto out_stop;

	dev_info(dev, "dmaengine %s: memcpy, %s interrupt, ring of %u, device memory %llu KiB\n",
		 dma_chan_name(&g->chan), pdev->msi_enabled ? "MSI" : "INTx",
		 MDEVMIG_GUEST_RING_ENTRIES, g->mem_size >> 10);
	return 0;

out_stop:
	mdevmig_guest_hw_stop(g);
	free_irq(pci_irq_vector(pdev, 0), g);
out_free_vectors:
	pci_free_irq_vectors(pdev);
out_clear_master:
	pci_clear_master(pdev);
	dma_free_coherent(dev, MDEVMIG_GUEST_RING_ENTRIES * sizeof(*g->cmpl), g->cmpl,
			  g->cmpl_dma);
out_free_ring:
	dma_free_coherent(dev, MDEVMIG_GUEST_RING_ENTRIES * sizeof(*g->ring), g->ring,
			  g->ring_dma);
out_unmap:
	pci_iounmap(pdev, g->regs);
out_release:
	pci_release_region(pdev, 0);
out_disable:
	pci_disable_device(pdev);
out_free:
	tasklet_kill(&g->reaper);
	kfree(g);
	return ret;
}

static void mdevmig_guest_remove(struct pci_dev *pdev)
{
	struct mdevmig_guest *g = pci_get_drvdata(pdev);
	struct device *dev = &pdev->dev;

	/* Clients hold a module reference while they hold the channel: none is left. */
	dma_async_device_unregister(&g->dma);
	mdevmig_guest_hw_stop(g);
	free_irq(pci_irq_vector(pdev, 0), g);
	pci_free_irq_vectors(pdev);
	tasklet_kill(&g->reaper);
	/* A client that left descriptors behind: say so (the ring is stopped and its
	 * memory goes below, so they can never complete), without a WARN. */
	if (!list_empty(&g->pending) || !list_empty(&g->active))
		dev_err(dev, "descriptors still queued at removal: a client did not terminate its transfers\n");
	pci_clear_master(pdev);
	dma_free_coherent(dev, MDEVMIG_GUEST_RING_ENTRIES * sizeof(*g->cmpl), g->cmpl,
			  g->cmpl_dma);
	dma_free_coherent(dev, MDEVMIG_GUEST_RING_ENTRIES * sizeof(*g->ring), g->ring,
			  g->ring_dma);
	pci_iounmap(pdev, g->regs);
	pci_release_region(pdev, 0);
	pci_disable_device(pdev);
	kfree(g);
}

static const struct pci_device_id mdevmig_guest_ids[] = {
	{ PCI_DEVICE(MDEVMIG_PCI_VENDOR_ID, MDEVMIG_PCI_DEVICE_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, mdevmig_guest_ids);

static struct pci_driver mdevmig_guest_driver = {
	.name = MDEVMIG_GUEST_NAME,
	.id_table = mdevmig_guest_ids,
	.probe = mdevmig_guest_probe,
	.remove = mdevmig_guest_remove,
};
module_pci_driver(mdevmig_guest_driver);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Guest driver for the mdevmig device: a dmaengine memcpy provider");
